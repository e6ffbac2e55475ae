package sbops

import (
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// External_Network rows are northd's (the accepted northbound networks,
// with what gateways need of them), written whole: it syncs them with
// ops.Diff and the table's verbs.

// ExternalNetworks is the External_Network table.
func ExternalNetworks() *ops.Table[sbdb.ExternalNetwork, *sbdb.ExternalNetwork] { return extnetT }
