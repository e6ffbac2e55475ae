package pipeline

// The vocabulary of the pipeline's records: what a stage decided (a
// verdict), what decided it (a hit), and what it did to the packet on the
// way (trace flags). The C code returns verdicts to its pipeline driver
// and, in a trace, writes one record per stage with these numbers;
// courier-trace prints them by name.

// Verdict is what a stage decided.
type Verdict struct {
	ID   int
	Name string
	Doc  string
}

// Verdicts. V_NEXT goes on to the stage the stage names.
var Verdicts = []Verdict{
	{0, "next", "go on with the next stage"},
	{1, "drop", "drop, counted under a named reason"},
	{2, "output", "send to the resolved destination: a local port, another host or a hub"},
	{3, "reply", "answered on this host, back to the port it came from"},
	{4, "consumed", "kept by this host: an announcement, a learn message"},
}

// Hit names what decided a stage: the table, or the entry of a table.
type Hit struct {
	ID   int
	Name string
	Doc  string
}

// Hits.
var Hits = []Hit{
	{0, "none", "nothing was looked up"},
	{1, "port", "the port's entry (ports map)"},
	{2, "port_addr", "one of the port's addresses (port_addrs map)"},
	{3, "vxnet", "the vxnet's entry"},
	{4, "gateway", "the vxnet's gateway address or MAC"},
	{5, "local_ep", "an address held on this host (local_eps map)"},
	{6, "cache", "a direct path learned from a hub (cache map)"},
	{7, "cache_stale", "a learned path past its refresh interval: through a hub"},
	{8, "hub_ep", "the hub's own bindings (hub_eps map)"},
	{9, "route", "the VPC's routes (routes map)"},
	{10, "hub", "a hub chosen by flow hash"},
	{11, "hub_next", "the next hub: the one the flow hashes to did not answer probes"},
	{12, "unknown", "a hub said lately nobody has the address (unknown map)"},
	{13, "budget", "the port's budget of packets to hubs (budgets map)"},
	{14, "miss", "nothing known about the address"},
	{15, "learn_msg", "a learn message"},
	{16, "dhcp", "the port's DHCP answer (dhcp map)"},
	{17, "ct", "a tracked connection (ct map)"},
	{18, "sg_rule", "a security group rule (sg_rules map)"},
	{19, "sg_none", "no security group rule allows it"},
	{20, "eip", "an EIP of a local port (eip_local map) or the port's EIP (eip_ports map)"},
	{21, "snat", "the port's SNAT blocks (snat_ports map) or a connection translated by SNAT (snat_rev map)"},
}

// TraceFlag is something a stage did besides its verdict.
type TraceFlag struct {
	Bit  uint32
	Name string
	Doc  string
}

// TraceFlags.
var TraceFlags = []TraceFlag{
	{0x1, "ttl_dec", "decremented the TTL"},
	{0x2, "mac_rewrite", "rewrote the Ethernet addresses"},
	{0x4, "teach", "the sender is taught the destination's location"},
	{0x8, "forget", "the sender is told to forget its path"},
	{0x10, "tell_unknown", "the sender is told the destination is unknown"},
	{0x20, "report", "an address the port used is reported to hostd"},
	{0x40, "clone", "the packet goes on as a clone; the original becomes a learn message"},
	{0x80, "answer", "the request was turned into its answer"},
	{0x100, "mss_clamp", "lowered a TCP SYN's MSS to fit the path MTU"},
	{0x200, "ct_new", "a new connection, now tracked"},
	{0x400, "sg_pending", "allowed pending the receiver's check of an egress rule naming the destination's group"},
}

// VerdictName, HitName and TraceFlagNames render the numbers.
func VerdictName(id int) string {
	for _, v := range Verdicts {
		if v.ID == id {
			return v.Name
		}
	}
	return "unknown"
}

func HitName(id int) string {
	for _, h := range Hits {
		if h.ID == id {
			return h.Name
		}
	}
	return "unknown"
}

func TraceFlagNames(v uint32) []string {
	var out []string
	for _, f := range TraceFlags {
		if v&f.Bit != 0 {
			out = append(out, f.Name)
		}
	}
	return out
}
