package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Event types (bpf/events.h).
const (
	EventVIPAnnounce = 1 // a port announced one of its virtual IPs
	EventAddrSeen    = 2 // a port with unknown addresses used an IP
	EventResumed     = 3 // a migrating port's guest announced itself here (RARP or ARP)
)

// Event is something only the data plane saw.
type Event struct {
	Type    uint32
	Ifindex int
	IP      netip.Addr
	VNI     uint32
	MAC     net.HardwareAddr
	Read    time.Time // when user space read it
}

// EventReader reads the data plane's events.
type EventReader struct{ r *ringbuf.Reader }

// Events opens the event ring buffer.
func (d *Datapath) Events() (*EventReader, error) {
	r, err := ringbuf.NewReader(d.objs.EventsV1)
	if err != nil {
		return nil, err
	}
	return &EventReader{r: r}, nil
}

// Read blocks for the next event; it fails once Close was called.
func (e *EventReader) Read() (Event, error) {
	rec, err := e.r.Read()
	if err != nil {
		return Event{}, err
	}
	b := rec.RawSample
	if len(b) < 24 {
		return Event{}, errors.New("short event")
	}
	return Event{Type: binary.LittleEndian.Uint32(b[0:]), Ifindex: int(binary.LittleEndian.Uint32(b[4:])),
		IP: netip.AddrFrom4([4]byte(b[8:12])), VNI: binary.LittleEndian.Uint32(b[12:]),
		MAC: append(net.HardwareAddr{}, b[16:22]...), Read: time.Now()}, nil
}

// SetDeadline makes Read fail with os.ErrDeadlineExceeded once t has
// passed without an event; the zero time waits forever.
func (e *EventReader) SetDeadline(t time.Time) { e.r.SetDeadline(t) }

// Close stops Read.
func (e *EventReader) Close() error { return e.r.Close() }
