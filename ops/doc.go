// Package ops is Courier's one layer over libovsdb. Every tool and daemon
// reaches the databases through it.
//
// What it owns:
//   - remotes: parsing "unix:/run/x.sock,tcp:10.0.0.1:6641" and choosing
//     defaults from the run directory (remote.go);
//   - sessions: one connected libovsdb client with its monitors, leader-only
//     for clustered databases, an echo probe, and no transparent reconnect
//     (session.go). A caller that loses a session opens a new one and
//     rebuilds from it: libovsdb's own reconnect purges and refills its cache
//     without delete events, which an incremental consumer cannot see;
//   - transactions: one call per logical change, with every operation's
//     result checked and a failure reported as one readable sentence that
//     names the table and the offending row (txn.go);
//   - generic helpers over the generated models instead of a switch per
//     table (generic.go), and tables: operations built from the models,
//     planned once from the schema (table.go, codec.go), and the table
//     sync that compares desired rows with current ones (sync.go);
//   - change tracking for incremental consumers (tracker.go).
//
// The southbound's verbs, one file per table, are in ops/sbops: what a
// write means (claim a port, acknowledge a configuration) is said there,
// not in the daemons.
//
// What libovsdb cannot do — OVSDB locks, monitors that choose what they
// report or hand over whole updates, decoding rows straight into the
// models, encoding big transactions without reflection — is done on raw
// JSON-RPC connections by the sub-package ops/jsonrpc, which builds on
// this one (never the reverse).
//
// It must not know what any table means: that belongs to northd, southd,
// hostd and the tools.
package ops
