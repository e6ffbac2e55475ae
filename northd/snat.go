package northd

import (
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A VPC's source NAT (NB SNAT, referenced by VPC.snat), compiled into
// one southbound SNAT row per VPC: the addresses and the block size.
// Which port gets which block of ports is a runtime decision, southd's
// (SNAT_Block); northd decides only what the intent says. Configurations
// are few (one per VPC at most), so any change recompiles all of them.
//
// Refusals, each in the row's status: the VPC not compiled; the network
// missing, refused or not public (physical networks are for 1:1
// addresses); a block size that is not a power of two from 64 to 32768;
// an address outside the network's prefixes, used by an EIP (of any
// network), or already another VPC's SNAT address. VPCs are taken in
// name order and only accepted configurations claim addresses, so the
// VPC whose name sorts first keeps an address two ask for, whatever the
// order the rows arrived in.

// cSNAT is a compiled SNAT configuration; err is set when it is refused.
type cSNAT struct {
	uuid, vpc string // NB SNAT and VPC UUIDs
	key       int    // the VPC's tunnel key
	net       string // the network's name
	addrs     []string
	block     int
	err       string
}

type snatTable struct {
	rows  map[string]*cSNAT // by NB SNAT UUID
	byKey map[int]*cSNAT    // accepted ones, by VPC key

	changedKeys map[int]bool // tracked: VPC keys whose SB row changed
}

func newSNATTable() *snatTable {
	return &snatTable{rows: map[string]*cSNAT{}, byKey: map[int]*cSNAT{}, changedKeys: map[int]bool{}}
}

func (t *snatTable) clearTracked() { t.changedKeys = map[int]bool{} }

// compileSNAT compiles every VPC's SNAT against the compiled topology
// and networks; prev's rows are compared to track what changed.
func compileSNAT(v *nbView, topo *topology, eips *eipTable, prev *snatTable) *snatTable {
	t := newSNATTable()
	var vpcs []*nbdb.VPC
	for _, vpc := range v.vpcs {
		if vpc.SNAT != nil && v.snats[*vpc.SNAT] != nil {
			vpcs = append(vpcs, vpc)
		}
	}
	sort.Slice(vpcs, func(i, j int) bool {
		if vpcs[i].Name != vpcs[j].Name {
			return vpcs[i].Name < vpcs[j].Name
		}
		return vpcs[i].UUID < vpcs[j].UUID
	})
	isEIP := map[string]bool{}
	for _, e := range v.eips {
		isEIP[e.Address] = true
	}
	claimed := map[string]string{} // address -> VPC name
	for _, vpc := range vpcs {
		row := v.snats[*vpc.SNAT]
		if t.rows[row.UUID] != nil {
			continue // one row named by two VPCs: the first has it
		}
		c := &cSNAT{uuid: row.UUID, vpc: vpc.UUID, addrs: slices.Clone(row.Addresses), block: rules.SNATDefaultBlock}
		rules.SortAddrs(c.addrs)
		if row.BlockSize != nil {
			c.block = *row.BlockSize
		}
		t.rows[row.UUID] = c
		c.err = checkSNAT(c, vpc, row, topo, eips, isEIP, claimed)
		if c.err != "" {
			continue
		}
		for _, a := range c.addrs {
			claimed[a] = vpc.Name
		}
		t.byKey[c.key] = c
	}
	for k, c := range t.byKey {
		if prev == nil || !reflect.DeepEqual(prev.sbRow(k), c.sbRow()) {
			t.changedKeys[k] = true
		}
	}
	if prev != nil {
		for k := range prev.byKey {
			if t.byKey[k] == nil {
				t.changedKeys[k] = true
			}
		}
	}
	return t
}

// checkSNAT returns why c is refused, or "".
func checkSNAT(c *cSNAT, vpc *nbdb.VPC, row *nbdb.SNAT, topo *topology, eips *eipTable, isEIP map[string]bool, claimed map[string]string) string {
	cv := topo.vpcs[vpc.UUID]
	if cv == nil {
		return fmt.Sprintf("VPC %s is refused", vpc.Name)
	}
	c.key = cv.key
	net := eips.nets[row.ExternalNetwork]
	switch {
	case net == nil:
		return "its external network is missing"
	case net.err != "":
		return fmt.Sprintf("external network %s is refused", net.name)
	case net.kind != rules.ExtnetPublic:
		return fmt.Sprintf("external network %s is %s: SNAT needs a public network (physical networks are for 1:1 addresses)", net.name, net.kind)
	}
	c.net = net.name
	if err := rules.CheckSNATBlock(c.block); err != nil {
		return err.Error()
	}
	for _, a := range c.addrs {
		if _, err := rules.CheckSNATAddress(net.name, net.prefixes, a); err != nil {
			return err.Error()
		}
		if isEIP[a] {
			return fmt.Sprintf("SNAT address %s is an EIP", a)
		}
		if o, ok := claimed[a]; ok {
			return fmt.Sprintf("SNAT address %s is VPC %s's", a, o)
		}
	}
	return ""
}

// sbRow is the southbound SNAT row of an accepted configuration.
func (c *cSNAT) sbRow() *sbdb.SNAT {
	return &sbdb.SNAT{Vpc: c.key, Network: c.net, Addresses: c.addrs, BlockSize: c.block}
}

// sbRow is the southbound SNAT row VPC key k should have, or nil.
func (t *snatTable) sbRow(k int) *sbdb.SNAT {
	if c := t.byKey[k]; c != nil {
		return c.sbRow()
	}
	return nil
}

func (t *snatTable) status(u string) map[string]string {
	switch c := t.rows[u]; {
	case c == nil:
		return nil
	case c.err != "":
		return errStatus(c.err)
	}
	return okStatus()
}

// snatOwned are the SB SNAT columns northd writes; vpc is the key.
var snatOwned = []string{"network", "addresses", "block_size"}

// syncSNATs writes the SB SNAT rows of every dirty VPC key.
func (n *compiler) syncSNATs(w *sbWriter, d *dirtySet) {
	syncKeyed(w, sbops.SNATs(), snatOwned, d.snats, n.snat.sbRow, n.sb.snats)
}

// writeSNATStatuses writes the statuses of dirty SNAT rows.
func (n *compiler) writeSNATStatuses(c client.Client, d *dirtySet, add func(built, func()) error, refused *refusals) error {
	for _, u := range sortedSet(d.nbSNAT) {
		if row, want := n.nb.snats[u], n.snat.status(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("SNAT", n.snatName(u), row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.snats[u] = &cp }); err != nil {
				return err
			}
		}
	}
	return nil
}

// snatName names a SNAT row by its VPC, for logs.
func (n *compiler) snatName(u string) string {
	if c := n.snat.rows[u]; c != nil {
		if vpc := n.nb.vpcs[c.vpc]; vpc != nil {
			return "of VPC " + vpc.Name
		}
	}
	return u
}
