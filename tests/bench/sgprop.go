package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// SGPropagation is how fast a security group change is enforced in a
// VPC of Ports ports spread over Groups groups of ten rules, and what the
// control plane and the hosts hold for them.
type SGPropagation struct {
	Ports  int `json:"ports"`
	Groups int `json:"groups"`
	// From the NB commit to the first echo a rule (or a group joined)
	// lets through, and to the last echo before its removal stops them,
	// pinged every 2 ms across hosts.
	RuleAdd   Latency `json:"rule_add_ms"`
	RuleDel   Latency `json:"rule_del_ms"`
	JoinGroup Latency `json:"join_group_ms"`
	Leave     Latency `json:"leave_group_ms"`
	// Logical flows of the sg stages, and the hosts' security group
	// maps (a VM host with two local ports, a hub).
	SGFlows   int            `json:"sg_logical_flows"`
	HostState map[string]int `json:"vm_host_sg_entries"`
	HubState  map[string]int `json:"hub_sg_entries"`
}

// sgGroupOps declares groups g0..g<n-1> of VPC "bench" (named UUIDs
// sg<i>), each with ten ingress TCP rules, and the groups web (egress
// anything) and pingable (ingress ICMP).
func sgGroupOps(n int) []ovsdb.Operation {
	var txn []ovsdb.Operation
	var refs []any
	group := func(uuid, name string, rules ...ovsdb.Row) {
		var rr []any
		for i, r := range rules {
			ru := fmt.Sprintf("%sr%d", uuid, i)
			txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Security_Group_Rule", UUIDName: ru, Row: r})
			rr = append(rr, ovsdb.UUID{GoUUID: ru})
		}
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Security_Group", UUIDName: uuid,
			Row: ovsdb.Row{"name": name, "rules": ovsdb.OvsSet{GoSet: rr}}})
		refs = append(refs, ovsdb.UUID{GoUUID: uuid})
	}
	for g := 0; g < n; g++ {
		var rules []ovsdb.Row
		for r := 0; r < 10; r++ {
			rules = append(rules, ovsdb.Row{"direction": "ingress", "protocol": "tcp", "port_min": 1000 + r, "port_max": 1000 + r,
				"remote_cidr": fmt.Sprintf("10.%d.0.0/16", g)})
		}
		group(fmt.Sprintf("sg%d", g), fmt.Sprintf("g%d", g), rules...)
	}
	group("sgweb", "web", ovsdb.Row{"direction": "egress", "protocol": "any", "remote_cidr": "0.0.0.0/0"})
	group("sgping", "pingable", pingRule())
	return append(txn, ovsdb.Operation{Op: "mutate", Table: "VPC", Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: "vpc"}}},
		Mutations: []ovsdb.Mutation{{Column: "security_groups", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: refs}}}})
}

func pingRule() ovsdb.Row {
	return ovsdb.Row{"direction": "ingress", "protocol": "icmp", "remote_cidr": "0.0.0.0/0"}
}

