package doc

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The committed man pages and completions are what the command
// definitions generate now.
func TestGeneratedFilesAreFresh(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing: run go generate ./doc (or make generate) and commit", name)
		}
	}
}

// The man page of a tool whose commands are not urfave/cli's (nbctl's
// "--"-joined commands) still documents every command.
func TestManPagesHaveEveryCommand(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	man := string(files["man/courier-nbctl.8"])
	for _, c := range []string{"vpc-add", "port-add", "list", "find", "wait-until", "may-exist"} {
		if !strings.Contains(man, c) {
			t.Errorf("courier-nbctl.8 lacks %q", c)
		}
	}
	if !strings.Contains(string(files["completion/courier-sbctl.bash"]), "chassis-list") {
		t.Errorf("courier-sbctl's bash completion lacks chassis-list")
	}
}
