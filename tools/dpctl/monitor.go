package dpctl

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// monitorCommand streams a chassis's drops, as cilium monitor --type drop
// does: the stage, the named reason, where the packet came from and a
// line about it.
func monitorCommand(out io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "monitor",
		Usage: "stream the data plane's drops live (until interrupted, or --count)",
		Description: `Switches drop reports on in the chassis's data plane while it runs (they stop a few
seconds after it ends, even if killed), at most --rate a second: the limit is applied in the
kernel, so a flood of drops costs the host little. Each line: time, stage, reason, where the
packet came from, and the packet.`,
		Flags: []cli.Flag{
			&cli.Float64Flag{Name: "rate", Value: 100, Usage: "report at most this many drops a second (0: all)"},
			&cli.IntFlag{Name: "burst", Value: 100, Usage: "... and this many at once"},
			&cli.IntFlag{Name: "count", Usage: "stop after `N` drops"},
			&cli.DurationFlag{Name: "for", Usage: "stop after `DURATION`"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text or json (one object a line)"},
		},
		Action: func(cx *cli.Context) error {
			if cx.NArg() > 0 {
				return fmt.Errorf("monitor takes no arguments, not %q", cx.Args().First())
			}
			pinRoot, ns := where(cx)
			m, err := dataplane.OpenMonitor(pinRoot, cx.String("chassis"), dataplane.Budget{Rate: cx.Float64("rate"), Burst: cx.Int("burst")})
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			go func() {
				select {
				case <-sig:
				case <-after(cx.Duration("for")):
				}
				m.Close()
			}()
			defer m.Close()
			names := portNames{ns: ns, cache: map[int]string{}}
			for n := 0; cx.Int("count") == 0 || n < cx.Int("count"); n++ {
				e, err := m.Read()
				if err != nil {
					return nil // closed
				}
				printDrop(out, cx.String("format"), e, names)
			}
			return nil
		},
	}
}

func after(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return time.After(d)
}

// portNames names ports by their host-side ifindex (their alias).
type portNames struct {
	ns    string
	cache map[int]string
}

func (p portNames) name(ifindex int) string {
	if n, ok := p.cache[ifindex]; ok {
		return n
	}
	name := fmt.Sprintf("ifindex %d", ifindex)
	look := func() error {
		if l, err := netlink.LinkByIndex(ifindex); err == nil {
			if s, ok := strings.CutPrefix(l.Attrs().Alias, dataplane.AliasPrefix); ok {
				name = s
			}
		}
		return nil
	}
	if p.ns == "" {
		look()
	} else {
		lab.Do(p.ns, look)
	}
	p.cache[ifindex] = name
	return name
}

type dropJSON struct {
	Time   string `json:"time"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	From   string `json:"from"`
	VNI    uint32 `json:"vni"`
	Len    int    `json:"len"`
	Packet string `json:"packet"`
}

func printDrop(w io.Writer, format string, e dataplane.DropEvent, names portNames) {
	from := "port " + names.name(e.Ifindex)
	if e.Tunnel {
		from = "host " + e.Src.String()
	}
	d := dropJSON{Time: time.Now().Format("15:04:05.000"), Stage: pipeline.Stages[e.Stage].Name, Reason: pipeline.DropName(e.Reason),
		From: from, VNI: e.VNI, Len: e.Len, Packet: summarize(e.Packet)}
	if format == "json" {
		b, _ := json.Marshal(d)
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "%s drop %s at %s from %s vni %d: %s (%d bytes)\n", d.Time, d.Reason, d.Stage, d.From, d.VNI, d.Packet, d.Len)
}

// summarize says in a line what the first bytes of a frame are.
func summarize(b []byte) string {
	if len(b) < 14 {
		return "a runt frame"
	}
	eth := fmt.Sprintf("%s > %s", net.HardwareAddr(b[6:12]), net.HardwareAddr(b[0:6]))
	p := b[14:]
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0806:
		if len(p) < 28 {
			return eth + " ARP, truncated"
		}
		op := "request who-has " + netip.AddrFrom4([4]byte(p[24:28])).String()
		if binary.BigEndian.Uint16(p[6:]) == 2 {
			op = "reply " + netip.AddrFrom4([4]byte(p[14:18])).String() + " is-at " + net.HardwareAddr(p[8:14]).String()
		}
		return fmt.Sprintf("%s ARP %s tell %s", eth, op, netip.AddrFrom4([4]byte(p[14:18])))
	case 0x0800:
		if len(p) < 20 {
			return eth + " IPv4, truncated"
		}
		proto := map[byte]string{1: "ICMP", 6: "TCP", 17: "UDP"}[p[9]]
		if proto == "" {
			proto = fmt.Sprintf("proto %d", p[9])
		}
		l4 := ""
		if ihl := int(p[0]&0xf) * 4; (p[9] == 6 || p[9] == 17) && len(p) >= ihl+4 {
			l4 = fmt.Sprintf(" %d > %d", binary.BigEndian.Uint16(p[ihl:]), binary.BigEndian.Uint16(p[ihl+2:]))
		}
		return fmt.Sprintf("%s IPv4 %s > %s %s%s ttl %d", eth, netip.AddrFrom4([4]byte(p[12:16])),
			netip.AddrFrom4([4]byte(p[16:20])), proto, l4, p[8])
	case 0x86dd:
		return eth + " IPv6"
	case dataplane.EtherTypeLearn:
		return eth + " a learn message"
	}
	return fmt.Sprintf("%s ethertype %#04x", eth, binary.BigEndian.Uint16(b[12:]))
}
