package rules

import (
	"fmt"
	"net/netip"
	"sort"
)

// A VPC's source NAT (SNAT). The checks are shared by courier-nbctl and
// northd, as the EIP checks are; the block arithmetic is shared by
// northd, which checks a configuration, and southd, which allocates
// blocks of ports within it.

// Block sizes: ports per block, a power of two.
const (
	SNATMinBlock     = 64
	SNATMaxBlock     = 32768
	SNATDefaultBlock = 1024
	// SNATFirstPort is the lowest port a block may start at: the ports
	// below are the system's own (and often privileged).
	SNATFirstPort = 1024
	// SNATMaxAddresses is how many addresses one VPC's SNAT may have.
	SNATMaxAddresses = 16
)

// CheckSNATBlock checks a block size: a power of two from 64 to 32768.
func CheckSNATBlock(n int) error {
	if n < SNATMinBlock || n > SNATMaxBlock || n&(n-1) != 0 {
		return fmt.Errorf("block size %d is not a power of two from %d to %d", n, SNATMinBlock, SNATMaxBlock)
	}
	return nil
}

// SNATBlockRange is the first port of the first and of the last block of
// size n: blocks are aligned ranges [k*n, k*n+n-1] within 1024–65535.
func SNATBlockRange(n int) (first, last int) {
	first = (SNATFirstPort + n - 1) / n * n
	last = 65536 - n
	return first, last
}

// SNATBlocksPerAddress is how many blocks of size n one address has:
// 63 of 1024, 1 of 32768.
func SNATBlocksPerAddress(n int) int {
	first, last := SNATBlockRange(n)
	return (last-first)/n + 1
}

// CheckSNATAddress checks that a SNAT address is a usable address of
// its network, as an EIP must be.
func CheckSNATAddress(extnet string, prefixes []netip.Prefix, s string) (netip.Addr, error) {
	return checkExternalAddr("SNAT address", extnet, prefixes, s)
}

// SortAddrs sorts IPv4 addresses numerically (10.0.0.9 before 10.0.0.10);
// strings that do not parse go last, as text.
func SortAddrs(addrs []string) {
	sort.Slice(addrs, func(i, j int) bool { return AddrLess(addrs[i], addrs[j]) })
}

// AddrLess orders two addresses numerically.
func AddrLess(a, b string) bool {
	x, errx := netip.ParseAddr(a)
	y, erry := netip.ParseAddr(b)
	switch {
	case errx == nil && erry == nil:
		return x.Less(y)
	case errx == nil:
		return true
	case erry == nil:
		return false
	}
	return a < b
}
