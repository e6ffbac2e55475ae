package northd

import (
	"fmt"
	"maps"
	"math/rand"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
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

// The internet's identity is reserved: a full VPC's sets take every
// other number and leave the last without one, a recorded claim of it
// (a status from before it was reserved) is refused and the set numbered
// anew, lowest free first, and a set added alone never gets it either.
func TestIdentityAllocationSkipsTheInternet(t *testing.T) {
	keys := make([]string, pipeline.MaxIdentity+1)
	for i := range keys {
		keys[i] = fmt.Sprintf("g%05d", i)
	}
	ids := allocIdentities(keys, nil, nil)
	if len(ids) != pipeline.MaxIdentity {
		t.Fatalf("%d sets numbered, want %d", len(ids), pipeline.MaxIdentity)
	}
	for k, n := range ids {
		if n < 1 || n > pipeline.MaxIdentity {
			t.Fatalf("set %s got %d", k, n)
		}
	}
	if _, ok := ids[keys[len(keys)-1]]; ok {
		t.Fatalf("the last set got %d: one set too many has a number", ids[keys[len(keys)-1]])
	}

	recorded := map[string]int{"db": 1, "web": pipeline.InternetIdentity}
	got := allocIdentities([]string{"db", "web"}, recorded, recorded)
	if want := map[string]int{"db": 1, "web": 2}; !maps.Equal(got, want) {
		t.Fatalf("claims %v: got %v, want %v", recorded, got, want)
	}

	id := newIdentities()
	id.vpcs["v"] = map[string]int{}
	for i, k := range keys[:pipeline.MaxIdentity-1] {
		id.vpcs["v"][k] = i + 1
		id.hold("p"+k, "v", k)
	}
	id.hold("pnew", "v", "new")
	id.hold("pnewer", "v", "newer")
	id.allocNew("v")
	if n := id.vpcs["v"]["new"]; n != pipeline.MaxIdentity {
		t.Fatalf("set added alone got %d, want %d", n, pipeline.MaxIdentity)
	}
	if n, ok := id.vpcs["v"]["newer"]; ok {
		t.Fatalf("a set past the last number got %d", n)
	}
}
