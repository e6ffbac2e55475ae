package sbops

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/schema/sbdb"
)

// SetSBGlobalNbCfg records in the global row g that the southbound
// reflects the northbound's nb_cfg cfg (northd's acknowledgement).
func SetSBGlobalNbCfg(g *sbdb.SBGlobal, cfg int) ovsdb.Operation {
	row := *g
	row.NbCfg = cfg
	return sbGlobalT.UpdateByUUID(&row, "nb_cfg")
}
