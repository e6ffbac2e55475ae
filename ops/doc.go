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
//     table (generic.go);
//   - OVSDB locks, which libovsdb lacks, on a small JSON-RPC session that
//     also carries the lock holder's writes, each fenced by an "assert"
//     operation (jsonrpc.go, lock.go);
//   - monitors on a connection of their own, for what libovsdb's cannot do:
//     report only chosen kinds of change, hand over each update whole, and
//     decode rows straight into the models (watch.go, rowdec.go, scan.go);
//   - change tracking for incremental consumers (tracker.go).
//
// It must not know what any table means: that belongs to northd, southd,
// hostd and the tools.
package ops
