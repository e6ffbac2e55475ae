package northd

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
)

// batch is one transaction being built, with what to write through to the
// view when it commits.
type batch struct {
	ops   []ovsdb.Operation
	after []func(res []ovsdb.OperationResult)
}

// built is an operation list from libovsdb's API, or its error.
type built struct {
	ops []ovsdb.Operation
	err error
}

func op(o []ovsdb.Operation, err error) built { return built{o, err} }

func (b *batch) add(o built, after func(res []ovsdb.OperationResult, i int)) error {
	if o.err != nil {
		return o.err
	}
	i := len(b.ops)
	b.ops = append(b.ops, o.ops...)
	if after != nil {
		b.after = append(b.after, func(res []ovsdb.OperationResult) { after(res, i) })
	}
	return nil
}

// put adds one operation built without an error.
func (b *batch) put(o ovsdb.Operation, after func(res []ovsdb.OperationResult, i int)) {
	b.add(built{ops: []ovsdb.Operation{o}}, after)
}

// sbWriter commits batches through the lock session. A big write is sent
// in chunks, and northd builds the next chunk while ovsdb-server commits
// the one before: at most one transaction is in flight, so they commit in
// order and a failure stops every one after it. What a transaction wrote
// goes into the view once it is answered, on the writer's goroutine.
type sbWriter struct {
	txn    ops.Transactor
	view   *sbView
	maxOps int
	// limit is the size of the next chunk: it starts small so that
	// ovsdb-server gets its first chunk early, and doubles up to maxOps.
	limit    int
	cur      batch
	named    map[string]string // datapath name -> named UUID in cur
	nextID   int
	txns     int
	inFlight *sentBatch
}

// sentBatch is a transaction sent and not yet answered.
type sentBatch struct {
	done  chan struct{}
	res   []ovsdb.OperationResult
	err   error
	after []func(res []ovsdb.OperationResult)
}

// send hands the current batch to a goroutine that commits it, once the
// one before it is answered. The batch is encoded first, while the one
// before is still with the server, and what that one wrote goes into the
// view after, while the server works on this one.
func (w *sbWriter) send(ctx context.Context) error {
	if len(w.cur.ops) == 0 {
		return nil
	}
	txnOps := w.cur.ops
	commit := func() ([]ovsdb.OperationResult, error) { return ops.Transact(ctx, w.txn, txnOps...) }
	if p, ok := w.txn.(jsonrpc.Preparer); ok {
		prep, err := p.Prepare(txnOps...)
		if err != nil {
			return err
		}
		commit = func() ([]ovsdb.OperationResult, error) { return jsonrpc.Commit(ctx, p, prep) }
	}
	prev, err := w.await()
	if err != nil {
		return err
	}
	b := &sentBatch{done: make(chan struct{}), after: w.cur.after}
	go func() {
		defer close(b.done)
		b.res, b.err = commit()
	}()
	w.inFlight = b
	w.cur = batch{}
	w.named = map[string]string{}
	w.apply(prev)
	return nil
}

// await waits for the transaction in flight, if any, and returns it.
func (w *sbWriter) await() (*sentBatch, error) {
	b := w.inFlight
	if b == nil {
		return nil, nil
	}
	w.inFlight = nil
	<-b.done
	if b.err != nil {
		return nil, b.err
	}
	return b, nil
}

// apply writes what a committed transaction wrote through to the view.
func (w *sbWriter) apply(b *sentBatch) {
	if b == nil {
		return
	}
	w.txns++
	for _, f := range b.after {
		f(b.res)
	}
}

// wait waits for the transaction in flight and applies it.
func (w *sbWriter) wait() error {
	b, err := w.await()
	if err == nil {
		w.apply(b)
	}
	return err
}

// flush commits the current batch and everything before it.
func (w *sbWriter) flush(ctx context.Context) error {
	if err := w.send(ctx); err != nil {
		return err
	}
	return w.wait()
}

func (w *sbWriter) maybeFlush(ctx context.Context) error {
	if len(w.cur.ops) >= w.limit {
		w.limit = min(2*w.limit, w.maxOps)
		return w.send(ctx)
	}
	return nil
}

// dpRef is the UUID by which this batch refers to a datapath: its name in
// this batch, or its UUID once a transaction that created it is answered.
func (w *sbWriter) dpRef(name string) (string, error) {
	if u := w.named[name]; u != "" {
		return u, nil
	}
	if u := w.view.dps[name]; u != "" || w.inFlight == nil {
		return u, nil
	}
	if err := w.wait(); err != nil {
		return "", err
	}
	return w.view.dps[name], nil
}
