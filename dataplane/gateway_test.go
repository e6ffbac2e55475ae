package dataplane

import (
	"bytes"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// linkMAC is the MAC of interface ifindex in the test namespace.
func linkMAC(t *testing.T, ifindex int) net.HardwareAddr {
	t.Helper()
	var l netlink.Link
	var err error
	within(func() { l, err = netlink.LinkByIndex(ifindex) })
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

// A gateway's uplink carries only the frames addressed to it. When the
// sandbox's internet reached its gateways through one bridge, the bridge
// flooded the frames for a dead gateway's MAC to the survivor, whose
// program tunnelled them anyway: every EIP packet arrived once per live
// gateway, and the bench measured no inbound loss when a gateway died
// (bench/results/2026-12-02T18-36-47Z.md). BPF_PROG_RUN classifies the
// frame against the interface of the run's ifindex, as the wire would.
func TestGatewayTakesOnlyFramesForItsOwnMAC(t *testing.T) {
	f := newFixture(t, false)
	up := veth(t, "up0")
	f.state.Gateway = &Gateway{Uplink: up, EIPs: []GatewayEIP{{EIP: eip1, VTEP: peerA, VNI: 5001, MAC: vm1MAC, GwMAC: gwMAC}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	d := f.d
	ip := ipPacket(client, eip1, protoTCP, tcpSeg(43210, 80, "x"), 0)
	for _, c := range []struct {
		name string
		dst  net.HardwareAddr
		take bool
	}{
		{"addressed to the uplink: tunnelled", linkMAC(t, up), true},
		{"addressed to another gateway: left to the stack, which drops it", mac("02:aa:00:00:00:01"), false},
		{"broadcast: left to the stack", mac("ff:ff:ff:ff:ff:ff"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			resetSent(d)
			frame := append(ethHdr(c.dst, mac("02:bb:00:00:00:01"), 0x0800), ip...)
			r := run(t, d.objs.GwUplinkIngress, up, frame)
			after, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			vtep, _, ifx, _ := sent(t, d)
			took := after["gw_down"] - before["gw_down"]
			if c.take {
				if r.verdict != actRedirect || vtep != peerA || ifx != d.vxlan || took != 1 {
					t.Errorf("verdict %d to %s ifindex %d, gw_down +%d; want tunnelled to %s", r.verdict, vtep, ifx, took, peerA)
				}
				return
			}
			if r.verdict != actOK || vtep.IsValid() && !vtep.IsUnspecified() || ifx != 0 || took != 0 || !bytes.Equal(r.out[:len(frame)], frame) {
				t.Errorf("verdict %d to %s ifindex %d, gw_down +%d, frame %x; want TC_ACT_OK and the frame untouched",
					r.verdict, vtep, ifx, took, r.out[:len(frame)])
			}
		})
	}
}
