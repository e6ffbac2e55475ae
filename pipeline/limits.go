package pipeline

// What a host's data plane holds for security groups (dataplane/bpf/sg.h),
// so that northd and courier-nbctl refuse what hosts could not apply.
const (
	// MaxSGRules is how many rules a group may have in one direction.
	MaxSGRules = 1024
	// MaxPortSGs is how many groups a port may be in.
	MaxPortSGs = 16
)
