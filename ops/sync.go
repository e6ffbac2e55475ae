package ops

// Edit is one row a table sync writes: an insert (Have is nil), an
// update of Columns (both are set), or a delete (Want is nil).
type Edit[K comparable, PT any] struct {
	Key        K
	Want, Have PT
	// Columns are, for an update, the owned columns in which the rows
	// differ.
	Columns []string
}

// Diff is a table sync: for each key it compares the row a writer wants
// (desired; nil when the key should have no row) with the row the
// database has (current; nil when none) over the columns the writer
// owns, and returns what must change — deletes, and then inserts and
// updates, each in the order of keys. Keys whose rows agree in every
// owned column need nothing; columns the writer does not own (another
// daemon's, or the key's own) are neither compared nor written.
//
// Diff reads and decides only. The writer builds each edit's
// operation (t.Insert, t.Update, t.DeleteByUUID) when it sends it: it
// may have references to resolve first, and chunks to cut.
func Diff[K comparable, T any, PT Row[T]](t *Table[T, PT], owned []string, keys []K, desired, current func(K) PT) (deletes, upserts []Edit[K, PT]) {
	idx := t.indexes(owned)
	// Rows are looked up first and compared after: at 64,000 keys the
	// lookups (map probes) and the comparisons (row fields) each run
	// faster when they do not take turns evicting each other's memory
	// from the cache.
	type pair struct{ want, have PT }
	rows := make([]pair, len(keys))
	for i, k := range keys {
		rows[i] = pair{desired(k), current(k)}
	}
	for i, r := range rows {
		switch {
		case r.want == nil && r.have == nil:
		case r.want == nil:
			deletes = append(deletes, Edit[K, PT]{Key: keys[i], Have: r.have})
		case r.have == nil:
			upserts = append(upserts, Edit[K, PT]{Key: keys[i], Want: r.want})
		default:
			if cols := t.differing(nil, r.have, r.want, idx); len(cols) > 0 {
				upserts = append(upserts, Edit[K, PT]{Key: keys[i], Want: r.want, Have: r.have, Columns: cols})
			}
		}
	}
	return deletes, upserts
}
