package nbctl

// SetWholeTableAt makes named-row reads switch to one select of the
// whole Port table at n ports; it returns what restores the default.
func SetWholeTableAt(n int) func() {
	old := wholeTableAt
	wholeTableAt = n
	return func() { wholeTableAt = old }
}

// RowsRead is how many rows commands have read by name so far.
func RowsRead() int64 { return rowsRead.Load() }
