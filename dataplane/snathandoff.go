package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// A live-migrated port's SNAT connections follow it (hostd/snathandoff.go
// carries them through the southbound): the old host exports the
// connections it translated for the port, the new host imports them under
// its own ifindex for the port, so that the port's next packet of a
// connection leaves from the same address and port and what comes back
// for it is translated back. The port's address and VPC are the port's,
// the same on both hosts: a handed-off connection does not carry them.

// SNATHandoffConn is one translated connection of a port, as it moves
// from host to host.
type SNATHandoffConn struct {
	Proto   uint8
	Port    uint16     // the port's own source port (ICMP echo: identifier)
	Remote  netip.Addr // the remote end
	RPort   uint16     // its port (ICMP echo: 0)
	Ext     netip.Addr // the SNAT address the connection left from
	EPort   uint16     // and its port, in one of the port's blocks
	Closing bool       // a FIN or a reset was seen
}

// String is the connection as the southbound carries it (SNAT_Handoff
// connections): "PROTO PORT REMOTE:RPORT EXT:EPORT[ closing]".
func (c SNATHandoffConn) String() string {
	s := fmt.Sprintf("%d %d %s %s", c.Proto, c.Port, netip.AddrPortFrom(c.Remote, c.RPort), netip.AddrPortFrom(c.Ext, c.EPort))
	if c.Closing {
		s += " closing"
	}
	return s
}

// ParseSNATHandoffConn reads what String wrote.
func ParseSNATHandoffConn(s string) (SNATHandoffConn, error) {
	var c SNATHandoffConn
	var remote, ext, closing string
	n, _ := fmt.Sscanf(s, "%d %d %s %s %s", &c.Proto, &c.Port, &remote, &ext, &closing)
	r, err1 := netip.ParseAddrPort(remote)
	e, err2 := netip.ParseAddrPort(ext)
	if n < 4 || err1 != nil || err2 != nil || !r.Addr().Is4() || !e.Addr().Is4() || (n == 5 && closing != "closing") ||
		(c.Proto != 6 && c.Proto != 17 && c.Proto != 1) {
		return c, fmt.Errorf("SNAT handoff connection %q: want \"PROTO PORT REMOTE:RPORT EXT:EPORT[ closing]\"", s)
	}
	c.Remote, c.RPort, c.Ext, c.EPort, c.Closing = r.Addr(), r.Port(), e.Addr(), e.Port(), n == 5
	return c, nil
}

// SNATExport lists the connections translated for the port that had
// ifindex here (the port may be gone: its entries stay until the next
// SNATGC).
func (d *Datapath) SNATExport(ifindex int) ([]SNATHandoffConn, error) {
	fwd := d.snatFwdT()
	entries, err := fwd.dump()
	if err != nil {
		return nil, err
	}
	var out []SNATHandoffConn
	for k, v := range entries {
		if int(v.Ifindex) != ifindex {
			continue
		}
		out = append(out, SNATHandoffConn{Proto: k.Proto, Port: htons(k.Port), Remote: fromBE32(k.Remote), RPort: htons(k.Rport),
			Ext: fromBE32(v.Ext), EPort: htons(v.Eport), Closing: v.Flags&snatClosing != 0})
	}
	return out, nil
}

