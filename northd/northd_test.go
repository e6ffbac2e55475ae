package northd_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/northd"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// runs records what each engine run of an in-process northd did.
type runs struct {
	mu   sync.Mutex
	list []northd.RunStats
}

func (r *runs) add(active bool, st northd.RunStats) {
	if !active {
		return
	}
	r.mu.Lock()
	r.list = append(r.list, st)
	r.mu.Unlock()
}

func (r *runs) since(i int) []northd.RunStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]northd.RunStats{}, r.list[i:]...)
}

func (r *runs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

// startNorthd runs northd in-process against nb and sb until the test ends.
func startNorthd(t *testing.T, nb, sb string) *runs {
	r := &runs{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := northd.New(northd.Config{NB: []string{nb}, SB: []string{sb}, Log: testenv.Logger(t), OnRun: r.add})
	go func() {
		d.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func nb(t *testing.T, db string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	err := nbctl.Run(context.Background(), nbctl.Options{DB: db, Wait: "sb", Format: "table", Timeout: 20 * time.Second}, args, &out)
	if err != nil {
		t.Fatalf("courier-nbctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

func TestCompileAckAndIncremental(t *testing.T) {
	dbs := testenv.StartDBs(t)
	r := startNorthd(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001",
		"--", "vxnet-add", "web", "back", "10.0.2.0/24",
		"--", "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100", "--chassis", "hv1",
		"--", "port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5",
		"--", "port-add", "back", "vm3", "02:00:00:00:02:06", "unknown",
		"--", "route-add", "web", "192.168.0.0/16", "10.0.1.5")
	// --wait=sb returned: the southbound must already hold all of it.
	snap := testenv.SBSnapshot(t, dbs.SB)
	for _, want := range []string{
		"dp vpc:web vpc key=1 vpc=1 cidr=- gw=- mac=0a:c0:00:00:00:01",
		"dp vxnet:front vxnet key=5001 vpc=1 cidr=10.0.1.0/24 gw=10.0.1.1 mac=0a:c0:00:00:00:01",
		"dp vxnet:back vxnet key=1 vpc=1 cidr=10.0.2.0/24 gw=10.0.2.1",
		"pb vm1 dp=vxnet:front vpc=1 key=5 mac=02:00:00:00:01:05 ips=[10.0.1.5] vips=[10.0.1.100] sec=true rc=hv1",
		"pb vm2 dp=vxnet:back vpc=1 key=5 mac=02:00:00:00:02:05 ips=[10.0.2.5]",
		"pb vm3 dp=vxnet:back vpc=1 key=",
		"lf vpc:web vpc=1 ip_route 33 ip4.dst == 192.168.0.0/16 -> ttl_dec; eth.src = 0a:c0:00:00:00:01; route(nexthop=10.0.1.5, vni=5001);",
		"lf vpc:web vpc=1 ip_route 50 ip4.dst == 10.0.1.0/24 -> ttl_dec; eth.src = 0a:c0:00:00:00:01; route(vni=5001);",
		"lf vxnet:front vpc=1 arp_rsp 110 arp.op == 1 && arp.tpa == 10.0.1.1 -> arp_reply(0a:c0:00:00:00:01);",
	} {
		if !strings.Contains(snap, want) {
			t.Errorf("southbound lacks %q:\n%s", want, snap)
		}
	}
	// northd reports back: statuses, allocated VNI, acknowledgement.
	list := nb(t, dbs.NB, "vxnet-list")
	if !strings.Contains(list, "back   web  10.0.2.0/24  10.0.2.1  1     2      ok") {
		t.Errorf("vxnet-list:\n%s", list)
	}
	if list := nb(t, dbs.NB, "port-list"); strings.Contains(list, "error") || strings.Count(list, "\n") != 4 {
		t.Errorf("port statuses:\n%s", list)
	}

	// One more port: only the ports node may work, incrementally.
	before := r.len()
	base := r.since(before - 1)[0].Engine
	nb(t, dbs.NB, "port-add", "front", "vm4", "02:00:00:00:01:07", "10.0.1.7")
	if !strings.Contains(testenv.SBSnapshot(t, dbs.SB), "pb vm4 dp=vxnet:front vpc=1 key=7") {
		t.Fatal("vm4 not bound after --wait=sb")
	}
	after := r.since(before)
	last := after[len(after)-1].Engine
	for _, st := range after {
		if st.Full {
			t.Fatalf("adding a port caused a full recompute")
		}
	}
	for _, node := range []string{"topology", "ports", "lflows", "output"} {
		if last[node].Recompute != base[node].Recompute {
			t.Errorf("node %s recomputed on a port add (%d -> %d)", node, base[node].Recompute, last[node].Recompute)
		}
	}
	if last["ports"].Compute <= base["ports"].Compute {
		t.Errorf("ports node did not handle the change incrementally: %+v -> %+v", base["ports"], last["ports"])
	}
	if last["lflows"].Compute != base["lflows"].Compute {
		t.Errorf("a port add touched the logical flows")
	}
}

// openNB returns a libovsdb session on the northbound for raw writes.
func openNB(t *testing.T, remote string) *ops.Session {
	m, _ := nbdb.FullDatabaseModel()
	s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{remote}, Monitor: []client.MonitorOption{
		client.WithTable(&nbdb.VPC{}), client.WithTable(&nbdb.Vxnet{}), client.WithTable(&nbdb.Port{}), client.WithTable(&nbdb.Route{})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// An orchestrator that writes the NB directly (ovsdb-client transact)
// bypasses the CLI's checks; northd refuses each bad row, says why in its
// status, and keeps compiling the rest.
func TestRawWritesAreRefusedRowByRow(t *testing.T) {
	dbs := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001",
		"--", "port-add", "front", "good", "02:00:00:00:01:05", "10.0.1.5")
	front := strings.TrimSpace(testenv.Run(t, "ovsdb-client", "--no-headings", "-f", "csv", "query", dbs.NB,
		`["Courier_Northbound",{"op":"select","table":"Vxnet","where":[["name","==","front"]],"columns":["_uuid"]}]`))
	front = front[strings.Index(front, "uuid\",\"")+7:]
	front = front[:36]
	web := strings.TrimSpace(testenv.Run(t, "ovsdb-client", "--no-headings", "-f", "csv", "query", dbs.NB,
		`["Courier_Northbound",{"op":"select","table":"VPC","where":[["name","==","web"]],"columns":["_uuid"]}]`))
	web = web[strings.Index(web, "uuid\",\"")+7:]
	web = web[:36]
	// A writer that keys its ports with scopes of their own: the server
	// checks none of their addresses, northd checks them all.
	port := func(name, mac, ips string) string {
		return fmt.Sprintf(`["Courier_Northbound",{"op":"insert","table":"Port","uuid-name":"p","row":{"name":%q,"mac":%q,"ips":["set",[%s]],"mac_key":%q,"ip_key":%q}},
		 {"op":"mutate","table":"Vxnet","where":[["_uuid","==",["uuid",%q]]],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]}]`, name, mac, ips, schema.NewScope(), schema.NewScope(), front)
	}
	vxnet := func(name, cidr, extra string) string {
		return fmt.Sprintf(`["Courier_Northbound",{"op":"insert","table":"Vxnet","uuid-name":"v","row":{"name":%q,"cidr":%q%s}},
		 {"op":"mutate","table":"VPC","where":[["_uuid","==",["uuid",%q]]],"mutations":[["vxnets","insert",["set",[["named-uuid","v"]]]]]}]`, name, cidr, extra, web)
	}
	route := func(prefix, nh string) string {
		return fmt.Sprintf(`["Courier_Northbound",{"op":"insert","table":"Route","uuid-name":"r","row":{"prefix":%q,"nexthop":%q}},
		 {"op":"mutate","table":"VPC","where":[["_uuid","==",["uuid",%q]]],"mutations":[["routes","insert",["set",[["named-uuid","r"]]]]]}]`, prefix, nh, web)
	}
	cases := []struct {
		txn, table, name, want string
	}{
		{port("outside", "02:00:00:00:01:10", `"10.0.9.9"`), "Port", "outside", "IP 10.0.9.9 is outside vxnet front's CIDR 10.0.1.0/24"},
		{port("dupip", "02:00:00:00:01:11", `"10.0.1.5"`), "Port", "dupip", "IP 10.0.1.5 is already used by port good in its vxnet"},
		{port("dupmac", "02:00:00:00:01:05", `"10.0.1.12"`), "Port", "dupmac", "MAC 02:00:00:00:01:05 is already used by port good in its vxnet"},
		{port("badmac", "0a:c0:00:00:00:01", `"10.0.1.13"`), "Port", "badmac", "reserved for gateway MACs"},
		{port("gwip", "02:00:00:00:01:14", `"10.0.1.1"`), "Port", "gwip", "IP 10.0.1.1 is vxnet front's gateway"},
		{vxnet("overlap", "10.0.1.128/25", ""), "Vxnet", "overlap", "CIDR 10.0.1.128/25 overlaps vxnet front (10.0.1.0/24) in VPC web"},
		{vxnet("samevni", "10.0.5.0/24", `,"vni":5001`), "Vxnet", "samevni", "VNI 5001 is already used by vxnet front"},
		{vxnet("hostbits", "10.0.6.1/24", ""), "Vxnet", "hostbits", "CIDR 10.0.6.1/24 has host bits set"},
		{route("192.168.0.0/16", "10.0.7.7"), "Route", "", "next hop 10.0.7.7 is not a host address in any vxnet of VPC web"},
	}
	for _, c := range cases {
		testenv.Run(t, "ovsdb-client", "transact", dbs.NB, c.txn)
	}
	nb(t, dbs.NB, "sync")
	dump := testenv.Run(t, "ovsdb-client", "dump", dbs.NB, "Courier_Northbound")
	for _, c := range cases {
		if !strings.Contains(dump, c.want) {
			t.Errorf("%s %s: status does not say %q", c.table, c.name, c.want)
		}
	}
	snap := testenv.SBSnapshot(t, dbs.SB)
	for _, c := range cases {
		if c.name != "" && strings.Contains(snap, " "+c.name+" ") || c.name != "" && strings.Contains(snap, ":"+c.name+" ") {
			t.Errorf("refused %s %s reached the southbound", c.table, c.name)
		}
	}
	if !strings.Contains(snap, "pb good dp=vxnet:front") {
		t.Errorf("the good port lost its binding:\n%s", snap)
	}
	// Fixing the row makes it compile.
	nb(t, dbs.NB, "port-set", "outside", "--ips", "10.0.1.20")
	if !strings.Contains(testenv.SBSnapshot(t, dbs.SB), "pb outside dp=vxnet:front vpc=1 key=20") {
		t.Error("a fixed port was not compiled")
	}
}

// Random changes, valid and not, through the CLI and raw writes, compile
// to the same southbound as a fresh northd compiling the final NB into an
// empty southbound; and a restarted northd changes nothing.
func TestRandomChangesEqualFreshCompile(t *testing.T) {
	dbs := testenv.StartDBs(t)
	stop := startNorthdStoppable(t, dbs.NB, dbs.SB)
	r := rand.New(rand.NewSource(7))
	vpcs := []string{"a", "b"}
	for _, v := range vpcs {
		nb(t, dbs.NB, "vpc-add", v)
	}
	var vxnets, ports []string
	cidr := map[string][2]int{}
	for i := 0; i < 160; i++ {
		var args []string
		switch k := r.Intn(10); {
		case k < 2 || len(vxnets) == 0:
			name := fmt.Sprintf("x%d", i)
			a, b := r.Intn(2), r.Intn(4)
			cidr[name] = [2]int{a, b}
			args = []string{"vxnet-add", vpcs[r.Intn(2)], name, fmt.Sprintf("10.%d.%d.0/24", a, b)}
			if r.Intn(3) == 0 {
				args = append(args, "--vni", fmt.Sprint(100+r.Intn(4)))
			}
			vxnets = append(vxnets, name)
		case k < 7:
			name := fmt.Sprintf("p%d", i)
			vx := vxnets[r.Intn(len(vxnets))]
			c := cidr[vx]
			if r.Intn(5) == 0 { // sometimes outside its vxnet
				c = [2]int{r.Intn(2), r.Intn(4)}
			}
			args = []string{"port-add", vx, name, fmt.Sprintf("02:00:00:00:00:%02x", r.Intn(40)),
				fmt.Sprintf("10.%d.%d.%d", c[0], c[1], 2+r.Intn(30))}
			ports = append(ports, name)
		case k < 8 && len(ports) > 0:
			args = []string{"--if-exists", "port-del", ports[r.Intn(len(ports))]}
		case k < 9 && r.Intn(4) == 0:
			args = []string{"--if-exists", "vxnet-del", vxnets[r.Intn(len(vxnets))]}
		default:
			args = []string{"--may-exist", "route-add", vpcs[r.Intn(2)], fmt.Sprintf("172.%d.0.0/16", 16+r.Intn(4)),
				fmt.Sprintf("10.%d.%d.%d", r.Intn(2), r.Intn(4), 2+r.Intn(30))}
		}
		// The CLI refuses many of these; that is part of the mix.
		nbctl.Run(context.Background(), nbctl.Options{DB: dbs.NB, Wait: "none", Format: "table"}, args, &bytes.Buffer{})
	}
	nb(t, dbs.NB, "sync")
	nb(t, dbs.NB, "sync") // statuses written by the first run are settled
	incremental := testenv.SBSnapshot(t, dbs.SB)
	if strings.Count(incremental, "\npb ") < 10 {
		t.Fatalf("the random mix bound too few ports to mean anything:\n%s", incremental)
	}
	stop()

	// A fresh northd, compiling the same NB into an empty southbound.
	fresh := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, fresh.SB)
	nb(t, dbs.NB, "sync")
	if full := testenv.SBSnapshot(t, fresh.SB); full != incremental {
		t.Fatalf("fresh compile differs from incremental:\n--- incremental\n%s\n--- fresh\n%s", incremental, full)
	}
}

func startNorthdStoppable(t *testing.T, nbR, sbR string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := northd.New(northd.Config{NB: []string{nbR}, SB: []string{sbR}, Log: testenv.Logger(t)})
	go func() {
		d.Run(ctx)
		close(done)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	var once sync.Once
	return func() { once.Do(stop) }
}

// Two northd processes: the one holding the lock writes; killing it hands
// over to the other within a couple of seconds.
func TestStandbyTakesOver(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		dbs := testenv.StartDBs(t)
		takeover(t, dbs.NB, dbs.SB, dbs.RunDir)
	})
	t.Run("clustered", func(t *testing.T) {
		cl := testenv.StartCluster(t)
		takeover(t, strings.Join(cl.Remotes("nb"), ","), strings.Join(cl.Remotes("sb"), ","), cl.Members[0].RunDir)
	})
}

func takeover(t *testing.T, nbR, sbR, dir string) {
	bin := testenv.BinDir(t)
	var pids []int
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("northd%d", i)
		pid, err := proc.Start(proc.Spec{Bin: filepath.Join(bin, "courier-northd"),
			Args: []string{"--nb", nbR, "--sb", sbR, "--log-level", "debug"}, LogFile: filepath.Join(dir, name+".log"),
			PidFile: filepath.Join(dir, name+".pid")})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
		t.Cleanup(func() { proc.StopPID(pid, "courier-northd", 5*time.Second) })
		time.Sleep(300 * time.Millisecond) // the first one takes the lock
	}
	nb(t, nbR, "vpc-add", "ha", "--", "vxnet-add", "ha", "x", "10.9.0.0/24",
		"--", "port-add", "x", "before1", "02:00:00:00:09:02", "10.9.0.6",
		"--", "port-add", "x", "before2", "02:00:00:00:09:03", "10.9.0.7")
	active := -1
	for i := range pids {
		b, _ := exec.Command("cat", filepath.Join(dir, fmt.Sprintf("northd%d.log", i))).Output()
		if strings.Contains(string(b), "now active") {
			active = i
		}
	}
	if active < 0 {
		t.Fatal("no northd says it is active")
	}
	// While the active instance hangs (it still holds the lock), a
	// binding goes missing: the standby hears of it without acting; once
	// the hung one dies, the instance that takes over compares every row.
	syscall.Kill(pids[active], syscall.SIGSTOP)
	c, err := jsonrpc.Dial(strings.Split(sbR, ",")[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var res []ovsdb.OperationResult
	if err := c.Call(context.Background(), "transact", []any{schema.SBName, ovsdb.Operation{Op: "delete", Table: sbdb.PortBindingTable,
		Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: "before2"}}}}, &res); err != nil || len(res) != 1 || res[0].Count != 1 {
		t.Fatalf("delete before2 from the southbound: %v %+v", err, res)
	}
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(pids[active], syscall.SIGKILL)
	start := time.Now()
	nb(t, nbR, "port-add", "x", "after", "02:00:00:00:09:01", "10.9.0.5")
	took := time.Since(start)
	t.Logf("standby took over and compiled a change %v after the active one was killed", took)
	if took > 3*time.Second {
		t.Errorf("takeover took %v", took)
	}
	// The new active instance knows the bindings the old one wrote: it
	// can delete one, and rewrites none.
	nb(t, nbR, "port-del", "before1")
	snap := testenv.SBSnapshot(t, strings.Split(sbR, ",")...)
	for _, want := range []string{"pb after dp=vxnet:x", "pb before2 dp=vxnet:x"} {
		if !strings.Contains(snap, want) {
			t.Errorf("southbound lacks %q after the takeover:\n%s", want, snap)
		}
	}
	if strings.Contains(snap, "pb before1 ") {
		t.Errorf("a binding written before the takeover was not deleted after it:\n%s", snap)
	}
	b, _ := exec.Command("cat", filepath.Join(dir, fmt.Sprintf("northd%d.log", 1-active))).Output()
	if strings.Contains(string(b), "writing the result failed") {
		t.Errorf("the new active instance failed a write after taking over:\n%s", b)
	}
	_ = central.Databases
}

// Bindings are northd's rows. If somebody else deletes or renames one,
// northd puts it back at once; if somebody inserts one that collides with
// a port northd then binds, northd's write fails, it reads the bindings
// again and takes the row over.
func TestOthersBindingWritesAreRepaired(t *testing.T) {
	dbs := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.3.0.0/24",
		"--", "port-add", "x", "a", "02:00:00:00:03:0a", "10.3.0.10",
		"--", "port-add", "x", "b", "02:00:00:00:03:0b", "10.3.0.11")
	want := testenv.SBSnapshot(t, dbs.SB)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := jsonrpc.Dial(dbs.SB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sbTxn := func(op ovsdb.Operation) { rawOp(t, ctx, c, schema.SBName, op) }
	port := func(name string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: name}}
	}
	settled := func(what, want string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, what, func() error {
			if got := testenv.SBSnapshot(t, dbs.SB); got != want {
				return fmt.Errorf("southbound:\n%s\nwant:\n%s", got, want)
			}
			return nil
		})
	}

	sbTxn(ovsdb.Operation{Op: "delete", Table: sbdb.PortBindingTable, Where: port("a")})
	settled("a deleted binding is put back", want)
	sbTxn(ovsdb.Operation{Op: "update", Table: sbdb.PortBindingTable, Where: port("b"), Row: ovsdb.Row{"logical_port": "renamed"}})
	settled("a renamed binding is put back", want)

	// A stray binding for a port that does not exist yet, holding the
	// key the port will get.
	var sel []ovsdb.OperationResult
	if err := c.Call(ctx, "transact", []any{schema.SBName, ovsdb.Operation{Op: "select", Table: sbdb.DatapathTable,
		Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "vxnet:x"}}}}, &sel); err != nil || len(sel[0].Rows) != 1 {
		t.Fatalf("select datapath: %v %+v", err, sel)
	}
	dp := sel[0].Rows[0]["_uuid"]
	sbTxn(ovsdb.Operation{Op: "insert", Table: sbdb.PortBindingTable, Row: ovsdb.Row{"logical_port": "c", "datapath": dp,
		"vpc": 1, "tunnel_key": 12, "mac": "02:00:00:00:03:ff"}})
	nb(t, dbs.NB, "port-add", "x", "c", "02:00:00:00:03:0c", "10.3.0.12")
	snap := testenv.SBSnapshot(t, dbs.SB)
	if !strings.Contains(snap, "pb c dp=vxnet:x vpc=1 key=12 mac=02:00:00:00:03:0c ips=[10.3.0.12]") {
		t.Errorf("the stray binding was not taken over:\n%s", snap)
	}
}

