package sandbox

import (
	"os/exec"
	"testing"
)

// A command for a guest's shell keeps its arguments whole: sh -c of the
// quoted line hands back the arguments it was given.
func TestShellQuote(t *testing.T) {
	for _, args := range [][]string{
		{"ping", "-c", "3", "10.0.1.1"},
		{"sh", "-c", "hostname; exit 4"},
		{"echo", "it's", "a b", "", "$HOME", "`x`", "a\\b"},
	} {
		got, err := exec.Command("sh", "-c", "f() { for a in \"$@\"; do printf '[%s]' \"$a\"; done; }; f "+shellQuote(args)).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, a := range args {
			want += "[" + a + "]"
		}
		if string(got) != want {
			t.Errorf("%q: the shell saw %s", args, got)
		}
	}
}

func TestTapNameFits(t *testing.T) {
	for _, p := range []string{"g1", "a-rather-long-port-name", "a-rather-long-port-other"} {
		if n := tapName(p); len(n) > 15 {
			t.Errorf("tap name %q of %s is longer than 15 bytes", n, p)
		}
	}
	if tapName("a-rather-long-port-name") == tapName("a-rather-long-port-other") {
		t.Error("two long port names share a tap name")
	}
}
