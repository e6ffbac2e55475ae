package southd

import (
	"testing"

	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// southd waits, after writing ports' states into the northbound, until
// its monitor shows them. It used to wait until the northbound matched
// the bindings as they were by then: a binding that changed meanwhile (a
// VM leaving its host: released, granted elsewhere, up there) held the
// wait to its 2 s timeout, and southd granted nothing meanwhile, so a
// migrating VM's new host got its port 2 s late (#19).
func TestPortStatesShownWhileTheBindingMovesOn(t *testing.T) {
	yes, no := true, false
	pbs := []*sbdb.PortBinding{{LogicalPort: "vm", Chassis: str("hv1"), Up: &no}}
	before := []*nbdb.Port{{UUID: "u-vm", Name: "vm", Chassis: str("hv1"), Up: &yes}}
	written := portStates(before, pbs)
	if len(written) != 1 || *written[0].up {
		t.Fatalf("states to write: %+v", written)
	}
	if shown(lookup(before), written) {
		t.Error("the northbound shows the write before it was made")
	}
	// The write has arrived; the binding has since moved on to hv2.
	after := []*nbdb.Port{{UUID: "u-vm", Name: "vm", Chassis: str("hv1"), Up: &no}}
	pbs[0].Chassis, pbs[0].Up = str("hv2"), &yes
	if len(portStates(after, pbs)) == 0 {
		t.Fatal("the test's binding did not move on")
	}
	if !shown(lookup(after), written) {
		t.Error("the write is shown, but the wait goes on because the binding changed since")
	}
	if !shown(lookup(nil), written) {
		t.Error("a port deleted meanwhile holds the wait")
	}
}

func lookup(ports []*nbdb.Port) func(string) *nbdb.Port {
	return func(uuid string) *nbdb.Port {
		for _, p := range ports {
			if p.UUID == uuid {
				return p
			}
		}
		return nil
	}
}