// SNATImport installs connections handed off from the port's old host
// for the local port ifindex, which must be translated here already
// (its blocks applied): a connection outside the port's blocks is
// refused, one whose tuple or external port is mapped here already is
// left as it is (unless it is the same connection, left under another
// ifindex when the port was here before: it is the port's again). It
// returns how many it installed and how many it
// refused or skipped.
func (d *Datapath) SNATImport(ifindex int, conns []SNATHandoffConn) (installed, skipped int, err error) {
	p, ok := d.snatPortsT().lookup(uint32(ifindex))
	if !ok {
		return 0, len(conns), fmt.Errorf("SNAT import: ifindex %d is not translated here", ifindex)
	}
	now := monotonic()
	var errs []error
	for _, c := range conns {
		if !c.Remote.Is4() || !c.Ext.Is4() || !inBlocks(p, be32(c.Ext), c.EPort) {
			skipped++
			continue
		}
		var flags uint8
		if c.Closing {
			flags = snatClosing
		}
		fk := dvrSnatFkey{Vpc: p.Vpc, Addr: p.Addr, Remote: be32(c.Remote), Port: htons(c.Port), Rport: htons(c.RPort), Proto: c.Proto}
		rk := dvrSnatRkey{Ext: be32(c.Ext), Remote: fk.Remote, Eport: htons(c.EPort), Rport: fk.Rport, Proto: c.Proto}
		rv := dvrSnatRval{Vpc: p.Vpc, Addr: p.Addr, Port: fk.Port, Flags: flags, Ifindex: uint32(ifindex), SeenNs: now}
		fv := dvrSnatFval{Ext: rk.Ext, Eport: rk.Eport, Flags: flags, Ifindex: uint32(ifindex), SeenNs: now}
		// As the program does: the reverse entry first, without
		// replacing, so that an external port in use here stays its
		// connection's; then the forward one, likewise.
		if err := d.objs.SnatRevV1.Update(rk, rv, ebpf.UpdateNoExist); err != nil {
			if !errors.Is(err, ebpf.ErrKeyExist) {
				errs = append(errs, fmt.Errorf("snat_rev: %w", err))
			} else if ok, err := d.snatAdopt(fk, rk, ifindex); err != nil {
				errs = append(errs, err)
			} else if ok {
				installed++
				continue
			}
			skipped++
			continue
		}
		if err := d.objs.SnatFwdV1.Update(fk, fv, ebpf.UpdateNoExist); err != nil {
			if errors.Is(err, ebpf.ErrKeyExist) && c.Proto != 6 {
				// A datagram flow the VM sent on before its
				// handoff came was mapped anew here, from
				// another port: the handed-over mapping, the
				// one the far end knows, takes its place.
				if err := d.snatReplaceFwd(fk, fv); err != nil {
					errs = append(errs, err)
				} else {
					installed++
					continue
				}
			} else if !errors.Is(err, ebpf.ErrKeyExist) {
				errs = append(errs, fmt.Errorf("snat_fwd: %w", err))
			}
			errs = append(errs, d.snatRevT().delete(rk))
			skipped++
			continue
		}
		installed++
	}
	return installed, skipped, errors.Join(errs...)
}

// snatReplaceFwd maps the VM's side fk to fv in place of the mapping it
// has, whose reverse entry goes (if it is still that flow's): a TCP
// connection is mapped only by its SYN, so this is for datagram flows,
// whose first packets after a migration can beat their handoff.
func (d *Datapath) snatReplaceFwd(fk dvrSnatFkey, fv dvrSnatFval) error {
	fwd, rev := d.snatFwdT(), d.snatRevT()
	if old, ok := fwd.lookup(fk); ok && (old.Ext != fv.Ext || old.Eport != fv.Eport) {
		ork := dvrSnatRkey{Ext: old.Ext, Remote: fk.Remote, Eport: old.Eport, Rport: fk.Rport, Proto: fk.Proto}
		if r, ok := rev.lookup(ork); ok && r.Vpc == fk.Vpc && r.Addr == fk.Addr && r.Port == fk.Port {
			if err := rev.delete(ork); err != nil {
				return err
			}
		}
	}
	return fwd.put(fk, fv)
}

// snatAdopt gives the local port ifindex the connection fk -> rk that
// this host maps already under another ifindex: the port's own, left
// from when it was here before (a port that migrates away and back
// within a sweep). It says whether the entries were the same connection.
func (d *Datapath) snatAdopt(fk dvrSnatFkey, rk dvrSnatRkey, ifindex int) (bool, error) {
	fwd := d.snatFwdT()
	rev := d.snatRevT()
	f, okf := fwd.lookup(fk)
	r, okr := rev.lookup(rk)
	if !okf || !okr || f.Ext != rk.Ext || f.Eport != rk.Eport || r.Vpc != fk.Vpc || r.Addr != fk.Addr || r.Port != fk.Port {
		return false, nil
	}
	if int(f.Ifindex) == ifindex && int(r.Ifindex) == ifindex {
		return false, nil // installed already
	}
	f.Ifindex, r.Ifindex = uint32(ifindex), uint32(ifindex)
	return true, errors.Join(fwd.put(fk, f), rev.put(rk, r))
}
