package bench

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// The kernel's NAT beside the sandbox, three clients of one lab (prefix
// snkPID-, its own fabric as the sandbox's underlay):
//
//   - "ko" behind the kernel's counterpart of OVN's centralised SNAT, the
//     target's baseline: the client on a "host" namespace (ovh) whose
//     Linux bridge and kernel VXLAN device (path (b) of the data plane
//     section, bridgeVXLAN) carry it across the fabric to a "gateway"
//     namespace (ovg) that ends the VXLAN on a bridge of its own, holds
//     the client's default gateway on it, and forwards with nftables
//     masquerade and conntrack out of its uplink into the internet
//     namespace: as many hops as SNAT (a VXLAN crossing and a gateway);
//   - "kc" behind a router namespace (masq) next to it doing the same
//     masquerade: one hop, no overlay, a reference;
//   - "kr" routed by that router without NAT (the internet routes its
//     subnet back to it): the kernel NAT's own cost, against kc.
//
// Every client is made as the sandbox's VMs are (lab.AddVM: a veth, MTU
// 1450), and every NAT namespace is linked point to point into the
// internet namespace as the sandbox's gateways are. The links die with
// the lab's namespaces (Destroy).
const (
	masqClient    = "10.74.0.2"
	masqRouter    = "10.74.0.1"
	masqUplink    = "192.0.2.2"
	routedClient  = "10.75.0.2"
	routedRouter  = "10.75.0.1"
	overlayClient = "10.76.0.2"
	overlayGw     = "10.76.0.1"
	overlayUplink = "192.0.2.3"
)

var (
	overlayClientMAC = net.HardwareAddr{2, 0, 0, 0x76, 0, 2}
	overlayGwMAC     = net.HardwareAddr{2, 0, 0, 0x76, 0, 1}
)

// kernelNATs are the lab's NAT namespaces, whose conntrack the run
// watches: the overlay's gateway and the one-hop router.
var kernelNATs = []string{"ovg", "masq"}

// newKernelNAT builds those three clients and their NATs; on error it
// leaves nothing behind.
func newKernelNAT(internetNS string) (_ *lab.Lab, err error) {
	l, err := lab.New(fmt.Sprintf("snk%d-", os.Getpid()%10000), netip.MustParsePrefix("192.168.91.0/24"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Destroy()
		}
	}()
	if err := addMasqRouter(l, internetNS); err != nil {
		return nil, fmt.Errorf("one-hop router: %w", err)
	}
	if err := addOverlayGateway(l, internetNS); err != nil {
		return nil, fmt.Errorf("overlay to a gateway: %w", err)
	}
	return l, nil
}

