package northd

import (
	"maps"
	"math/rand"
	"testing"
)

// Each run's identities are what a full pass computes from the same
// state and the previous allocation, whether its port changes were
// handled alone (updatePorts) or by the pass, and every port whose
// identity changed is reported.
func TestIdentityUpdatesEqualFullPass(t *testing.T) {
	alone := 0
	for seed := int64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewSource(seed))
		nb := newFakeNB()
		g := &generator{r: r, nb: nb}
		inc := newCompiler()
		inc.pendingNB = nb.drain()
		inc.run(true)
		inc.consumed()
		nb.writeStatuses(inc)
		for i := 0; i < 150; i++ {
			for j := 0; j < 1+r.Intn(3); j++ {
				g.step()
			}
			before := &identities{vpcs: map[string]map[string]int{}, port: maps.Clone(inc.idents.port)}
			for v, m := range inc.idents.vpcs {
				before.vpcs[v] = maps.Clone(m)
			}
			inc.pendingNB.Merge(nb.drain())
			inc.run(false)
			want := compileIdentities(inc.nb, inc.topo, before)
			got := inc.idents
			if !maps.Equal(want.port, got.port) {
				t.Fatalf("seed %d step %d: ports' identities\n got %v\nwant %v", seed, i, got.port, want.port)
			}
			for v, m := range want.vpcs {
				if !maps.Equal(m, got.vpcs[v]) {
					t.Fatalf("seed %d step %d: VPC %s's identities\n got %v\nwant %v", seed, i, v, got.vpcs[v], m)
				}
			}
			if len(want.vpcs) != len(got.vpcs) {
				t.Fatalf("seed %d step %d: %d VPCs with identities, want %d", seed, i, len(got.vpcs), len(want.vpcs))
			}
			for u := range want.changedPorts {
				if !got.changedPorts[u] {
					t.Fatalf("seed %d step %d: port %s's identity changed unreported (%d -> %d; alone so far %d; got changed %v)", seed, i, u, before.port[u], got.port[u], inc.identsAlone, got.changedPorts)
				}
			}
			for v := range want.changedVPCs {
				if !got.changedVPCs[v] {
					t.Fatalf("seed %d step %d: VPC %s's identities changed unreported", seed, i, v)
				}
			}
			inc.consumed()
			nb.writeStatuses(inc)
		}
		alone += inc.identsAlone
	}
	if alone == 0 {
		t.Fatal("no port change was handled alone: the test checks only the full pass")
	}
	t.Logf("%d port changes handled alone", alone)
}