// libovsdb hands out a transaction's rows one by one, in no fixed order.
// northd must compile the transaction whole: a port seen before its
// vxnet would otherwise be refused ("belongs to no vxnet") and then
// accepted, and an orchestrator watching statuses would see both.
func TestBulkTransactionCompiledWhole(t *testing.T) {
	dbs := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, dbs.SB)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, _ := nbdb.FullDatabaseModel()
	port := &nbdb.Port{}
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.NB},
		Monitor: []client.MonitorOption{client.WithTable(port, &port.Name, &port.Status), client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Every status a port ever has, not a coalesced view.
	refused := &statusLog{}
	s.Cache().AddEventHandler(&cache.EventHandlerFuncs{UpdateFunc: refused.update})
	const ports, vxnets = 3000, 20
	txn := []ovsdb.Operation{{Op: "insert", Table: nbdb.VPCTable, UUIDName: "vpc", Row: ovsdb.Row{"name": "bulk"}}}
	refs := make([][]any, vxnets)
	for p := 0; p < ports; p++ {
		vx, host := p%vxnets, 2+p/vxnets
		id := fmt.Sprintf("p%d", p)
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: nbdb.PortTable, UUIDName: id, Row: ovsdb.Row{"name": id,
			"mac": fmt.Sprintf("02:00:00:%02x:%02x:%02x", vx, host>>8, host&255), "ips": fmt.Sprintf("10.7.%d.%d", vx, host),
			"mac_key": schema.NewScope(), "ip_key": schema.NewScope()}})
		refs[vx] = append(refs[vx], ovsdb.UUID{GoUUID: id})
	}
	var vxRefs []any
	for i := 0; i < vxnets; i++ {
		id := fmt.Sprintf("x%d", i)
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: nbdb.VxnetTable, UUIDName: id, Row: ovsdb.Row{"name": id,
			"cidr": fmt.Sprintf("10.7.%d.0/24", i), "ports": ovsdb.OvsSet{GoSet: refs[i]}}})
		vxRefs = append(vxRefs, ovsdb.UUID{GoUUID: id})
	}
	txn = append(txn, ovsdb.Operation{Op: "mutate", Table: nbdb.VPCTable, Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: "vpc"}}},
		Mutations: []ovsdb.Mutation{{Column: "vxnets", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: vxRefs}}}})
	if _, err := ops.Transact(ctx, s, txn...); err != nil {
		t.Fatal(err)
	}
	// The acknowledgement of a later change says northd is done with
	// this one.
	nb(t, dbs.NB, "sync")
	if msgs := refused.get(); len(msgs) > 0 {
		t.Errorf("%d ports were refused during the bulk load, the first: %s", len(msgs), msgs[0])
	}
	if snap := testenv.SBSnapshot(t, dbs.SB); strings.Count(snap, "\npb ") != ports {
		t.Errorf("want %d bindings, got %d", ports, strings.Count(snap, "\npb "))
	}
}

