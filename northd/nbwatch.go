package northd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// northd reads the northbound through an jsonrpc.Watch, not libovsdb's
// monitor and cache, for two reasons:
//
//   - Whole transactions. ovsdb-server sends a transaction's changes in
//     one update, and the watch records each update into the tracker under
//     one lock, so northd compiles whole transactions: a port never
//     arrives before the vxnet committed with it, nor a new nb_cfg before
//     the changes it acknowledges. libovsdb hands its handlers the rows of
//     an update one by one, and northd had to wait for them with an echo
//     and a written barrier token after every batch.
//   - Cost. At 64,000 ports libovsdb spent ~1 s of CPU per bulk load
//     decoding the update into generic maps and models by reflection and
//     indexing its cache, before northd saw a row; jsonrpc.RowDecoder reads
//     the same rows straight into the models. The watch asks for diffs
//     (update2), as libovsdb does: adding a port sends the one member
//     added to its vxnet's port set, not the whole set.
//
// northd still writes the northbound (statuses, sb_cfg) through a
// libovsdb session without monitors, on the same server.

// nbWatchTables are the northbound tables northd compiles from.
var nbWatchTables = []struct {
	name  string
	proto model.Model
}{
	{nbdb.NBGlobalTable, &nbdb.NBGlobal{}},
	{nbdb.VPCTable, &nbdb.VPC{}},
	{nbdb.VxnetTable, &nbdb.Vxnet{}},
	{nbdb.PortTable, &nbdb.Port{}},
	{nbdb.RouteTable, &nbdb.Route{}},
	{nbdb.SecurityGroupTable, &nbdb.SecurityGroup{}},
	{nbdb.SecurityGroupRuleTable, &nbdb.SecurityGroupRule{}},
	{nbdb.ExternalNetworkTable, &nbdb.ExternalNetwork{}},
	{nbdb.EIPTable, &nbdb.EIP{}},
	{nbdb.SNATTable, &nbdb.SNAT{}},
}

// nbRuntimeColumns are runtime facts that southd writes into the
// northbound for orchestrators (a port's up and chassis). northd compiles
// intent and never reads them (DESIGN.md §1): they are left out of its
// monitor, so that a port coming up does not even wake it.
var nbRuntimeColumns = map[string][]string{nbdb.PortTable: {"up", "chassis"}}

// watchedColumns lists the columns of table northd monitors (nil: all).
func watchedColumns(table string) ([]string, error) {
	skip := nbRuntimeColumns[table]
	if len(skip) == 0 {
		return nil, nil
	}
	var s ovsdb.DatabaseSchema
	if err := json.Unmarshal(schema.NB, &s); err != nil {
		return nil, err
	}
	var cols []string
	for c := range s.Tables[table].Columns {
		if !slices.Contains(skip, c) {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	return cols, nil
}

// watchNB reports every northbound change to t, one update at a time;
// the initial contents are in t when it returns.
func watchNB(ctx context.Context, remote string, tlsc *tls.Config, t *ops.Tracker, log *slog.Logger) (*jsonrpc.Watch, error) {
	spec := jsonrpc.WatchSpec{DB: schema.NBName, Diffs: true, TLS: tlsc}
	decs := map[string]*jsonrpc.RowDecoder{}
	// rows are the current rows, for each change's Old.
	rows := map[string]map[string]model.Model{}
	for _, tb := range nbWatchTables {
		dec, err := jsonrpc.NewRowDecoder(tb.proto)
		if err != nil {
			return nil, err
		}
		decs[tb.name] = dec
		rows[tb.name] = map[string]model.Model{}
		cols, err := watchedColumns(tb.name)
		if err != nil {
			return nil, err
		}
		spec.Tables = append(spec.Tables, jsonrpc.WatchTable{Name: tb.name, Columns: cols, Initial: true, Insert: true, Delete: true, Modify: true})
	}
	return jsonrpc.StartWatch(ctx, remote, spec, func(update []jsonrpc.WatchedRow) error {
		start := time.Now()
		// Decode everything first: a row that cannot be read fails the
		// whole update, and the session starts over.
		news := make([]model.Model, len(update))
		for i, r := range update {
			dec := decs[r.Table]
			if dec == nil {
				return fmt.Errorf("update for unwatched table %s", r.Table)
			}
			var m model.Model
			var err error
			switch {
			case r.Deleted:
				continue
			case r.Diff != nil:
				old := rows[r.Table][r.UUID]
				if old == nil {
					return fmt.Errorf("%s row %s: a change to a row never reported", r.Table, r.UUID)
				}
				m, err = dec.ApplyDiff(old, r.Diff)
			default:
				m, err = dec.Decode(r.UUID, r.New)
			}
			if err != nil {
				return fmt.Errorf("%s row %s: %w", r.Table, r.UUID, err)
			}
			news[i] = m
		}
		t.RecordAll(func(record func(table, uuid string, old, new model.Model)) {
			for i, r := range update {
				cur := rows[r.Table]
				old := cur[r.UUID]
				if news[i] == nil {
					delete(cur, r.UUID)
				} else {
					cur[r.UUID] = news[i]
				}
				record(r.Table, r.UUID, old, news[i])
			}
		})
		log.Debug("northbound update", "rows", len(update), "decoded_in", time.Since(start))
		return nil
	}, log)
}
