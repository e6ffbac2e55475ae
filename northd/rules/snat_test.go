package rules

import (
	"slices"
	"testing"
)

func TestSNATBlocks(t *testing.T) {
	for _, c := range []struct {
		size, first, last, n int
		ok                   bool
	}{
		{1024, 1024, 64512, 63, true},
		{32768, 32768, 32768, 1, true},
		{64, 1024, 65472, 1008, true},
		{2048, 2048, 63488, 31, true},
		{512, 1024, 65024, 126, true},
		{1000, 0, 0, 0, false},
		{32, 0, 0, 0, false},
		{65536, 0, 0, 0, false},
	} {
		if err := CheckSNATBlock(c.size); (err == nil) != c.ok {
			t.Errorf("CheckSNATBlock(%d) = %v, want ok=%v", c.size, err, c.ok)
		}
		if !c.ok {
			continue
		}
		first, last := SNATBlockRange(c.size)
		if first != c.first || last != c.last || SNATBlocksPerAddress(c.size) != c.n {
			t.Errorf("block %d: range %d..%d, %d blocks; want %d..%d, %d", c.size, first, last, SNATBlocksPerAddress(c.size), c.first, c.last, c.n)
		}
	}
	a := []string{"10.0.0.10", "10.0.0.9", "9.0.0.1"}
	SortAddrs(a)
	if want := []string{"9.0.0.1", "10.0.0.9", "10.0.0.10"}; !slices.Equal(a, want) {
		t.Errorf("SortAddrs = %v, want %v", a, want)
	}
}