// statusLog records every error status a port is given.
type statusLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *statusLog) update(table string, _, m model.Model) {
	if p, ok := m.(*nbdb.Port); ok && p.Status["state"] == "error" {
		l.mu.Lock()
		l.msgs = append(l.msgs, p.Name+": "+p.Status["error"])
		l.mu.Unlock()
	}
}

func (l *statusLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.msgs...)
}

// Security groups in a real northbound: each port's identity in its
// binding, the VPC's table of identities in its datapath and status, and
// a rule written around the CLI's checks refused with a reason.
func TestSecurityGroupsCompiled(t *testing.T) {
	dbs := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24",
		"--", "port-add", "web", "vm1", "02:00:00:00:01:05", "10.0.1.5",
		"--", "port-add", "web", "vm2", "02:00:00:00:01:06", "10.0.1.6",
		"--", "sg-add", "blue", "web", "--", "sg-rule-add", "web", "ingress", "tcp", "80")
	nb(t, dbs.NB, "port-set", "vm2", "--sg", "web")
	query := func(db, table, col, name, key string) string {
		out := testenv.Run(t, "ovsdb-client", "--no-headings", "-f", "csv", "--data=bare", "dump", db,
			map[string]string{dbs.NB: schema.NBName, dbs.SB: schema.SBName}[db], table, key, col)
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(line, ","); ok && strings.Trim(k, `"`) == name {
				return strings.Trim(v, `"`)
			}
		}
		return ""
	}
	id1, id2 := query(dbs.SB, "Port_Binding", "sg_identity", "vm1", "logical_port"), query(dbs.SB, "Port_Binding", "sg_identity", "vm2", "logical_port")
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Fatalf("identities vm1 %q, vm2 %q", id1, id2)
	}
	table := query(dbs.SB, "Datapath", "security_identities", "vpc:blue", "name")
	if !strings.Contains(table, id1+"=default") || !strings.Contains(table, id2+"=web") {
		t.Errorf("datapath's identities %q (vm1 %s, vm2 %s)", table, id1, id2)
	}
	if st := query(dbs.NB, "VPC", "status", "blue", "name"); !strings.Contains(st, "security_identities") {
		t.Errorf("VPC status %q does not record identities", st)
	}
	// A rule with no remote (an orchestrator's raw write) is refused.
	testenv.Run(t, "ovsdb-client", "transact", dbs.NB, `["Courier_Northbound",
		{"op":"insert","table":"Security_Group_Rule","uuid-name":"r","row":{"direction":"egress","protocol":"udp"}},
		{"op":"mutate","table":"Security_Group","where":[["name","==","web"]],"mutations":[["rules","insert",["set",[["named-uuid","r"]]]]]}]`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := testenv.Run(t, "ovsdb-client", "--no-headings", "-f", "csv", "--data=bare", "dump", dbs.NB, schema.NBName, "Security_Group_Rule", "status")
		if strings.Contains(out, "the rule has no remote") && strings.Count(out, "state=ok") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule statuses:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
