package bench

import (
	"math/rand/v2"
	"testing"
)

func TestLearnStat(t *testing.T) {
	// 90 samples under 2 µs, 9 in [64, 128) µs, 1 in [1024, 2048) µs.
	hist := make([]uint64, 24)
	hist[0], hist[6], hist[10] = 90, 9, 1
	st := learnStat(hist)
	if st.Samples != 100 || st.P50MaxUs != 2 || st.P99MaxUs != 128 {
		t.Fatalf("got %+v, want 100 samples, p50 <= 2, p99 <= 128", st)
	}
	if st := learnStat(make([]uint64, 24)); st.Samples != 0 || st.P99MaxUs != 0 {
		t.Fatalf("empty histogram: %+v", st)
	}
}

func TestPeerGraph(t *testing.T) {
	const n, k, perHost = 1000, 5, 20
	same := func(a, b int) bool { return a/perHost == b/perHost }
	edges := peerGraph(n, k, same, rand.New(rand.NewPCG(1, 2)))
	degree := map[int]int{}
	seen := map[[2]int]bool{}
	for _, e := range edges {
		if same(e[0], e[1]) || e[0] >= e[1] || seen[e] {
			t.Fatalf("bad edge %v", e)
		}
		seen[e] = true
		degree[e[0]]++
		degree[e[1]]++
	}
	for v, d := range degree {
		if d > k {
			t.Fatalf("node %d has %d peers, more than %d", v, d, k)
		}
	}
	if len(edges) < n*k/2*9/10 {
		t.Fatalf("%d edges, want close to %d", len(edges), n*k/2)
	}
}

func TestBenchTopology(t *testing.T) {
	// Addresses and MACs are unique and inside their vxnet.
	ips, macs := map[string]bool{}, map[string]bool{}
	for p := 0; p < 64000; p++ {
		ip, mac := benchIP(p), benchMAC(p)
		if ips[ip.String()] || macs[mac] {
			t.Fatalf("port %d: %s or %s reused", p, ip, mac)
		}
		ips[ip.String()], macs[mac] = true, true
		if c := benchCIDR(p % 253); !c.Contains(ip) || ip == c.Addr().Next() {
			t.Fatalf("port %d: %s outside %s or on its gateway", p, ip, c)
		}
	}
}
