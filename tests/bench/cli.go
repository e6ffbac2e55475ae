package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// The CLI benchmark times what an operator or a script pays for one
// courier-nbctl command as the database grows, and a bulk load through
// the CLI against the same transactions sent raw.

// CLIResult is the CLI benchmark's report.
type CLIResult struct {
	Sizes []CLISize `json:"sizes"`
	// The bulk load: BulkPorts ports in transactions of BulkChunk, on
	// fresh databases without northd, Rounds times interleaved.
	BulkPorts int       `json:"bulk_ports"`
	BulkChunk int       `json:"bulk_chunk"`
	CLISecs   []float64 `json:"bulk_cli_seconds"`
	// RawSecs: the ports alone as raw transactions, the baseline. Since
	// schema 1.8.0 they are the same rows the CLI writes: each port with
	// the keys of its MAC and IP (which every writer fills), the vxnets'
	// port sets. (From 1.7.0 to 1.8.0 the CLI also wrote two
	// Address_Claim rows a port; results of that time hold the load of
	// those rows raw here and the ports without them as
	// bulk_raw_bare_seconds.)
	RawSecs []float64 `json:"bulk_raw_seconds"`
	// LoadAvg is the machine's 1-minute load average after each round.
	LoadAvg []float64 `json:"bulk_load_avg"`
	// Where each load's time goes, per round: the northbound
	// ovsdb-server's CPU seconds (CLI, raw, ports alone) and the
	// courier-nbctl processes' (user and system, summed).
	ServerCPUCLI []float64 `json:"bulk_cli_server_cpu_seconds"`
	ServerCPURaw []float64 `json:"bulk_raw_server_cpu_seconds"`
	ClientCPUCLI []float64 `json:"bulk_cli_client_cpu_seconds"`
}

// bulkRun is one bulk load's wall time and CPU.
type bulkRun struct{ secs, serverCPU, clientCPU float64 }

// CLISize is one database size: single port-add invocations of the
// courier-nbctl binary, timed from exec to exit.
type CLISize struct {
	Ports  int     `json:"ports"`
	AddNow Latency `json:"port_add_ms"`
	AddSB  Latency `json:"port_add_wait_sb_ms"`
}

const cliVxnets = 253

// cliIP is port p's address: vxnet p%253 is a /22, so 256,000 ports fit.
func cliIP(p int) netip.Addr {
	vx, h := p%cliVxnets, 2+p/cliVxnets
	return netip.AddrFrom4([4]byte{10, byte(vx >> 6), byte((vx&63)<<2 + h>>8), byte(h)})
}

func cliCIDR(vx int) string {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(vx >> 6), byte((vx & 63) << 2), 0}), 22).String()
}

func cliMAC(p int) string {
	vx, h := p%cliVxnets, 2+p/cliVxnets
	return fmt.Sprintf("02:01:%02x:00:%02x:%02x", vx, h>>8, h&255)
}

// cliVxnetsTxn creates the VPC and its vxnets.
func cliVxnetsTxn() []ovsdb.Operation {
	txn := []ovsdb.Operation{{Op: "insert", Table: "VPC", UUIDName: "vpc", Row: ovsdb.Row{"name": "bench"}}}
	var refs []any
	for i := 0; i < cliVxnets; i++ {
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Vxnet", UUIDName: "vx" + strconv.Itoa(i),
			Row: ovsdb.Row{"name": "x" + strconv.Itoa(i), "cidr": cliCIDR(i)}})
		refs = append(refs, ovsdb.UUID{GoUUID: "vx" + strconv.Itoa(i)})
	}
	return append(txn, ovsdb.Operation{Op: "mutate", Table: "VPC", Where: ops.WhereUUID("vpc"),
		Mutations: []ovsdb.Mutation{{Column: "vxnets", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: refs}}}})
}

