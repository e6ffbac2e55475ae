// Package schema holds Courier's public API: the northbound and southbound
// OVSDB schemas, and (in nbdb/ and sbdb/) the Go models generated from
// them. Orchestrators write the northbound directly, so constraints that the
// schema can express (types, ranges, enums, references, indexes) live in the
// .ovsschema files; what it cannot express is checked by northd, which
// reports it in each row's status column.
//
// Who writes what in the southbound:
//   - northd: Datapath, Port_Binding (all but chassis and up),
//     Logical_Flow, SB_Global.nb_cfg;
//   - hostd: its Chassis row, its Chassis_Private row (all but alive),
//     Port_Binding.chassis and .up for the ports it claims, and
//     Learned_Binding rows naming its chassis;
//   - southd: Hub, Chassis_Private.alive, Port_Binding.up (false) for the
//     ports of dead chassis, Learned_Binding arbitration and aging, and
//     NB_Global.hv_cfg.
package schema

import (
	_ "embed"
)

//go:embed nb.ovsschema
var NB []byte

//go:embed sb.ovsschema
var SB []byte

// DefaultLearnedLimit is how many addresses a port with unknown addresses
// may hold (Learned_Binding rows of kind unknown) when its learned_limit
// column is empty; MaxLearnedLimit is the column's schema maximum.
const (
	DefaultLearnedLimit = 16
	MaxLearnedLimit     = 1024
)

// HubChassisOption is the northbound option (NB_Global.options) that
// lists, comma-separated, the chassis allowed to serve as hubs. A chassis
// declares the hub role itself (Chassis.roles, which its own role may
// write), and a hub's learn messages redirect other hosts' traffic: where
// hypervisors are not all trusted, the operator names the hubs, as OVN's
// operators name gateway chassis in the northbound. Unset, every chassis
// that declares the role may serve (southd).
const HubChassisOption = "hub_chassis"

// Database names, as in the schemas.
const (
	NBName = "Courier_Northbound"
	SBName = "Courier_Southbound"
)
