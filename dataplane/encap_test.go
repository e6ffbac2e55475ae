package dataplane_test

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
)

// TestProgramsEncapsulate: h1's programs put the VXLAN headers on
// themselves (encap.h) and h2 leaves it to its VXLAN device
// (KernelEncap). Pings and TCP (GSO packets, both ways) cross; what h1
// sends looks on the wire as what h2's device sends, field by field; h1
// counts next to nothing in encap_device (a packet or two while the
// neighbour is resolved) and h2 counts everything it sent there.
func TestProgramsEncapsulate(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.kernelEncap = map[string]bool{"h2": true}
	for _, h := range []string{"h1", "h2"} {
		w.load(t, h, true)
		s := w.baseState(h)
		s.Bindings = w.bindings(h)
		w.apply(t, h, s)
	}
	w.mustPing(t, "a1", "10.0.1.12")
	w.mustPing(t, "a1", "10.0.2.12")

	// One echo each way of a ping from a1 to a3, caught on the receiving
	// host's underlay: the request as h1's programs wrote it, the reply
	// as h2's device did.
	h1, h2 := w.lab.Hosts["h1"], w.lab.Hosts["h2"]
	icmp := " and udp[28:2] = 0x0800 and udp[39] = 1" // inner IPv4, ICMP
	req := capture(t, h2.NS, "udp dst port 4789 and src host "+h1.VTEP.String()+icmp)
	rep := capture(t, h1.NS, "udp dst port 4789 and src host "+h2.VTEP.String()+icmp)
	time.Sleep(500 * time.Millisecond)
	if n, out := w.lab.Ping("a1", ip("10.0.1.12"), 1, "0.2"); n != 1 {
		t.Fatalf("a1 -> a3: no answer\n%s", out)
	}
	sameOuter(t, req(), rep())

	w.tcp(t, "a1", "a3", "10.0.1.12")
	w.tcp(t, "a4", "a1", "10.0.1.11")
	c1, c2 := w.counters(t, "h1"), w.counters(t, "h2")
	t.Logf("h1: remote_tx %d, encap_device %d; h2: remote_tx %d, encap_device %d", c1["remote_tx"], c1["encap_device"], c2["remote_tx"], c2["encap_device"])
	if c1["remote_tx"] < 1000 || c1["encap_device"] > 5 {
		t.Errorf("h1 sent %d to other hosts, %d of them through its VXLAN device: want the programs to send all but the first few",
			c1["remote_tx"], c1["encap_device"])
	}
	if c2["remote_tx"] < 1000 || c2["encap_device"] < c2["remote_tx"] {
		t.Errorf("h2 (KernelEncap) sent %d to other hosts, %d through its VXLAN device: want all", c2["remote_tx"], c2["encap_device"])
	}
}

func (w *world) counters(t *testing.T, h string) map[string]uint64 {
	t.Helper()
	var c map[string]uint64
	err := lab.Do(w.lab.Hosts[h].NS, func() error { var err error; c, err = w.dp[h].Counters(); return err })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// capture starts tcpdump in ns for one packet matching filter, on eth0
// (the lab's underlay), and returns a function that waits for it: the
// frame's bytes.
func capture(t *testing.T, ns, filter string) func() []byte {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "-c", "1", "-nn", "-xx", "-U", filter)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return func() []byte {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("tcpdump in %s caught nothing for %q", ns, filter)
		}
		return hexDump(t, out.String())
	}
}

// hexDump reads tcpdump -xx's lines ("\t0x0010:  4500 0054 ...").
func hexDump(t *testing.T, s string) []byte {
	var b []byte
	for _, line := range strings.Split(s, "\n") {
		_, rest, ok := strings.Cut(strings.TrimSpace(line), ":  ")
		if !ok || !strings.HasPrefix(strings.TrimSpace(line), "0x") {
			continue
		}
		h, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
		if err != nil {
			t.Fatalf("tcpdump line %q: %v", line, err)
		}
		b = append(b, h...)
	}
	return b
}

// sameOuter compares the outer headers of two VXLAN frames that carry an
// echo request and its reply: equal but for what must differ (addresses
// swapped, the UDP source port, which comes from the inner flow, the IP
// ID and so the checksum).
func sameOuter(t *testing.T, prog, kern []byte) {
	t.Helper()
	if len(prog) < 64 || len(kern) < 64 {
		t.Fatalf("short frames: %d and %d bytes", len(prog), len(kern))
	}
	field := func(name string, off, n int) {
		if a, b := prog[off:off+n], kern[off:off+n]; string(a) != string(b) {
			t.Errorf("%s: the programs wrote % x, the device % x", name, a, b)
		}
	}
	field("ethertype", 12, 2)
	field("IP version, header length, TOS, total length", 14, 4)
	field("IP flags and fragment offset", 20, 2)
	field("TTL and protocol", 22, 2)
	field("UDP destination port, length and checksum", 36, 6)
	field("VXLAN header", 42, 8)
	if string(prog[26:30]) != string(kern[30:34]) || string(prog[30:34]) != string(kern[26:30]) {
		t.Errorf("addresses: % x -> % x, reply % x -> % x", prog[26:30], prog[30:34], kern[26:30], kern[30:34])
	}
	if sport := int(prog[34])<<8 | int(prog[35]); sport < 32768 || sport >= 61000 {
		t.Errorf("UDP source port %d is outside 32768-60999", sport)
	}
	if sum := ipSum(prog[14:34]); sum != 0xffff {
		t.Errorf("outer IP checksum does not add up: %#x", sum)
	}
	t.Logf("programs: %s\ndevice:   %s", fmt.Sprintf("% x", prog[:64]), fmt.Sprintf("% x", kern[:64]))
}

func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