// cliPortsTxn adds ports from..to-1 as one raw transaction, with the
// keys of their MACs and IPs in vxnets (by UUID, in order).
func cliPortsTxn(from, to int, vxnets []string) []ovsdb.Operation {
	var txn []ovsdb.Operation
	refs := map[int][]any{}
	for p := from; p < to; p++ {
		n := "pt" + strconv.Itoa(p)
		vx := vxnets[p%cliVxnets]
		row := ovsdb.Row{"name": "p" + strconv.Itoa(p), "mac": cliMAC(p), "ips": cliIP(p).String(),
			"mac_key": schema.AddressKey(vx, cliMAC(p)), "ip_key": schema.AddressKey(vx, cliIP(p).String())}
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Port", UUIDName: n, Row: row})
		refs[p%cliVxnets] = append(refs[p%cliVxnets], ovsdb.UUID{GoUUID: n})
	}
	for vx := 0; vx < cliVxnets; vx++ {
		if len(refs[vx]) > 0 {
			txn = append(txn, ovsdb.Operation{Op: "mutate", Table: "Vxnet",
				Where:     []ovsdb.Condition{{Column: "name", Function: "==", Value: "x" + strconv.Itoa(vx)}},
				Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: refs[vx]}}}})
		}
	}
	return txn
}

// cliPortsArgs are the courier-nbctl arguments that add ports from..to-1.
func cliPortsArgs(from, to int) []string {
	var args []string
	for p := from; p < to; p++ {
		if p > from {
			args = append(args, "--")
		}
		args = append(args, "port-add", "x"+strconv.Itoa(p%cliVxnets), "p"+strconv.Itoa(p), cliMAC(p), cliIP(p).String())
	}
	return args
}

// CLI runs the CLI benchmark.
func CLI(ctx context.Context, env Env, sizes []int, samples, bulkPorts, rounds int) (*CLIResult, error) {
	r := &CLIResult{BulkPorts: bulkPorts, BulkChunk: 2000}
	for _, n := range sizes {
		env.Log.Info("CLI benchmark: single commands", "ports", n)
		s, err := cliSingles(ctx, env, n, samples)
		if err != nil {
			return nil, fmt.Errorf("%d ports: %w", n, err)
		}
		r.Sizes = append(r.Sizes, *s)
	}
	for i := 0; i < rounds; i++ {
		env.Log.Info("CLI benchmark: bulk load", "ports", bulkPorts, "round", i+1)
		raw, err := cliBulk(ctx, env, bulkPorts, r.BulkChunk, bulkRaw)
		if err != nil {
			return nil, fmt.Errorf("raw bulk load: %w", err)
		}
		viaCLI, err := cliBulk(ctx, env, bulkPorts, r.BulkChunk, bulkCLI)
		if err != nil {
			return nil, fmt.Errorf("CLI bulk load: %w", err)
		}
		r.RawSecs, r.CLISecs = append(r.RawSecs, raw.secs), append(r.CLISecs, viaCLI.secs)
		r.ServerCPURaw, r.ServerCPUCLI = append(r.ServerCPURaw, raw.serverCPU), append(r.ServerCPUCLI, viaCLI.serverCPU)
		r.ClientCPUCLI = append(r.ClientCPUCLI, viaCLI.clientCPU)
		r.LoadAvg = append(r.LoadAvg, loadAvg())
	}
	return r, nil
}

