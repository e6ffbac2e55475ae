// Package jsonrpc is Courier's raw OVSDB JSON-RPC client (RFC 7047 §4),
// for what libovsdb, and so package ops, cannot do:
//
//   - OVSDB locks, on a small session that also carries the lock holder's
//     writes, each fenced by an "assert" operation (jsonrpc.go, lock.go);
//   - monitors on a connection of their own that report only chosen kinds
//     of change, hand over each update whole, and decode rows straight
//     into the generated models (watch.go, rowdec.go, scan.go);
//   - encoding transactions without reflection (encode.go), which at
//     64,000 rows costs a fraction of libovsdb's MarshalJSON;
//   - one-off requests without a model or a cache: reading a table once
//     (select.go), creating a database's global row (jsonrpc.go).
//
// It builds on ops (remotes, transaction results, ErrNoConnection); ops
// never imports it. Like ops, it must not know what any table means.
package jsonrpc
