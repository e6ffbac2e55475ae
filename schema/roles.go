package schema

// Who may write what in the southbound, as ovsdb-server enforces it
// (role-based access control, ovsdb-server(1) and ovsdb/rbac.c in Open
// vSwitch). A listener (a Connection row) carries a role; a client that
// connects through it is identified by its certificate's common name.
// For each table, the role's RBAC_Permission says:
//
//   - authorization: columns of which one must equal the client's name
//     for a row to be the client's; "" means every row is;
//   - insert_delete: whether it may insert and delete such rows (an
//     insert is checked against the new row, and only that: its columns
//     are not checked against update);
//   - update: the columns it may update or mutate, in rows that are its
//     own before the change (the row after is not checked, which is why
//     no role may update a column it is authorized by).
//
// A table the role has no permission for cannot be written at all.
// Reading is not restricted: any client may read the whole database.
// Listeners without a role (the local unix sockets, an operator's) are
// not restricted either: they must not be reachable by hypervisors.

// The southbound's roles.
const (
	// RoleChassis is the hypervisors' role: hostd writes only facts
	// about its own chassis.
	RoleChassis = "courier-chassis"
	// RoleCentral is northd's and southd's role: the compiled state and
	// the control plane's decisions, never the database's own
	// configuration (listeners, TLS files, roles) or a chassis's rows.
	RoleCentral = "courier-central"
)

// Permission is one table's RBAC_Permission row.
type Permission struct {
	Table         string
	Authorization []string
	InsertDelete  bool
	Update        []string
}

// Roles are the southbound's roles and their permissions, which
// courier-ctl writes into RBAC_Role and RBAC_Permission.
func Roles() map[string][]Permission {
	return map[string][]Permission{
		RoleChassis: {
			// Its Chassis row, but not its name: renaming it would make it
			// another chassis's.
			{Table: "Chassis", Authorization: []string{"name"}, InsertDelete: true,
				Update: []string{"hostname", "encap_ip", "roles", "other_config", "external_ids"}},
			// Its Chassis_Private row: heartbeat, acknowledgement, status,
			// claims; not alive, which southd judges.
			{Table: "Chassis_Private", Authorization: []string{"name"}, InsertDelete: true,
				Update: []string{"heartbeat", "nb_cfg", "nb_cfg_timestamp", "status", "claims", "external_ids"}},
			// Bindings requested for it, bound to it (by itself or by
			// southd's grant) or migrating to it: chassis, up, the SNAT
			// blocks its port needs and that it is prepared for the
			// migration only, no insert or delete.
			{Table: "Port_Binding", Authorization: []string{"requested_chassis", "chassis", "migration_destination"},
				Update: []string{"chassis", "up", "snat_demand", "migration_prepared"}},
			// A live-migrated port's SNAT connections, handed from the
			// port's old host to its new one (hostd/snathandoff.go): a
			// row naming it either way, inserted whole and deleted,
			// never updated. A chassis may so insert a row naming
			// another as its source only if it names itself as the
			// destination, which only its own data plane reads; the
			// destination installs only for a port bound to it whose
			// requested chassis is the row's source.
			{Table: "SNAT_Handoff", Authorization: []string{"from_chassis", "to_chassis"}, InsertDelete: true},
			// Addresses its ports announced; never accepted (southd's
			// verdict), nor the row's address, port or chassis.
			{Table: "Learned_Binding", Authorization: []string{"chassis"}, InsertDelete: true,
				Update: []string{"vni", "mac", "kind", "seq", "timestamp"}},
		},
		RoleCentral: {
			// northd: the compiled state and its acknowledgement.
			{Table: "SB_Global", Authorization: []string{""}, Update: []string{"nb_cfg"}},
			{Table: "Datapath", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"type", "tunnel_key", "vpc", "cidr", "gateway_ip", "gateway_mac", "security_identities", "external_ids"}},
			{Table: "Logical_Flow", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"actions", "external_ids"}},
			// northd writes a binding's intent; southd its up (dead
			// chassis), chassis (grants of ports nobody requested) and
			// a stale migration_prepared (southd/migration.go).
			{Table: "Port_Binding", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"datapath", "vpc", "tunnel_key", "mac", "ips", "virtual_ips", "port_security",
					"requested_chassis", "migration_destination", "learned_limit", "sg_identity", "eip", "eip_network", "eip_kind", "eip_vpc", "chassis", "up",
					"migration_prepared"}},
			// southd: liveness, hubs, and learned bindings' verdicts.
			{Table: "Chassis_Private", Authorization: []string{""}, Update: []string{"alive"}},
			{Table: "Hub", Authorization: []string{""}, InsertDelete: true, Update: []string{"chassis"}},
			{Table: "Learned_Binding", Authorization: []string{""}, InsertDelete: true, Update: []string{"accepted"}},
			// northd: a VPC's SNAT addresses; southd: their port blocks.
			{Table: "SNAT", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"network", "addresses", "block_size", "external_ids"}},
			{Table: "SNAT_Block", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"vpc", "logical_port", "address", "port_lo", "port_hi", "chassis", "mac", "datapath", "external_ids"}},
			// northd: the accepted external networks, for gateways.
			{Table: "External_Network", Authorization: []string{""}, InsertDelete: true,
				Update: []string{"kind", "next_hop", "external_ids"}},
		},
	}
}