// cliCentral starts standalone databases in a fresh directory, with the
// VPC and its vxnets, whose UUIDs it returns in order.
func cliCentral(ctx context.Context, env Env) (*central.Config, string, []string, error) {
	dir, err := os.MkdirTemp(env.TmpDir, "bc")
	if err != nil {
		return nil, "", nil, err
	}
	c := &central.Config{RunDir: dir, BinDir: env.BinDir}
	if err := c.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	nbR := c.Remote(central.Databases[0])
	err = rawTransact(ctx, nbR, cliVxnetsTxn())
	var vxnets []string
	if err == nil {
		vxnets, err = cliVxnetUUIDs(ctx, nbR)
	}
	if err != nil {
		c.Stop()
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return c, dir, vxnets, nil
}

// cliVxnetUUIDs are the UUIDs of vxnets x0, x1, ... in order.
func cliVxnetUUIDs(ctx context.Context, remote string) ([]string, error) {
	conn, err := jsonrpc.Dial(remote, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	dec, err := jsonrpc.NewRowDecoder(&nbdb.Vxnet{})
	if err != nil {
		return nil, err
	}
	res, err := jsonrpc.Selects(ctx, conn, "Courier_Northbound", []ovsdb.Operation{{Op: "select", Table: "Vxnet",
		Where: []ovsdb.Condition{}, Columns: []string{"_uuid", "name"}}}, []*jsonrpc.RowDecoder{dec})
	if err != nil {
		return nil, err
	}
	out := make([]string, cliVxnets)
	for _, m := range res[0] {
		vx := m.(*nbdb.Vxnet)
		if i, err := strconv.Atoi(strings.TrimPrefix(vx.Name, "x")); err == nil && i < cliVxnets {
			out[i] = vx.UUID
		}
	}
	return out, nil
}

func rawTransact(ctx context.Context, remote string, txn []ovsdb.Operation) error {
	return rawTransactDB(ctx, remote, "Courier_Northbound", txn)
}

func rawTransactDB(ctx context.Context, remote, db string, txn []ovsdb.Operation) error {
	conn, err := jsonrpc.Dial(remote, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	return rawSend(ctx, conn, encodeTxnDB(db, txn))
}

func encodeTxn(txn []ovsdb.Operation) []byte { return encodeTxnDB("Courier_Northbound", txn) }

func encodeTxnDB(db string, txn []ovsdb.Operation) []byte {
	t := newRawTxn(db)
	for _, op := range txn {
		t.add(op)
	}
	return t.done()
}

func rawSend(ctx context.Context, conn *jsonrpc.Conn, params []byte) error {
	var res []json.RawMessage
	if err := conn.CallRaw(ctx, "transact", params, &res); err != nil {
		return err
	}
	for _, r := range res {
		if strings.Contains(string(r), `"error"`) {
			return fmt.Errorf("transaction failed: %s", r)
		}
	}
	return nil
}

// cliSingles loads n ports, starts northd, and times single port-add
// invocations, alternately without waiting and with --wait=sb.
func cliSingles(ctx context.Context, env Env, n, samples int) (*CLISize, error) {
	c, dir, vxnets, err := cliCentral(ctx, env)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defer c.Stop()
	nbR, sbR := c.Remote(central.Databases[0]), c.Remote(central.Databases[1])
	for from := 0; from < n; from += 64000 {
		if err := rawTransact(ctx, nbR, cliPortsTxn(from, min(n, from+64000), vxnets)); err != nil {
			return nil, err
		}
	}
	pid, err := proc.Start(proc.Spec{Bin: filepath.Join(env.BinDir, "courier-northd"), Args: []string{"--nb", nbR, "--sb", sbR},
		LogFile: filepath.Join(dir, "northd.log"), PidFile: filepath.Join(dir, "northd.pid")})
	if err != nil {
		return nil, err
	}
	defer proc.StopPID(pid, "courier-northd", 5*time.Second)
	if err := waitCompiled(ctx, nbR); err != nil {
		return nil, err
	}
	nbctl := filepath.Join(env.BinDir, "courier-nbctl")
	var now, sb []time.Duration
	for k := 0; k < 2*samples; k++ {
		p := n + k
		args := []string{"--db", nbR, "--timeout", "60s"}
		if k%2 == 1 {
			args = append(args, "--wait=sb")
		}
		args = append(args, "port-add", "x"+strconv.Itoa(p%cliVxnets), "s"+strconv.Itoa(k), cliMAC(p), cliIP(p).String())
		start := time.Now()
		if out, err := exec.CommandContext(ctx, nbctl, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("courier-nbctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		if k%2 == 1 {
			sb = append(sb, time.Since(start))
		} else {
			now = append(now, time.Since(start))
		}
	}
	return &CLISize{Ports: n, AddNow: Summarize(now), AddSB: Summarize(sb)}, nil
}

// waitCompiled bumps nb_cfg and waits for northd to acknowledge it.
func waitCompiled(ctx context.Context, nbR string) error {
	m, _ := nbdb.FullDatabaseModel()
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{nbR},
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := ops.Transact(ctx, s, bumpCfg()...)
	if err != nil {
		return err
	}
	return waitSbCfg(ctx, s, cfgOf(res), 10*time.Minute)
}

// How a bulk load is sent: through courier-nbctl; the ports alone raw.
const (
	bulkCLI = iota
	bulkRaw
)

// cliBulk loads ports in chunks, on fresh databases without northd, and
// returns the seconds it took and the CPU it cost.
func cliBulk(ctx context.Context, env Env, ports, chunk, how int) (bulkRun, error) {
	c, dir, vxnets, err := cliCentral(ctx, env)
	if err != nil {
		return bulkRun{}, err
	}
	viaCLI := how == bulkCLI
	defer os.RemoveAll(dir)
	defer c.Stop()
	nbR := c.Remote(central.Databases[0])
	nbctl := filepath.Join(env.BinDir, "courier-nbctl")
	// Every transaction is prepared before the clock starts.
	var argvs [][]string
	var txns [][]byte
	for from := 0; from < ports; from += chunk {
		if viaCLI {
			argvs = append(argvs, append([]string{"--db", nbR, "--timeout", "120s"}, cliPortsArgs(from, min(ports, from+chunk))...))
		} else {
			txns = append(txns, encodeTxn(cliPortsTxn(from, min(ports, from+chunk), vxnets)))
		}
	}
	m := newPidMeter(dir, "ovsdb-server-"+central.Databases[0].Short)
	pid, ticks := m.pids[m.names[0]], m.ticks[m.names[0]]
	serverCPU := func() float64 { return (cpuTicks(pid) - ticks) / 100 }
	var r bulkRun
	start := time.Now()
	if viaCLI {
		for _, a := range argvs {
			cmd := exec.CommandContext(ctx, nbctl, a...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return r, fmt.Errorf("courier-nbctl: %v: %.500s", err, out)
			}
			r.clientCPU += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
		}
		r.secs, r.serverCPU = time.Since(start).Seconds(), serverCPU()
		return r, nil
	}
	conn, err := jsonrpc.Dial(nbR, nil)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	for _, t := range txns {
		if err := rawSend(ctx, conn, t); err != nil {
			return r, err
		}
	}
	r.secs, r.serverCPU = time.Since(start).Seconds(), serverCPU()
	return r, nil
}

func (r *CLIResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## courier-nbctl as the database grows\n\n")
	fmt.Fprintf(b, "One VPC, %d vxnets (/22), the ports spread over them; single `courier-nbctl port-add` invocations of the binary, timed from exec to exit, northd running.\n\n", cliVxnets)
	fmt.Fprintf(b, "| ports | port-add p50 / p99 / max ms | port-add --wait=sb p50 / p99 / max ms |\n|---|---|---|\n")
	for _, s := range r.Sizes {
		fmt.Fprintf(b, "| %d | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f |\n", s.Ports, s.AddNow.P50, s.AddNow.P99, s.AddNow.Max, s.AddSB.P50, s.AddSB.P99, s.AddSB.Max)
	}
	if len(r.CLISecs) > 0 {
		lo, hi := spread(r.CLISecs)
		rlo, rhi := spread(r.RawSecs)
		fmt.Fprintf(b, "\nBulk load of %d ports in transactions of %d, fresh databases, no northd, %d interleaved rounds: through courier-nbctl %.2f s (%.2f–%.2f), the ports alone (with the keys of their addresses, the same rows the CLI writes) as raw OVSDB transactions %.2f s (%.2f–%.2f); ratio %.2f (target: within 2).",
			r.BulkPorts, r.BulkChunk, len(r.CLISecs), median(r.CLISecs), lo, hi, median(r.RawSecs), rlo, rhi, median(r.CLISecs)/median(r.RawSecs))
		if len(r.ServerCPUCLI) > 0 {
			fmt.Fprintf(b, " Where the time goes (medians): the northbound ovsdb-server's CPU %.2f s for the CLI's load, %.2f s for the raw load; the courier-nbctl processes' CPU %.2f s.",
				median(r.ServerCPUCLI), median(r.ServerCPURaw), median(r.ClientCPUCLI))
		}
		llo, lhi := spread(r.LoadAvg)
		fmt.Fprintf(b, " The machine's load average after each round: %.1f–%.1f.\n\n", llo, lhi)
	}
	fmt.Fprintf(b, "Target: a single port-add --wait=sb p50 under 50 ms at every size.\n\n")
}