// addMasqRouter adds the router namespace "masq" and its clients kc and
// kr.
//
// Equivalent to (R the router):
//
//	ip -n R addr add 10.74.0.1/24 dev v-kc; ip -n R addr add 10.75.0.1/24 dev v-kr
//	ip netns exec R sysctl -w net.ipv4.ip_forward=1
//	uplinkInto(R, 192.0.2.2); masquerade(R, 10.74.0.0/24)
//	ip -n INTERNET route add 10.75.0.0/24 via 192.0.2.2 dev i-masq
func addMasqRouter(l *lab.Lab, internetNS string) error {
	r, err := l.AddHost("masq", 1)
	if err != nil {
		return err
	}
	c, err := l.AddVM("kc", r, lab.VMConfig{Port: "kc", MAC: net.HardwareAddr{2, 0, 0, 0x74, 0, 2},
		Addr: netip.MustParsePrefix(masqClient + "/24"), Gateway: netip.MustParseAddr(masqRouter)})
	if err != nil {
		return err
	}
	kr, err := l.AddVM("kr", r, lab.VMConfig{Port: "kr", MAC: net.HardwareAddr{2, 0, 0, 0x75, 0, 2},
		Addr: netip.MustParsePrefix(routedClient + "/24"), Gateway: netip.MustParseAddr(routedRouter)})
	if err != nil {
		return err
	}
	if err := sh(r.NS, "ip addr add "+masqRouter+"/24 dev "+c.HostSide, "ip addr add "+routedRouter+"/24 dev "+kr.HostSide,
		"sysctl -qw net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	side, err := uplinkInto(r, internetNS, masqUplink)
	if err != nil {
		return err
	}
	if err := sh(internetNS, "ip route add 10.75.0.0/24 via "+masqUplink+" dev "+side); err != nil {
		return err
	}
	return masquerade(r.NS, "10.74.0.0/24")
}

// addOverlayGateway adds the host namespace "ovh" with client ko on its
// bridge, and the gateway namespace "ovg", across the lab's fabric.
//
// Equivalent to (H the host, G the gateway, their VTEPs on the fabric):
//
//	bridgeVXLAN(H, v-ko; 02:00:00:76:00:01 -> G)
//	bridgeVXLAN(G; 02:00:00:76:00:02 -> H)
//	ip -n G link set brv address 02:00:00:76:00:01
//	ip -n G addr add 10.76.0.1/24 dev brv
//	ip -n G neigh replace 10.76.0.2 lladdr 02:00:00:76:00:02 dev brv nud permanent
//	ip -n KO neigh replace 10.76.0.1 lladdr 02:00:00:76:00:01 dev eth0 nud permanent
//	ip netns exec G sysctl -w net.ipv4.ip_forward=1
//	uplinkInto(G, 192.0.2.3); masquerade(G, 10.76.0.0/24)
func addOverlayGateway(l *lab.Lab, internetNS string) error {
	h, err := l.AddHost("ovh", 2)
	if err != nil {
		return err
	}
	g, err := l.AddHost("ovg", 3)
	if err != nil {
		return err
	}
	ko, err := l.AddVM("ko", h, lab.VMConfig{Port: "ko", MAC: overlayClientMAC,
		Addr: netip.MustParsePrefix(overlayClient + "/24"), Gateway: netip.MustParseAddr(overlayGw)})
	if err != nil {
		return err
	}
	if err := bridgeVXLAN(h, []string{ko.HostSide}, fdbEntry{overlayGwMAC, g.VTEP}); err != nil {
		return err
	}
	if err := bridgeVXLAN(g, nil, fdbEntry{overlayClientMAC, h.VTEP}); err != nil {
		return err
	}
	if err := sh(g.NS, fmt.Sprintf("ip link set %s address %s", bridgeName, overlayGwMAC),
		"ip addr add "+overlayGw+"/24 dev "+bridgeName, "sysctl -qw net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	if err := staticNeigh(g.NS, bridgeName, overlayClient, overlayClientMAC); err != nil {
		return err
	}
	if err := staticNeigh(ko.NS, "eth0", overlayGw, overlayGwMAC); err != nil {
		return err
	}
	if _, err := uplinkInto(g, internetNS, overlayUplink); err != nil {
		return err
	}
	return masquerade(g.NS, "10.76.0.0/24")
}

// uplinkInto links h point to point into the internet namespace, as the
// sandbox links its gateways: h's side lab.UplinkName holding addr, the
// internet's side i-NAME holding the internet's address. It returns the
// internet's side.
//
// Equivalent to:
//
//	ip -n H link add up0 type veth peer i-NAME netns INTERNET
//	ip -n H addr add ADDR/32 peer 198.51.100.10/32 dev up0
//	ip -n INTERNET addr add 198.51.100.10/32 peer ADDR/32 dev i-NAME
func uplinkInto(h *lab.Host, internetNS, addr string) (string, error) {
	inet := sandbox.InternetAddr.Addr().String()
	side := lab.LinkName("i-", h.Name)
	if err := sh(h.NS, "ip link add "+lab.UplinkName+" type veth peer name "+side+" netns "+internetNS,
		"ip addr add "+addr+"/32 peer "+inet+"/32 dev "+lab.UplinkName, "ip link set "+lab.UplinkName+" up"); err != nil {
		return "", err
	}
	return side, sh(internetNS, "ip addr add "+inet+"/32 peer "+addr+"/32 dev "+side, "ip link set "+side+" up")
}

// masquerade translates what src sends out of the uplink, with
// conntrack:
//
//	nft add table ip nat
//	nft add chain ip nat post { type nat hook postrouting priority 100 ; }
//	nft add rule ip nat post ip saddr SRC oifname up0 masquerade
func masquerade(ns, src string) error {
	for _, cmd := range []string{"add table ip nat",
		"add chain ip nat post { type nat hook postrouting priority 100 ; }",
		"add rule ip nat post ip saddr " + src + " oifname " + lab.UplinkName + " masquerade"} {
		if out, err := lab.Exec(ns, "nft", cmd); err != nil {
			return fmt.Errorf("nft %s: %v: %s (is nftables installed? make deps)", cmd, err, out)
		}
	}
	return nil
}

// conntrackMax is the kernel's nf_conntrack_max, which a namespace
// other than the first cannot set: the kernel NATs' room for
// connections, beside Courier's 262,144 (0 if unreadable).
func conntrackMax() int {
	b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// kernelConntrackFailures sums conntrackFailures over the lab's NAT
// namespaces.
func kernelConntrackFailures(l *lab.Lab) (uint64, error) {
	var n uint64
	for _, h := range kernelNATs {
		f, err := conntrackFailures(l.Hosts[h].NS)
		if err != nil {
			return 0, err
		}
		n += f
	}
	return n, nil
}

// conntrackFailures is a namespace's conntrack insert_failed plus drop,
// over every CPU (/proc/net/stat/nf_conntrack).
func conntrackFailures(ns string) (uint64, error) {
	out, err := lab.Exec(ns, "cat", "/proc/net/stat/nf_conntrack")
	if err != nil {
		return 0, fmt.Errorf("conntrack statistics in %s: %v: %s", ns, err, firstLine(out))
	}
	st, err := parseConntrackStat(out)
	if err != nil {
		return 0, err
	}
	return st["insert_failed"] + st["drop"], nil
}
