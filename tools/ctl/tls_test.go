package ctl_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/testenv"
)

// tool runs one of the built binaries and returns its output and error.
func tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(filepath.Join(testenv.BinDir(t), name), args...).CombinedOutput()
	return string(out), err
}

func logHas(t *testing.T, file, want string) error {
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), want) {
		return fmt.Errorf("%s does not say %q yet", filepath.Base(file), want)
	}
	return nil
}

// courier-ctl start --tls: the databases serve pssl: listeners from
// their own Connection tables, northd and southd reach them over TLS
// with their own certificates, and the tools do with an operator's.
func TestStartWithTLS(t *testing.T) {
	testenv.Integration(t)
	dir := testenv.RunDir(t)
	run := courierCtl(t, dir)
	pkiDir := filepath.Join(dir, "pki")
	port := func() string { return fmt.Sprint(testenv.FreePort(t)) }
	nbP, sbP, centralP := port(), port(), port()
	if out, err := run("start", "--tls", "--pki-dir", pkiDir, "--nb-listen", "pssl:"+nbP+":127.0.0.1",
		"--sb-listen", "pssl:"+sbP+":127.0.0.1", "--sb-central-listen", "pssl:"+centralP+":127.0.0.1",
		"--northd-metrics", "", "--southd-metrics", ""); err != nil {
		t.Fatalf("start --tls: %v\n%s", err, out)
	}
	for _, d := range []string{"courier-northd", "courier-southd"} {
		testenv.Eventually(t, 10*time.Second, d+" connected over TLS", func() error {
			return logHas(t, filepath.Join(dir, d+".log"), "sb=ssl:127.0.0.1:"+centralP)
		})
	}
	if out, err := run("pki", "sign", "--dir", pkiDir, "operator"); err != nil {
		t.Fatalf("pki sign: %v\n%s", err, out)
	}
	op := []string{"-p", pki.PrivateKey(pkiDir, "operator"), "-c", pki.Certificate(pkiDir, "operator"), "-C", pki.CACert(pkiDir)}
	nbctl := func(args ...string) (string, error) {
		return tool(t, "courier-nbctl", append(append([]string{"--db", "ssl:127.0.0.1:" + nbP, "--timeout", "20s"}, op...), args...)...)
	}
	// northd compiles over TLS: --wait=sb returns.
	if out, err := nbctl("--wait=sb", "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24"); err != nil {
		t.Fatalf("courier-nbctl over TLS: %v\n%s", err, out)
	}
	out, err := tool(t, "courier-sbctl", append(append([]string{"--db", "ssl:127.0.0.1:" + sbP}, op...), "datapath-list")...)
	if err != nil || !strings.Contains(out, "vxnet:web") {
		t.Fatalf("courier-sbctl over TLS: %v\n%s", err, out)
	}
	// The listeners are the database's own rows, with their roles.
	out, err = tool(t, "courier-sbctl", "--db", "unix:"+filepath.Join(dir, "sb.sock"), "get-connection")
	if err != nil || !strings.Contains(out, "role=courier-chassis pssl:"+sbP) || !strings.Contains(out, "role=courier-central pssl:"+centralP) {
		t.Fatalf("get-connection: %v\n%s", err, out)
	}
	// A listener set by an operator opens at once.
	extra := port()
	if out, err := nbctl("set-connection", "pssl:"+nbP+":127.0.0.1", "pssl:"+extra+":127.0.0.1"); err != nil {
		t.Fatalf("set-connection: %v\n%s", err, out)
	}
	testenv.Eventually(t, 10*time.Second, "the new listener", func() error {
		_, err := tool(t, "courier-nbctl", append(append([]string{"--db", "ssl:127.0.0.1:" + extra, "--timeout", "2s"}, op...), "vpc-list")...)
		return err
	})
}

// Without a certificate, or with one another CA signed, every daemon and
// tool fails, and says why.
func TestTLSRefusesStrangers(t *testing.T) {
	dbs := testenv.StartTLSDBs(t)
	other := testenv.RunDir(t)
	if _, err := pki.Init(other); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"operator", "hv1"} {
		if err := pki.Sign(other, n, pki.SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dbs.Creds(t, "operator")
	ours := pki.For(dbs.PKI, "operator")
	stranger := []string{"-p", pki.PrivateKey(other, "operator"), "-c", pki.Certificate(other, "operator"), "-C", ours.CACert}
	wary := []string{"-p", ours.PrivateKey, "-c", ours.Certificate, "-C", pki.CACert(other)}
	const noCert, refused, untrusted = "needs a client certificate", "does not accept this certificate", "is not trusted by --ca-cert"
	cases := []struct {
		what string
		bin  string
		args []string
		want string
	}{
		{"nbctl without a certificate", "courier-nbctl", []string{"--db", dbs.NBTLS, "vpc-list"}, noCert},
		{"nbctl, another CA's certificate", "courier-nbctl", append([]string{"--db", dbs.NBTLS, "--timeout", "5s"}, append(stranger, "vpc-list")...), refused},
		{"nbctl, a server another CA signed", "courier-nbctl", append([]string{"--db", dbs.NBTLS, "--timeout", "5s"}, append(wary, "vpc-list")...), untrusted},
		{"sbctl without a certificate", "courier-sbctl", []string{"--db", dbs.SBChassis, "show"}, noCert},
		{"sbctl, another CA's certificate", "courier-sbctl", append([]string{"--db", dbs.SBChassis, "--timeout", "5s"}, append(stranger, "show")...), refused},
		{"northd without a certificate", "courier-northd", []string{"--nb", dbs.NBTLS, "--sb", dbs.SBCentral}, noCert},
		{"southd without a certificate", "courier-southd", []string{"--nb", dbs.NBTLS, "--sb", dbs.SBCentral}, noCert},
		{"hostd without a certificate", "courier-hostd", []string{"--chassis", "hv1", "--encap-ip", "192.0.2.1", "--sb", dbs.SBChassis}, noCert},
		{"hostd with another chassis's certificate", "courier-hostd", append([]string{"--chassis", "hv2", "--encap-ip", "192.0.2.1", "--sb", dbs.SBChassis},
			dbs.TLSArgs(t, "hv1")...), `"hv1"'s certificate`},
	}
	for _, c := range cases {
		out, err := tool(t, c.bin, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v, want a failure saying %q:\n%s", c.what, err, c.want, out)
		}
	}
	// The central daemons keep retrying, and their logs say why.
	for _, d := range []string{"courier-northd", "courier-southd"} {
		for _, c := range []struct {
			args []string
			want string
		}{{stranger, refused}, {wary, untrusted}} {
			logFile := filepath.Join(testenv.RunDir(t), d+".log")
			f, _ := os.Create(logFile)
			cmd := exec.Command(filepath.Join(testenv.BinDir(t), d), append([]string{"--nb", dbs.NBTLS, "--sb", dbs.SBCentral}, c.args...)...)
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Stopped also when the wait fails (t.Fatal runs no code after).
			stop := sync.OnceFunc(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
			t.Cleanup(stop)
			testenv.Eventually(t, 10*time.Second, d+" says why it cannot connect", func() error { return logHas(t, logFile, c.want) })
			stop()
		}
	}
}
