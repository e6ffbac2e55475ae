package hostd

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/courier-sdn/courier/dataplane"
)

// Hub liveness (dataplane/hubprobe.go): hostd probes every hub of the
// VPCs it takes part in, and the data plane passes over a hub that stops
// answering for another that answers, if any. This costs each hub one small packet per host per interval
// (10 a second by default), answered in its kernel: with 1,000 hosts,
// 10,000 packets a second, against the seconds of failed new flows that
// waiting for southd would cost.

// setProbes records which hubs and gateways to probe after a reconcile
// (probeTargets).
func (d *Daemon) setProbes(st *dataplane.State) {
	probes := probeTargets(st, d.cfg.EncapIP)
	hubs := make([]netip.Addr, 0, len(probes))
	for h := range probes {
		hubs = append(hubs, h)
	}
	if err := d.dp.ProbeHubs(hubs); err != nil {
		d.log.Warn("record the hubs to probe", "err", err)
		return
	}
	d.probes = probes
}

// probeTarget is how a VTEP is probed: in which VNI, and whether it is a
// gateway (else a hub).
type probeTarget struct {
	vni     uint32
	gateway bool
}

// probeTargets is what a host probes, each VTEP with the VNI to probe it
// in: every hub of this host's VPCs but itself, each with a VNI of one of
// its VPCs (the hub's tunnel program drops packets of VNIs it does not
// serve), and the gateways of the networks its ports reach through an EIP
// or SNAT, which answer in any VNI. A gateway not probed is never judged
// silent, so pick_gateway would keep hashing flows to it after it died.
func probeTargets(st *dataplane.State, self netip.Addr) map[netip.Addr]probeTarget {
	vniOf := map[uint32]uint32{}
	for _, v := range st.Vxnets {
		if old, ok := vniOf[v.VPC]; !ok || v.VNI < old {
			vniOf[v.VPC] = v.VNI
		}
	}
	probes := map[netip.Addr]probeTarget{}
	for _, h := range st.Hubs {
		vni, ok := vniOf[h.VPC]
		if !ok {
			continue
		}
		for _, vtep := range h.VTEPs {
			if vtep == self {
				continue
			}
			if old, ok := probes[vtep]; !ok || vni < old.vni {
				probes[vtep] = probeTarget{vni: vni}
			}
		}
	}
	// The gateways of its networks, in the vxnet of a port that uses one.
	portVNI := map[int]uint32{}
	for _, p := range st.Ports {
		portVNI[p.Ifindex] = p.VNI
	}
	netVNI := map[uint32]uint32{}
	uses := func(ifindex int, network uint32) {
		if vni, ok := portVNI[ifindex]; ok {
			netVNI[network] = vni
		}
	}
	for _, e := range st.EIPs {
		uses(e.Ifindex, e.Network)
	}
	for _, p := range st.SNATPorts {
		uses(p.Ifindex, p.Network)
	}
	for _, g := range st.EIPGateways {
		vni, ok := netVNI[g.Network]
		if !ok {
			continue
		}
		for _, vtep := range g.VTEPs {
			if _, seen := probes[vtep]; !seen && vtep != self {
				probes[vtep] = probeTarget{vni: vni, gateway: true}
			}
		}
	}
	return probes
}

// probe sends one probe to every hub and gateway, and tells how many
// have gone silent.
func (d *Daemon) probe() {
	if d.probingSince.IsZero() {
		d.probingSince = time.Now()
	}
	for vtep, p := range d.probes {
		if err := d.sender.Probe(vtep, p.vni, d.cfg.EncapIP); err != nil {
			if d.logLimit.allow("probe/" + vtep.String()) {
				d.log.Warn("probe a hub or gateway", "vtep", vtep, "err", err)
			}
			continue
		}
		d.m.probes.Inc()
	}
	seen, err := d.dp.HubSeen()
	if err != nil {
		return
	}
	down := 0
	for vtep, ago := range seen {
		// hub_seen is pinned: after a restart its stamps are as old as
		// the restart took. A VTEP is not judged silent for longer than
		// this process has probed it, nor one it does not probe.
		if _, probed := d.probes[vtep]; !probed || !d.dp.HubDown(min(ago, time.Since(d.probingSince))) {
			continue
		}
		down++
		if !d.logLimit.allow("down/" + vtep.String()) {
			continue
		}
		if d.probes[vtep].gateway {
			d.log.Warn("a gateway stopped answering probes; new packets go to another of its network's gateways that answers, if any", "gateway", vtep, "silent", ago)
		} else {
			d.log.Warn("a hub stopped answering probes; new flows go to another of the VPC's hubs that answers, if any", "hub", vtep, "silent", ago)
		}
	}
	d.m.hubsDown.Set(float64(down))
}

// sendForKernel sends the learn messages the kernel hands over (those
// whose packet it could not turn into them, bpf/teach.h), until lo is
// closed. The kernel rate-limits them per sender and address.
func (d *Daemon) sendForKernel(lo *dataplane.LearnOut) {
	var failed time.Time
	for {
		to, vni, m, err := lo.Read()
		if errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
			return
		}
		if err == nil {
			err = d.sender.Send(to, vni, m)
		}
		if err != nil && time.Since(failed) > 10*time.Second {
			failed = time.Now()
			d.log.Warn("send a learn message for the kernel", "to", to, "ip", m.IP, "err", err)
		}
	}
}
