package sbops

import (
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// LogicalFlows is the Logical_Flow table, which northd alone writes,
// whole: it syncs it with ops.Diff and the table's Insert, Update and
// Delete.
func LogicalFlows() *ops.Table[sbdb.LogicalFlow, *sbdb.LogicalFlow] { return logicalFlowT }
