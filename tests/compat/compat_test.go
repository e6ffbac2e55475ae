// Package compat holds the script-compatibility test: the same generic
// database commands run through ovn-nbctl against OVN's northbound and
// through courier-nbctl against Courier's must print the same thing, in
// every output format, and fail the same way. A script written for
// ovn-nbctl then needs only its table and column names changed.
package compat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
)

// OVNSchema is where Debian's ovn-central puts OVN's northbound schema.
const OVNSchema = "/usr/share/ovn/ovn-nb.ovsschema"

// side is one database and the names a script uses on it.
type side struct {
	tool  string
	db    string
	names map[string]string
}

// The same roles in both schemas: a root table with a name and a set of
// strong references to a non-root table, whose rows have a set of
// strings, an optional integer and an optional boolean.
var (
	ovnNames = map[string]string{
		"ROOT": "Logical_Switch", "CHILD": "Logical_Switch_Port", "CHILDREN": "ports", "OPTS": "other_config",
		"SET": "addresses", "INT": "tag_request", "BOOL": "enabled", "EXTRA": "external_ids:made=here",
	}
	courierNames = map[string]string{
		"ROOT": "VPC", "CHILD": "Vxnet", "CHILDREN": "vxnets", "OPTS": "options",
		"SET": "", "INT": "vni", "BOOL": "", "EXTRA": "cidr=10.0.1.0/24",
	}
	// The port-level steps: Courier's Port against OVN's port.
	ovnPort     = map[string]string{"CHILD": "Logical_Switch_Port", "SET": "addresses", "INT": "tag_request", "BOOL": "enabled", "EXTRA": "external_ids:made=here"}
	courierPort = map[string]string{"CHILD": "Port", "SET": "ips", "INT": "learned_limit", "BOOL": "port_security", "EXTRA": "mac=\"02:00:00:00:00:01\""}
)

// script is what an operator's script would run.
var script = [][]string{
	{"create", "ROOT", "name=sw0", "external_ids:owner=alice"},
	{"set", "ROOT", "sw0", `external_ids:"x y"="p q"`, "OPTS:m=n"},
	{"get", "ROOT", "sw0", "external_ids", "external_ids:owner", "name", "OPTS"},
	{"--columns=name,external_ids", "list", "ROOT", "sw0"},
	{"-f", "table", "--columns=name,external_ids,OPTS", "list", "ROOT"},
	{"-f", "csv", "--columns=name,external_ids", "list", "ROOT"},
	{"-f", "json", "--columns=_uuid,name,external_ids,CHILDREN", "list", "ROOT"},
	{"--bare", "--columns=name,external_ids", "find", "ROOT", "external_ids:owner=alice"},
	{"--no-headings", "--columns=name", "find", "ROOT", "name=sw0"},
	{"-f", "table", "--no-headings", "--columns=name,OPTS", "find", "ROOT", "name!=nosuch"},
	{"add", "ROOT", "sw0", "external_ids", "owner=bob", "team=net"},
	{"remove", "ROOT", "sw0", "external_ids", "owner"},
	{"get", "ROOT", "sw0", "external_ids"},
	{"clear", "ROOT", "sw0", "external_ids"},
	{"get", "ROOT", "sw0", "external_ids"},
	{"--if-exists", "get", "ROOT", "nosuch", "name"},
	{"get", "ROOT", "nosuch", "name"},
	{"get", "ROOT", "sw0", "colour"},
	{"set", "ROOT", "sw0", "name=sw1", "--", "set", "ROOT", "nosuch", "name=x"},
	{"--", "--id=@c", "create", "CHILD", "name=c1", "EXTRA", "--", "add", "ROOT", "sw0", "CHILDREN", "@c"},
	{"-f", "json", "--columns=name,CHILDREN", "list", "ROOT", "sw0"},
	{"get", "ROOT", "sw0", "CHILDREN"},
	{"wait-until", "ROOT", "sw0", "name=sw0"},
	{"destroy", "ROOT", "sw0"},
	{"list", "ROOT"},
	{"--if-exists", "destroy", "ROOT", "sw0"},
}

// portScript exercises a row's set, integer and boolean columns.
var portScript = [][]string{
	{"set", "CHILD", "c1", "INT=5", "BOOL=false", `SET=["10.0.0.1", "10.0.0.2"]`},
	{"get", "CHILD", "c1", "INT", "BOOL", "SET", "name"},
	{"--bare", "get", "CHILD", "c1", "SET"},
	{"--columns=name,INT,BOOL,SET", "list", "CHILD", "c1"},
	{"-f", "json", "--columns=name,INT,BOOL,SET", "list", "CHILD", "c1"},
	{"--bare", "--columns=name", "find", "CHILD", "INT>=5", "BOOL=false"},
	{"--bare", "--columns=name", "find", "CHILD", "SET{>=}10.0.0.2"},
	{"clear", "CHILD", "c1", "INT"},
	{"get", "CHILD", "c1", "INT"},
	{"add", "CHILD", "c1", "SET", "10.0.0.3"},
	{"remove", "CHILD", "c1", "SET", "10.0.0.1"},
	{"get", "CHILD", "c1", "SET"},
	{"set", "CHILD", "c1", "INT=many"},
}

