package pipeline

// What a host's data plane holds for security groups (dataplane/bpf/sg.h),
// so that northd and courier-nbctl refuse what hosts could not apply.
const (
	// MaxSGRules is how many rules a group may have in one direction.
	MaxSGRules = 1024
	// MaxPortSGs is how many groups a port may be in.
	MaxPortSGs = 16
)

// Security group identities: 16 bits in the VXLAN GBP field (sg.h), per
// VPC. 0 is unknown (an open VPC's port, a sender that set none);
// northd allocates 1 to MaxIdentity to sets of groups; the numbers above
// are reserved for senders that are no port, each in every VPC and none
// a member of any group, so that a rule naming a group never matches
// them while a rule naming a prefix does. The C side has them as
// SG_ID_* (stages.h, generated).
const (
	// InternetIdentity is what a gateway stamps on what it tunnels in
	// from an external network for an EIP ("internet").
	InternetIdentity = 65535
	// MaxIdentity is the highest identity northd allocates.
	MaxIdentity = InternetIdentity - 1
)

// ReservedIdentities names the reserved identities, by number.
var ReservedIdentities = map[uint32]string{InternetIdentity: "internet"}
