package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Drop monitoring (bpf/monitor.h): while a monitor holds the lease in
// monitor_v1, the data plane reports every drop, at most at the rate the
// monitor asked, to monitor_events_v1. The lease is renewed every second
// and lasts three, so a monitor killed without cleaning up stops the
// reports within seconds.

// DropEvent is one drop, as the data plane reported it.
type DropEvent struct {
	Stage   int
	Reason  int
	Tunnel  bool       // from the tunnel (else from a port)
	Ifindex int        // the port it came from
	Src     netip.Addr // the host it came from (tunnel)
	VNI     uint32
	Len     int    // of the whole packet
	Packet  []byte // its first bytes
}

const monitorLease = 3 * time.Second

// Monitor reports a chassis's drops until Close.
type Monitor struct {
	cfg, events *ebpf.Map
	r           *ringbuf.Reader
	cost, burst uint64
	stop        chan struct{}
	wg          sync.WaitGroup
}

// OpenMonitor starts reporting the drops of the chassis pinned under
// pinRoot, at most rate a second (burst at once; a zero rate is no limit).
func OpenMonitor(pinRoot, chassis string, limit Budget) (*Monitor, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	dir := filepath.Join(pinRoot, chassis)
	cfg, err := ebpf.LoadPinnedMap(filepath.Join(dir, "monitor_v1"), nil)
	if err != nil {
		return nil, fmt.Errorf("no data plane pinned for chassis %s under %s (or one too old to monitor): %w", chassis, pinRoot, err)
	}
	events, err := ebpf.LoadPinnedMap(filepath.Join(dir, "monitor_events_v1"), nil)
	if err != nil {
		cfg.Close()
		return nil, err
	}
	r, err := ringbuf.NewReader(events)
	if err != nil {
		cfg.Close()
		events.Close()
		return nil, err
	}
	m := &Monitor{cfg: cfg, events: events, r: r, stop: make(chan struct{})}
	m.cost, m.burst = limit.gcra()
	if err := m.renew(); err != nil {
		m.Close()
		return nil, err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.renew()
			}
		}
	}()
	return m, nil
}

func (m *Monitor) renew() error {
	var old dvrMonitorCfg
	m.cfg.Lookup(uint32(0), &old)
	c := dvrMonitorCfg{UntilNs: monotonic() + uint64(monitorLease), CostNs: m.cost, BurstNs: m.burst, Tat: old.Tat}
	return m.cfg.Put(uint32(0), c)
}

// Read blocks for the next drop; it fails once Close was called.
func (m *Monitor) Read() (DropEvent, error) {
	rec, err := m.r.Read()
	if err != nil {
		return DropEvent{}, err
	}
	b := rec.RawSample
	if len(b) < 24 {
		return DropEvent{}, errors.New("short drop event")
	}
	e := DropEvent{Stage: int(b[0]), Tunnel: b[1] == 1, Reason: int(binary.LittleEndian.Uint16(b[2:])),
		Ifindex: int(binary.LittleEndian.Uint32(b[4:])), VNI: binary.LittleEndian.Uint32(b[12:]),
		Len: int(binary.LittleEndian.Uint32(b[16:]))}
	if src := binary.LittleEndian.Uint32(b[8:]); src != 0 {
		e.Src = fromHost32(src)
	}
	caplen := int(binary.LittleEndian.Uint32(b[20:]))
	if caplen > len(b)-24 {
		caplen = len(b) - 24
	}
	e.Packet = append([]byte{}, b[24:24+caplen]...)
	return e, nil
}

// Close ends the lease and the reader.
func (m *Monitor) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
	m.cfg.Put(uint32(0), dvrMonitorCfg{})
	err := m.r.Close()
	m.cfg.Close()
	m.events.Close()
	return err
}