func TestSameScriptSameOutput(t *testing.T) {
	testenv.Integration(t, "ovn-nbctl")
	if _, err := os.Stat(OVNSchema); err != nil {
		t.Fatalf("OVN's northbound schema is missing (make deps installs ovn-central): %v", err)
	}
	ovn := &side{tool: "ovn-nbctl", db: startOVN(t), names: ovnNames}
	dbs := testenv.StartDBs(t)
	courier := &side{tool: filepath.Join(testenv.BinDir(t), "courier-nbctl"), db: dbs.NB, names: courierNames}

	for _, step := range script {
		compare(t, ovn, courier, step)
	}
	// The port-level script needs a child row of each kind again.
	run(ovn, nil, []string{"--", "--id=@c", "create", "Logical_Switch_Port", "name=c1", "--", "create", "Logical_Switch", "name=sw9", "ports=@c"})
	run(courier, nil, []string{"vpc-add", "sw9", "--", "vxnet-add", "sw9", "web", "10.0.0.0/24", "--", "port-add", "web", "c1", "02:00:00:00:00:01", "10.0.0.9"})
	for _, step := range portScript {
		compare(t, &side{tool: ovn.tool, db: ovn.db, names: ovnPort}, &side{tool: courier.tool, db: courier.db, names: courierPort}, step)
	}
}

func compare(t *testing.T, a, b *side, step []string) {
	t.Helper()
	ao, ae, ac := run(a, a.names, step)
	bo, be, bc := run(b, b.names, step)
	ao, bo = normalize(ao, a), normalize(bo, b)
	ae, be = normalize(ae, a), normalize(be, b)
	if ao != bo || ac != bc {
		t.Errorf("%v:\n%s (exit %d):\n%s%s(exit %d):\n%s", step, a.tool, ac, ao, filepath.Base(b.tool), bc, bo)
	}
	if ac != 0 && ae != be {
		t.Logf("%v: the errors differ (not compared):\n  %s  %s", step, ae, be)
	}
}

// run runs one step, its placeholders replaced by the side's names.
func run(s *side, names map[string]string, step []string) (stdout, stderr string, code int) {
	var args []string
	for _, w := range step {
		for k, v := range names {
			w = replaceWord(w, k, v)
		}
		if w != "" {
			args = append(args, w)
		}
	}
	cmd := exec.Command(s.tool, append([]string{"--db=" + s.db, "--timeout=10"}, args...)...)
	if strings.HasPrefix(filepath.Base(s.tool), "courier") {
		cmd.Args[2] = "--timeout=10s"
	}
	cmd.Env = append(os.Environ(), "OVN_NB_DAEMON=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

var wordRE = regexp.MustCompile(`[A-Z]+`)

// replaceWord replaces the placeholder k where it stands as a whole
// upper-case word.
func replaceWord(w, k, v string) string {
	return wordRE.ReplaceAllStringFunc(w, func(m string) string {
		if m == k {
			return v
		}
		return m
	})
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

var (
	spaces = regexp.MustCompile(` +`)
	dashes = regexp.MustCompile(`-{2,}`)
)

// normalize makes two sides' output comparable: UUIDs and the sides'
// own table and column names become placeholders, and since those
// differ in length, runs of spaces and of dashes (a table's rule) are
// shortened. (The alignment itself is checked in tools/dbcmd.)
func normalize(s string, sd *side) string {
	s = uuidRE.ReplaceAllString(s, "<uuid>")
	s = strings.ReplaceAll(s, filepath.Base(sd.tool)+":", "TOOL:")
	for k, v := range sd.names {
		if v != "" && !strings.ContainsAny(v, "=:") {
			s = regexp.MustCompile(`\b`+regexp.QuoteMeta(v)+`\b`).ReplaceAllString(s, k)
		}
	}
	return dashes.ReplaceAllString(spaces.ReplaceAllString(s, " "), "--")
}

// startOVN runs an ovsdb-server with OVN's northbound schema until the
// test ends.
func startOVN(t *testing.T) string {
	dir := testenv.RunDir(t)
	db := filepath.Join(dir, "ovnnb.db")
	testenv.Run(t, "ovsdb-tool", "create", db, OVNSchema)
	sock := filepath.Join(dir, "ovnnb.sock")
	cmd := exec.Command("ovsdb-server", db, "--remote=punix:"+sock, "--unixctl="+filepath.Join(dir, "ovnnb.ctl"),
		"--log-file="+filepath.Join(dir, "ovnnb.log"), "-vconsole:off", "--no-chdir")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	testenv.Eventually(t, 10*time.Second, "OVN's ovsdb-server is up", func() error {
		if _, err := os.Stat(sock); err != nil {
			return err
		}
		return nil
	})
	return fmt.Sprintf("unix:%s", sock)
}
