package trace

// What a trace reports, in either mode: hops (one pipeline run on one
// chassis), each a list of steps (one stage each).

// Step is what one stage did.
type Step struct {
	Stage   string `json:"stage"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
	Reason  string `json:"reason,omitempty"`
	// Logical mode: the flow that matched.
	Priority *int   `json:"priority,omitempty"`
	Match    string `json:"match,omitempty"`
	Actions  string `json:"actions,omitempty"`
	Source   string `json:"source,omitempty"`
	// Live mode: what the data plane's record says.
	Hit   string   `json:"hit,omitempty"`
	Flags []string `json:"flags,omitempty"`
}

// Hop is one direction of the pipeline on one chassis.
type Hop struct {
	Chassis   string `json:"chassis"`
	VTEP      string `json:"vtep,omitempty"`
	Direction string `json:"direction"`
	From      string `json:"from"` // the port, or the sending host
	VNI       uint32 `json:"vni,omitempty"`
	// Identity is the sender's security group identity the packet
	// carried from the tunnel (live mode; "65535 (internet)" for a
	// reserved one), empty when none.
	Identity string `json:"identity,omitempty"`
	Steps    []Step `json:"steps"`
}

// Outcomes of a trace.
const (
	Delivered = "delivered" // to a port
	Dropped   = "dropped"
	Answered  = "answered" // on the host, back to the port it came from
	Consumed  = "consumed" // kept by the host
	Left      = "left"     // for a host whose data plane is not on this machine
)

// Trace is the whole account.
type Trace struct {
	Mode      string `json:"mode"` // logical or live
	Microflow string `json:"microflow"`
	Packet    string `json:"packet"`
	Hops      []Hop  `json:"hops"`
	Outcome   string `json:"outcome"`
	Detail    string `json:"detail"`
	// Reason is the drop reason, when dropped.
	Reason string `json:"reason,omitempty"`
	// Port and Chassis say where it was delivered (or where it left for).
	Port    string `json:"port,omitempty"`
	Chassis string `json:"chassis,omitempty"`
	// Notes say what the trace could not know or model.
	Notes []string `json:"notes,omitempty"`
}
