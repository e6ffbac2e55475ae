package sbops

import (
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// PortBindings is the Port_Binding table. northd syncs the columns it
// owns with ops.Diff and the table's Insert, Update and Delete; hosts
// and southd change a binding's location only through the guarded verbs
// below.
func PortBindings() *ops.Table[sbdb.PortBinding, *sbdb.PortBinding] { return portBindingT }
