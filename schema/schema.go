// Package schema holds Courier's public API: the northbound and southbound
// OVSDB schemas, and (in nbdb/ and sbdb/) the Go models generated from
// them. Orchestrators write the northbound directly, so constraints that the
// schema can express (types, ranges, enums, references, indexes) live in the
// .ovsschema files; what it cannot express is checked by northd, which
// reports it in each row's status column.
//
// Who writes what in the southbound (with TLS, ovsdb-server enforces it:
// roles.go):
//   - northd: Datapath, Port_Binding (all but chassis and up),
//     Logical_Flow, SB_Global.nb_cfg;
//   - hostd: its Chassis row, its Chassis_Private row (all but alive,
//     with claims: the ports whose VM interfaces it has),
//     Port_Binding.chassis and .up of the ports requested for it or
//     bound to it, and Learned_Binding rows naming its chassis (never
//     accepted);
//   - southd: Hub, Chassis_Private.alive, Port_Binding.up (false) for the
//     ports of dead chassis, Port_Binding.chassis of a port nobody
//     requested (granted to a chassis that claims it), Learned_Binding
//     arbitration (accepted) and aging, NB_Global.hv_cfg, and each
//     northbound Port's up and chassis (copied from its binding, for
//     orchestrators; northd does not even monitor them);
//   - operators: the listeners, TLS files and roles (Connection, SSL,
//     RBAC_Role, RBAC_Permission), through courier-ctl and the tools.
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
