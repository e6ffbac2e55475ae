package nbctl_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// TestNamedRowsDecideAsWholeTables runs the commands that read only the
// rows they name (port-add, port-del, port-set, port-list VXNET) against
// one database, and the same commands with a port-list of everything
// appended, which makes the invocation read whole tables, against
// another: every refusal and every resulting row must be the same,
// whether the named vxnets' ports are read one by one or as one select
// of the whole table.
func TestNamedRowsDecideAsWholeTables(t *testing.T) {
	for _, at := range []int{4096, 0} {
		t.Run(fmt.Sprintf("whole-table-at-%d", at), func(t *testing.T) {
			defer nbctl.SetWholeTableAt(at)()
			namedRowsDecideAsWholeTables(t)
		})
	}
}

func namedRowsDecideAsWholeTables(t *testing.T) {
	a, b := testenv.StartDBs(t).NB, testenv.StartDBs(t).NB
	setup := [][]string{
		{"init"},
		{"vpc-add", "web", "--", "vpc-add", "db"},
		{"vxnet-add", "web", "front", "10.0.1.0/24"},
		{"vxnet-add", "web", "back", "10.0.2.0/24"},
		{"vxnet-add", "db", "data", "10.0.1.0/24"},
		{"port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100"},
		{"port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5", "10.0.2.6"},
		{"port-add", "back", "vm3", "02:00:00:00:02:07", "unknown"},
	}
	for _, args := range setup {
		mustNB(t, a, args...)
		mustNB(t, b, args...)
	}
	steps := []struct {
		args []string
		ok   bool
	}{
		{[]string{"port-add", "front", "x", "02:00:00:00:01:09", "10.0.1.5"}, false},   // vm1's IP
		{[]string{"port-add", "front", "x", "02:00:00:00:01:05", "10.0.1.9"}, false},   // vm1's MAC
		{[]string{"port-add", "front", "x", "02:00:00:00:01:09", "10.0.1.100"}, false}, // vm1's VIP
		{[]string{"port-add", "back", "x", "02:00:00:00:01:05", "10.0.2.9"}, true},     // a MAC of another vxnet
		{[]string{"port-add", "data", "y", "02:00:00:00:03:05", "10.0.1.5"}, true},     // the same IP in another VPC
		{[]string{"port-add", "nosuch", "z", "02:00:00:00:03:06", "10.0.1.6"}, false},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:30", "10.0.1.30"}, false}, // a port of another vxnet
		{[]string{"port-add", "back", "vm2", "02:00:00:00:02:30", "10.0.2.30"}, false},  // of this one
		{[]string{"--may-exist", "port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5", "10.0.2.6"}, true},
		{[]string{"--may-exist", "port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5"}, false},
		{[]string{"--may-exist", "port-add", "front", "vm2", "02:00:00:00:02:05", "10.0.2.5", "10.0.2.6"}, false},
		{[]string{"port-set", "vm3", "--ips", "10.0.2.6"}, false}, // vm2's
		{[]string{"port-set", "vm2", "--ips", "10.0.2.5"}, true},
		{[]string{"port-set", "vm3", "--ips", "10.0.2.6"}, true}, // freed just now
		{[]string{"port-set", "nosuch", "--ips", "10.0.2.8"}, false},
		{[]string{"port-del", "vm3", "--", "port-add", "back", "vm3", "02:00:00:00:02:07", "10.0.2.7",
			"--", "port-del", "vm2", "--", "port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5"}, true},
		{[]string{"port-add", "front", "c1", "02:00:00:00:01:20", "10.0.1.20", "--", "port-add", "front", "c2", "02:00:00:00:01:21", "10.0.1.20"}, false},
		{[]string{"port-add", "front", "c1", "02:00:00:00:01:20", "10.0.1.20", "--", "port-set", "c1", "--ips", "10.0.1.21"}, true},
		{[]string{"port-del", "nosuch"}, false},
		{[]string{"--if-exists", "port-del", "nosuch"}, true},
		{[]string{"port-del", "x", "--", "port-add", "back", "x", "02:00:00:00:01:05", "10.0.2.5"}, false}, // vm2's IP
	}
	for _, s := range steps {
		whole := append(append([]string{}, s.args...), "--", "port-list")
		_, errA := nb(a, s.args...)
		_, errB := nb(b, whole...)
		if (errA == nil) != s.ok || (errB == nil) != s.ok || errText(errA) != errText(errB) {
			t.Errorf("%s: named rows: %v; whole tables: %v; want ok=%v", strings.Join(s.args, " "), errA, errB, s.ok)
		}
		for _, list := range [][]string{{"-f=json", "port-list"}, {"-f=json", "port-list", "back"}, {"-f=json", "vxnet-list"}} {
			if la, lb := mustNB(t, a, list...), mustNB(t, b, list...); la != lb {
				t.Fatalf("after %s, %s differs:\nnamed rows:   %s\nwhole tables: %s", strings.Join(s.args, " "), strings.Join(list, " "), la, lb)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestOneCommandReadsItsVxnetOnly: a port-add next to a vxnet of 500
// ports reads its own vxnet's rows, not the database.
func TestOneCommandReadsItsVxnetOnly(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "big", "10.1.0.0/16", "--", "vxnet-add", "v", "small", "10.2.0.0/24")
	var chain []string
	for i := 0; i < 500; i++ {
		chain = append(chain, "--", "port-add", "big", fmt.Sprintf("b%d", i), fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8, i&255), fmt.Sprintf("10.1.%d.%d", i/250, 2+i%250))
	}
	mustNB(t, db, chain[1:]...)
	mustNB(t, db, "port-add", "small", "s1", "02:00:00:02:00:01", "10.2.0.5")
	for _, c := range []struct {
		args []string
		max  int64
	}{
		{[]string{"port-add", "small", "s2", "02:00:00:02:00:02", "10.2.0.6"}, 2},   // the vxnet, s1
		{[]string{"port-set", "s2", "--ips", "10.2.0.7"}, 5},                        // s2, its vxnet, s1 and s2
		{[]string{"port-del", "s1"}, 5},                                             // the same
		{[]string{"port-add", "big", "b500", "02:00:00:01:09:09", "10.1.9.9"}, 501}, // the vxnet, its 500 ports
	} {
		before := nbctl.RowsRead()
		mustNB(t, db, c.args...)
		if n := nbctl.RowsRead() - before; n > c.max || n == 0 {
			t.Errorf("%s read %d rows, want 1 to %d", strings.Join(c.args, " "), n, c.max)
		}
	}
}