// SGPropagate measures security group propagation: four hosts (two
// hubs), ports present ports (not bound) in groups groups; a VM on hv3
// pings one on hv4, both in web, while the test adds and removes an ICMP
// rule to web, and moves the pinged port in and out of pingable.
func SGPropagate(ctx context.Context, env Env, ports, groups, samples int) (*SGPropagation, error) {
	sb, nbS, done, err := benchSandbox(ctx, env, "bg", 4, 2)
	if err != nil {
		return nil, err
	}
	defer done()
	// The groups after the VPC: a where clause names only rows inserted
	// before it.
	txn := append(topology(ports, func(p int, row ovsdb.Row) {
		row["security_groups"] = ovsdb.UUID{GoUUID: fmt.Sprintf("sg%d", p%groups)}
	}), sgGroupOps(groups)...)
	res, err := ops.Transact(ctx, nbS, txn...)
	if err != nil {
		return nil, fmt.Errorf("bulk NB transaction: %w", err)
	}
	if err := waitSbCfg(ctx, nbS, cfgOf(res), 5*time.Minute); err != nil {
		return nil, err
	}
	if _, err := ops.Transact(ctx, nbS, extraVxnets(srcVxnet, dstVxnet)...); err != nil {
		return nil, err
	}
	g, err := groupUUIDs(ctx, nbS, "web", "pingable")
	if err != nil {
		return nil, err
	}
	src, dst := netip.AddrFrom4([4]byte{10, 0, srcVxnet, 250}), netip.AddrFrom4([4]byte{10, 0, dstVxnet, 250})
	for _, p := range []struct {
		name, mac, host string
		ip              netip.Addr
		vx              int
	}{{"src", "02:ee:00:00:ff:01", "hv3", src, srcVxnet}, {"dst", "02:ee:00:00:ff:02", "hv4", dst, dstVxnet}} {
		txn := addPort(p.name, p.mac, p.ip, p.vx, p.host)
		txn[0].Row["security_groups"] = ovsdb.UUID{GoUUID: g["web"]}
		if _, err := ops.Transact(ctx, nbS, txn...); err != nil {
			return nil, err
		}
		if err := sb.AddVM(ctx, p.host, p.name); err != nil {
			return nil, err
		}
	}
	r := &SGPropagation{Ports: ports, Groups: groups}
	var rule string
	addRule := func() []ovsdb.Operation {
		return []ovsdb.Operation{{Op: "insert", Table: "Security_Group_Rule", UUIDName: "nr", Row: pingRule()},
			mutateSet("Security_Group", g["web"], "rules", "insert", ovsdb.UUID{GoUUID: "nr"})}
	}
	delRule := func() []ovsdb.Operation {
		return []ovsdb.Operation{mutateSet("Security_Group", g["web"], "rules", "delete", ovsdb.UUID{GoUUID: rule})}
	}
	if r.RuleAdd, r.RuleDel, err = sgToggle(ctx, sb, nbS, dst, samples, addRule, delRule, &rule); err != nil {
		return nil, fmt.Errorf("rule: %w", err)
	}
	setDst := func(gs ...string) func() []ovsdb.Operation {
		var refs []any
		for _, n := range gs {
			refs = append(refs, ovsdb.UUID{GoUUID: g[n]})
		}
		return func() []ovsdb.Operation {
			return []ovsdb.Operation{{Op: "update", Table: "Port", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "dst"}},
				Row: ovsdb.Row{"security_groups": ovsdb.OvsSet{GoSet: refs}}}}
		}
	}
	if r.JoinGroup, r.Leave, err = sgToggle(ctx, sb, nbS, dst, samples, setDst("web", "pingable"), setDst("web"), nil); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	return r, r.readState(ctx, sb)
}

func mutateSet(table, uuid, column, mutator string, v any) ovsdb.Operation {
	return ovsdb.Operation{Op: "mutate", Table: table, Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: uuid}}},
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.Mutator(mutator), Value: ovsdb.OvsSet{GoSet: []any{v}}}}}
}

// groupUUIDs finds groups by name.
func groupUUIDs(ctx context.Context, s *ops.Session, names ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		res, err := ops.Transact(ctx, s, ovsdb.Operation{Op: "select", Table: "Security_Group",
			Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: n}}, Columns: []string{"_uuid"}})
		if err != nil {
			return nil, err
		}
		if len(res) == 0 || len(res[0].Rows) != 1 {
			return nil, fmt.Errorf("security group %s: %d rows", n, len(res[0].Rows))
		}
		u, ok := res[0].Rows[0]["_uuid"].(ovsdb.UUID)
		if !ok {
			return nil, fmt.Errorf("security group %s: _uuid %T", n, res[0].Rows[0]["_uuid"])
		}
		out[n] = u.GoUUID
	}
	return out, nil
}

// sgToggle allows and forbids dst's echoes samples times each: open's
// commit to the first echo, shut's commit to the last one. When created
// is set, open's first operation inserts a row whose UUID shut needs.
func sgToggle(ctx context.Context, sb *sandbox.Sandbox, s *ops.Session, dst netip.Addr, samples int,
	open, shut func() []ovsdb.Operation, created *string) (Latency, Latency, error) {
	var in, out []time.Duration
	for i := 0; i < samples; i++ {
		d, err := firstReply(ctx, sb.VMNS("src"), dst, func() (time.Time, error) {
			res, err := ops.Transact(ctx, s, open()...)
			if err == nil && created != nil {
				*created = res[0].UUID.GoUUID
			}
			return time.Now(), err
		})
		if err != nil {
			return Latency{}, Latency{}, fmt.Errorf("sample %d, allowing: %w", i, err)
		}
		in = append(in, d)
		d, err = lastReply(ctx, sb.VMNS("src"), dst, func() (time.Time, error) { return commit(ctx, s, shut()) })
		if err != nil {
			return Latency{}, Latency{}, fmt.Errorf("sample %d, forbidding: %w", i, err)
		}
		out = append(out, d)
	}
	return Summarize(in), Summarize(out), nil
}

