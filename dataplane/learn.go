package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf/ringbuf"
)

// Learn message operations (see bpf/learn.h for the wire format).
const (
	LearnVersion = 1
	OpLearn      = 1
	OpForget     = 2
	OpUnknown    = 3 // from a hub: no port has IP
	OpProbe      = 4 // to a hub: are you there?
	OpProbeReply = 5 // from a hub, answered in its kernel
	// EtherTypeLearn is the inner ethertype of learn messages.
	EtherTypeLearn = 0x88B5
	learnMsgLen    = 24
)

// LearnMsg tells a host where a destination lives (OpLearn) or that its
// entry is stale (OpForget).
type LearnMsg struct {
	Op   uint8
	VNI  uint32
	IP   netip.Addr
	MAC  net.HardwareAddr
	VTEP netip.Addr
}

// Marshal encodes the inner frame: Ethernet header and message.
func (m LearnMsg) Marshal() []byte {
	b := make([]byte, 14+learnMsgLen)
	binary.BigEndian.PutUint16(b[12:], EtherTypeLearn)
	p := b[14:]
	p[0] = LearnVersion
	p[1] = m.Op
	binary.BigEndian.PutUint32(p[4:], m.VNI)
	if m.IP.IsValid() {
		ip := m.IP.As4()
		copy(p[8:12], ip[:])
	}
	copy(p[12:18], m.MAC)
	if m.VTEP.IsValid() {
		v := m.VTEP.As4()
		copy(p[20:24], v[:])
	}
	return b
}

// ParseLearnMsg decodes an inner frame.
func ParseLearnMsg(b []byte) (LearnMsg, error) {
	if len(b) < 14+learnMsgLen || binary.BigEndian.Uint16(b[12:]) != EtherTypeLearn {
		return LearnMsg{}, errors.New("not a learn message")
	}
	return parseLearnBody(b[14:])
}

// parseLearnBody decodes a message without its Ethernet header.
func parseLearnBody(p []byte) (LearnMsg, error) {
	if len(p) < learnMsgLen {
		return LearnMsg{}, errors.New("short learn message")
	}
	if p[0] != LearnVersion {
		return LearnMsg{}, fmt.Errorf("learn message version %d", p[0])
	}
	m := LearnMsg{Op: p[1], VNI: binary.BigEndian.Uint32(p[4:]), IP: netip.AddrFrom4([4]byte(p[8:12])),
		MAC: append(net.HardwareAddr{}, p[12:18]...), VTEP: netip.AddrFrom4([4]byte(p[20:24]))}
	return m, nil
}

// Sender sends learn messages from user space, for what the kernel cannot
// see happen: a hub whose binding of an address changed (a VM moved, a
// port was deleted) tells the hosts it taught about it.
type Sender struct {
	conn *net.UDPConn
}

// NewSender opens a UDP socket bound to this host's VTEP address, so that
// receivers see the message coming from it.
func NewSender(vtep netip.Addr) (*Sender, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: vtep.AsSlice()})
	if err != nil {
		return nil, err
	}
	return &Sender{conn: c}, nil
}

// Send sends m to host `to`, in a VXLAN packet with VNI vni.
func (s *Sender) Send(to netip.Addr, vni uint32, m LearnMsg) error {
	hdr := make([]byte, 8)
	hdr[0] = 0x08 // VNI present
	binary.BigEndian.PutUint32(hdr[4:], vni<<8)
	_, err := s.conn.WriteToUDP(append(hdr, m.Marshal()...), &net.UDPAddr{IP: to.AsSlice(), Port: VXLANPort})
	return err
}

// Close closes the socket.
func (s *Sender) Close() error { return s.conn.Close() }

// LearnOut reads the learn messages the kernel hands to hostd to send
// (bpf/teach.h): those whose triggering packet, merged by GRO, the
// kernel could not turn into the message.
type LearnOut struct{ r *ringbuf.Reader }

// LearnOut opens the kernel's queue of messages to send.
func (d *Datapath) LearnOut() (*LearnOut, error) {
	r, err := ringbuf.NewReader(d.objs.LearnOutV1)
	if err != nil {
		return nil, err
	}
	return &LearnOut{r: r}, nil
}

// Read blocks for the next message: where it goes, in which VNI, and
// the message. It fails once Close was called.
func (l *LearnOut) Read() (to netip.Addr, vni uint32, m LearnMsg, err error) {
	rec, err := l.r.Read()
	if err != nil {
		return netip.Addr{}, 0, LearnMsg{}, err
	}
	b := rec.RawSample
	if len(b) < 8+learnMsgLen {
		return netip.Addr{}, 0, LearnMsg{}, errors.New("short learn_out record")
	}
	to = fromHost32(binary.LittleEndian.Uint32(b[0:]))
	vni = binary.LittleEndian.Uint32(b[4:])
	m, err = parseLearnBody(b[8:])
	return to, vni, m, err
}

// Close stops Read.
func (l *LearnOut) Close() error { return l.r.Close() }
