package dataplane

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The bench loads its baseline build's programs and sets their test
// tunnel key: an older build's tunnel_in holds a shorter record (12
// bytes before tunnel_rec.local), of which this build's is an extension.
func TestSetTestTunnelFitsAnOlderRecord(t *testing.T) {
	testenv.Root(t)
	for _, size := range []uint32{12, 16} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: size, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		coll := &ebpf.Collection{Maps: map[string]*ebpf.Map{"tunnel_in": m}}
		if err := SetTestTunnel(coll, ip4("192.168.100.3"), 5001, 7); err != nil {
			t.Fatalf("a %d-byte record: %v", size, err)
		}
		got := make([]byte, size)
		if err := m.Lookup(uint32(0), &got); err != nil {
			t.Fatal(err)
		}
		if v, vni, gbp := binary.NativeEndian.Uint32(got), binary.NativeEndian.Uint32(got[4:]), binary.NativeEndian.Uint32(got[8:]); fromHost32(v) != ip4("192.168.100.3") || vni != 5001 || gbp != 7 {
			t.Errorf("a %d-byte record holds %s vni %d gbp %d", size, fromHost32(v), vni, gbp)
		}
	}
}
