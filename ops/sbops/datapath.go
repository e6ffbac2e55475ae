package sbops

import (
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Datapaths is the Datapath table, which northd alone writes, whole:
// it syncs it with ops.Diff and the table's Insert, Update and Delete.
func Datapaths() *ops.Table[sbdb.Datapath, *sbdb.Datapath] { return datapathT }