// pingReplies pings dst from ns every 2 ms (for at most 20 s) and sends
// each echo reply's kernel timestamp; stop ends it.
func pingReplies(ctx context.Context, ns string, dst netip.Addr) (<-chan time.Time, func(), error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-D", "-n", "-i", "0.002", "-w", "20", dst.String())
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	replies := make(chan time.Time, 16384)
	go func() {
		defer close(replies)
		lines := bufio.NewScanner(pipe)
		for lines.Scan() {
			l := lines.Text()
			if !strings.Contains(l, "bytes from") || !strings.HasPrefix(l, "[") {
				continue
			}
			if ts, err := strconv.ParseFloat(l[1:strings.IndexByte(l, ']')], 64); err == nil {
				replies <- time.Unix(0, int64(ts*1e9))
			}
		}
	}()
	return replies, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// lastReply pings dst from ns every 2 ms, waits for an echo, runs
// action and returns the time from its instant to the last echo reply
// before 300 ms without any.
func lastReply(ctx context.Context, ns string, dst netip.Addr, action func() (time.Time, error)) (time.Duration, error) {
	replies, stop, err := pingReplies(ctx, ns, dst)
	if err != nil {
		return 0, err
	}
	defer stop()
	select {
	case <-replies:
	case <-time.After(5 * time.Second):
		return 0, fmt.Errorf("no echo from %s before the change", dst)
	}
	t0, err := action()
	if err != nil {
		return 0, err
	}
	last := t0
	for {
		select {
		case at, ok := <-replies:
			if !ok {
				return 0, fmt.Errorf("ping ended")
			}
			last = at
		case <-time.After(300 * time.Millisecond):
			if time.Since(t0) > 15*time.Second {
				return 0, fmt.Errorf("echoes from %s went on for 15 s", dst)
			}
			return max(0, last.Sub(t0)), nil
		}
	}
}

// readState counts the sg stages' logical flows and a VM host's and a
// hub's security group maps.
func (r *SGPropagation) readState(ctx context.Context, sb *sandbox.Sandbox) error {
	out, err := exec.CommandContext(ctx, "ovsdb-client", "query", sb.SB(), `["Courier_Southbound",
		{"op":"select","table":"Logical_Flow","where":[["stage","==","sg_egress"]],"columns":["_uuid"]},
		{"op":"select","table":"Logical_Flow","where":[["stage","==","sg_ingress"]],"columns":["_uuid"]}]`).Output()
	if err != nil {
		return fmt.Errorf("count the sg flows: %w", err)
	}
	var res []struct {
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 2 {
		return fmt.Errorf("count the sg flows: %v: %s", err, out)
	}
	r.SGFlows = len(res[0].Rows) + len(res[1].Rows)
	for host, into := range map[string]*map[string]int{"hv4": &r.HostState, "hv1": &r.HubState} {
		dp, err := dataplane.OpenPinned(sb.State.PinRoot, host)
		if err != nil {
			return err
		}
		*into, err = dp.SGEntries()
		dp.ClosePinned()
		if err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

func (r *SGPropagation) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Security group propagation (%d ports in %d groups of 10 rules; four hosts, two hubs)\n\n", r.Ports, r.Groups)
	fmt.Fprintf(b, "From the NB commit to the first echo a change lets through, or the last one before it stops them (a VM pinging another on another host every 2 ms):\n\n")
	fmt.Fprintf(b, "| change | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		l    Latency
	}{{"rule added (allows)", r.RuleAdd}, {"rule removed (cuts the open ping)", r.RuleDel}, {"port joins a group (allows)", r.JoinGroup}, {"port leaves it (cuts)", r.Leave}} {
		fmt.Fprintf(b, "| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", x.name, x.l.N, x.l.P50, x.l.P90, x.l.P99, x.l.Max)
	}
	fmt.Fprintf(b, "\nLogical flows in the sg stages: %d (groups × rules; none per port). Security group maps of a VM host with two local ports: %v; of a hub: %v (identities and memberships grow with the VPC's distinct sets of groups, not its ports).\n", r.SGFlows, r.HostState, r.HubState)
	fmt.Fprintf(b, "Target: p99 under 100 ms.\n\n")
	for _, x := range []struct {
		name string
		l    Latency
	}{{"rule added", r.RuleAdd}, {"rule removed", r.RuleDel}, {"port joins a group", r.JoinGroup}, {"port leaves it", r.Leave}} {
		if x.l.P99 >= 100 {
			fmt.Fprintf(b, "**Below target:** %s, p99 %.1f ms.\n", x.name, x.l.P99)
		}
	}
	fmt.Fprintln(b)
}
