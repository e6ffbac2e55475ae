package hostd

import (
	"testing"

	"github.com/courier-sdn/courier/schema/sbdb"
)

// Whose handed-off SNAT connections a host installs: only for a port
// bound and translated here, sent by the chassis the port was requested
// on (or that this host saw it requested on while bound here).
func TestJudgeHandoff(t *testing.T) {
	s := func(v string) *string { return &v }
	movedHere := &sbdb.PortBinding{LogicalPort: "vm", Chassis: s("hv2"), RequestedChassis: s("hv1")}
	requestedHere := &sbdb.PortBinding{LogicalPort: "vm", Chassis: s("hv2"), RequestedChassis: s("hv2")}
	for _, c := range []struct {
		what       string
		h          *sbdb.SNATHandoff
		pb         *sbdb.PortBinding
		translated bool
		origin     string
		want       handoffVerdict
	}{
		{"from the host the port was requested on", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, movedHere, true, "", handoffInstall},
		{"its blocks not applied here yet", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, movedHere, false, "", handoffWait},
		{"not bound here yet", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"},
			&sbdb.PortBinding{Chassis: s("hv1"), RequestedChassis: s("hv1")}, false, "", handoffWait},
		{"not monitored", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, nil, false, "", handoffWait},
		{"this host's own, to another", &sbdb.SNATHandoff{ToChassis: "hv3", FromChassis: "hv2"}, movedHere, true, "", handoffWait},
		{"from a host the port never was on", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, movedHere, true, "", handoffRefuse},
		{"after the migration ended, from where it was", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, requestedHere, true, "hv1", handoffInstall},
		{"after the migration ended, from elsewhere", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, requestedHere, true, "hv1", handoffRefuse},
		{"a port requested here all along", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, requestedHere, true, "", handoffRefuse},
	} {
		if got := judgeHandoff("hv2", c.h, c.pb, c.translated, c.origin); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.what, got, c.want)
		}
	}
}
