package nbctl

// SetWholeTableAt makes named-row reads switch to one select of the
// whole Port table at n ports, and to one pass over its names at n named
// ports; it returns what restores the defaults.
func SetWholeTableAt(n int) func() {
	old, oldNames := wholeTableAt, namesScanAt
	wholeTableAt, namesScanAt = n, n
	return func() { wholeTableAt, namesScanAt = old, oldNames }
}

// RowsRead is how many rows commands have read by name so far.
func RowsRead() int64 { return rowsRead.Load() }

// OpsCommitted is how many operations invocations have committed.
func OpsCommitted() int64 { return opsCommitted.Load() }

// MergeInserts is mergeInserts, for its unit test.
var MergeInserts = mergeInserts

// PortRefsRead is how many port references the vxnet rows read held.
func PortRefsRead() int64 { return portRefsRead.Load() }

// PortScans is how many passes over the Port table found ports by name.
func PortScans() int64 { return portScans.Load() }

// BeforeCommit makes the next invocation run f between its reads and its
// commit.
func BeforeCommit(f func()) { beforeCommit.Store(&f) }

// SetBulk turns the bulk path (bulk.go) on or off; it returns what
// restores it.
func SetBulk(on bool) func() {
	old := bulkOff
	bulkOff = !on
	return func() { bulkOff = old }
}

// BulkCommits is how many chains the bulk path has committed.
func BulkCommits() int64 { return bulkCommits.Load() }

// ValidName is validName, for its test against the regexp it replaces.
var ValidName = validName
