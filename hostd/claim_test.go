package hostd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// claimWatch follows, transaction by transaction, one port's binding
// and a chassis's claims, and notes every moment the port was bound
// nowhere while that chassis, which had lost the VM, still claimed it.
type claimWatch struct {
	port, chassis string
	mu            sync.Mutex
	gone          bool // the chassis lost the VM's interface
	claims        []string
	bound         *string
	stale         []string
}

func (w *claimWatch) event(m model.Model) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch r := m.(type) {
	case *sbdb.ChassisPrivate:
		if r.Name == w.chassis {
			w.claims = slices.Clone(r.Claims)
		}
	case *sbdb.PortBinding:
		if r.LogicalPort == w.port {
			w.bound = r.Chassis
		}
	default:
		return
	}
	// Released (bound nowhere) while still claimed: southd grants it
	// back to the first claimer by name. (southd may move it to another
	// live claimer meanwhile, which is no release.)
	if w.gone && w.bound == nil && slices.Contains(w.claims, w.port) {
		w.stale = append(w.stale, fmt.Sprintf("released while %s claims %v", w.chassis, w.claims))
	}
}

func (w *claimWatch) handler() *cache.EventHandlerFuncs {
	return &cache.EventHandlerFuncs{
		AddFunc:    func(_ string, m model.Model) { w.event(m) },
		UpdateFunc: func(_ string, _, m model.Model) { w.event(m) },
	}
}

// A host whose VM left stops claiming the port before it releases it.
// It released first: for a moment the port was free and still claimed
// by the host it left, which southd grants first (by name), so a VM
// moving from hv1 to hv3 had its port bound back to hv1 and reached hv3
// only at a later pass of southd's, up to 2 s later (#19).
func TestReleasedPortIsNoLongerClaimed(t *testing.T) {
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := nbRun(ctx, dbs, "sb", []string{
		"vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/24",
		"--", "port-add", "x", "vm", "02:00:00:00:00:05", "10.0.0.15"}...)
	if err != nil {
		t.Fatal(err)
	}
	w := &claimWatch{port: "vm", chassis: "hv1"}
	m, _ := sbdb.FullDatabaseModel()
	obs, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.SB}, Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.ChassisPrivate{}), client.WithTable(&sbdb.PortBinding{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	obs.Cache().AddEventHandler(w.handler())
	hv1, err := connect(t, dbs, "hv1", "hv1", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	hv3, err := connect(t, dbs, "hv3", "hv3", "192.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	boundTo := func(d *Daemon, want string) func() error {
		return func() error {
			if pb := binding(t, d, "vm"); !isMe(pb.Chassis, want) {
				return fmt.Errorf("bound to %v", pb.Chassis)
			}
			return nil
		}
	}
	hv1.ifaces["vm"] = 10
	hv1.claim(ctx, nil)
	testenv.Eventually(t, 10*time.Second, "southd grants the port to hv1", boundTo(hv1, "hv1"))
	// The VM moves: its interface appears on hv3, then leaves hv1.
	hv3.ifaces["vm"] = 11
	hv3.claim(ctx, nil)
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	delete(hv1.ifaces, "vm")
	hv1.claim(ctx, []*sbdb.PortBinding{binding(t, hv1, "vm")})
	testenv.Eventually(t, 10*time.Second, "southd grants the port to hv3", boundTo(hv3, "hv3"))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.stale {
		t.Errorf("the port left hv1 while hv1 still claimed it: %s", s)
	}
}
