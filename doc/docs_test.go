package doc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The documentation's pages: README.md, DEVELOPERS.md and everything
// under docs/, by path relative to the repository.
func pages(t *testing.T) []string {
	t.Helper()
	list := []string{"README.md", "DEVELOPERS.md"}
	err := filepath.WalkDir("../docs", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			list = append(list, strings.TrimPrefix(path, "../"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

var (
	mdLinkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceRe  = regexp.MustCompile("(?s)```[^\n]*\n.*?```")
)

// anchors are the heading anchors of a Markdown page, as GitHub makes
// them.
func anchors(src []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(fenceRe.ReplaceAll(src, nil)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// Every link of the documentation points into the repository, at a
// file that exists (and, for a Markdown page, at a heading it has).
func TestDocLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages(t) {
		src, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLinkRe.FindAllSubmatch(fenceRe.ReplaceAll(src, nil), -1) {
			link := string(m[1])
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				t.Errorf("%s: %s points outside the repository", page, link)
				continue
			}
			file, anchor, _ := strings.Cut(link, "#")
			target := filepath.Join(root, page)
			if file != "" {
				target = filepath.Join(filepath.Dir(target), file)
			}
			if rel, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: %s points outside the repository", page, link)
				continue
			}
			dst, err := os.ReadFile(target)
			if err != nil {
				if st, serr := os.Stat(target); serr != nil || !st.IsDir() {
					t.Errorf("%s: %s does not exist", page, link)
				}
				continue
			}
			if anchor != "" && strings.HasSuffix(target, ".md") && !anchors(dst)[anchor] {
				t.Errorf("%s: %s: no heading makes the anchor #%s", page, link, anchor)
			}
		}
	}
}

// A command block of docs/ and the marker before it.
type cmdBlock struct {
	page, marker, body string
	line               int
}

var markerRe = regexp.MustCompile(`^<!-- (run|illustrative|tested by (Test\w+)(, Test\w+)*) -->$`)

// commandBlocks returns the sh blocks of a page with the marker on the
// line before each (empty when there is none).
func commandBlocks(page string, src []byte) []cmdBlock {
	var out []cmdBlock
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		b := cmdBlock{page: page, line: i + 1}
		if i > 0 {
			b.marker = lines[i-1]
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.body = strings.Join(body, "\n")
		out = append(out, b)
	}
	return out
}

// Every command shown in docs/ is in an sh block marked as run by
// TestDocCommandsRun, as tried by named tests (which exist), or as
// illustrative.
func TestDocCommandsAreTriedOrMarked(t *testing.T) {
	var tests bytes.Buffer
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if err == nil && strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			tests.Write(b)
			return err
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages(t) {
		if !strings.HasPrefix(page, "docs/") {
			continue
		}
		src, err := os.ReadFile(filepath.Join("..", page))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte("```bash")) || bytes.Contains(src, []byte("```console")) || bytes.Contains(src, []byte("```shell")) {
			t.Errorf("%s: commands go in sh blocks, so that they are checked", page)
		}
		for _, b := range commandBlocks(page, src) {
			m := markerRe.FindStringSubmatch(b.marker)
			if m == nil {
				t.Errorf("%s:%d: an sh block needs <!-- run -->, <!-- tested by TestName --> or <!-- illustrative --> on the line before", page, b.line)
				continue
			}
			for _, name := range regexp.MustCompile(`Test\w+`).FindAllString(m[1], -1) {
				if !bytes.Contains(tests.Bytes(), []byte("func "+name+"(")) {
					t.Errorf("%s:%d: no test is named %s", page, b.line, name)
				}
			}
		}
	}
}

// The blocks of docs/ marked "run" are run, in order, one shell per
// page, against real databases with courier-northd and courier-southd
// (a fresh set per page): COURIER_RUNDIR names their run directory, the
// working directory is a scratch one holding a link to examples/, and
// the binaries are on PATH.
func TestDocCommandsRun(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	for _, page := range pages(t) {
		src, err := os.ReadFile(filepath.Join("..", page))
		if err != nil {
			t.Fatal(err)
		}
		var script []string
		for _, b := range commandBlocks(page, src) {
			if b.marker == "<!-- run -->" {
				script = append(script, fmt.Sprintf("echo '# %s:%d'", page, b.line), b.body)
			}
		}
		if len(script) == 0 {
			continue
		}
		t.Run(page, func(t *testing.T) {
			dbs := testenv.StartDBs(t, central.Daemons("", "")...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-x", "-c", strings.Join(script, "\n"))
			cmd.Dir = t.TempDir()
			if err := os.Symlink(filepath.Join(testenv.RepoRoot(t), "examples"), filepath.Join(cmd.Dir, "examples")); err != nil {
				t.Fatal(err)
			}
			cmd.Env = append(os.Environ(), "COURIER_RUNDIR="+dbs.RunDir,
				"PATH="+testenv.BinDir(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s's commands: %v\n%s", page, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// goSources is every non-test Go file of the repository, concatenated.
func goSources(t *testing.T) []byte {
	t.Helper()
	var src bytes.Buffer
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if err == nil && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			src.Write(b)
			return err
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return src.Bytes()
}

// Every metric and log message the documentation names is one the code
// emits: a metric as a string literal (its name), a log line by its
// message (msg="..." in the text format).
func TestDocMetricsAndLogLinesExist(t *testing.T) {
	code := goSources(t)
	metric := regexp.MustCompile(`courier_[a-z_]+[a-z]`)
	msg := regexp.MustCompile(`msg="([^"]+)"`)
	files := append(pages(t), "schema/nb.md", "schema/sb.md")
	for _, page := range files {
		src, err := os.ReadFile(filepath.Join("..", page))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metric.FindAllString(string(src), -1) {
			if !bytes.Contains(code, []byte(`"`+m+`"`)) {
				t.Errorf("%s names the metric %s, which no code exports", page, m)
			}
		}
		for _, m := range msg.FindAllStringSubmatch(string(src), -1) {
			if !bytes.Contains(code, []byte(`"`+m[1]+`"`)) {
				t.Errorf("%s quotes the log line %q, which no code logs", page, m[1])
			}
		}
	}
}

// The Go blocks of docs/ compile, each as the body of a function that
// returns an error, with the imports an orchestrator would have. They
// are compiled through an overlay, so nothing is written into the tree.
func TestDocGoCompiles(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	goBlock := regexp.MustCompile("(?s)\n```go\n(.*?)```")
	overlay := map[string]string{}
	tmp := t.TempDir()
	for _, page := range pages(t) {
		src, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range goBlock.FindAllSubmatch(src, -1) {
			file := fmt.Sprintf(`package snippet

import (
	"context"
	"errors"
	"fmt"

	"github.com/courier-sdn/courier/nbclient"
	"github.com/courier-sdn/courier/schema/nbdb"
)

var _, _, _ = errors.As, fmt.Println, nbdb.VPC{}

// From %s.
func example%d(ctx context.Context) error {
%s
	return nil
}
`, page, i, m[1])
			name := filepath.Join(tmp, fmt.Sprintf("%s.%d.go", strings.NewReplacer("/", "_", ".", "_").Replace(page), i))
			if err := os.WriteFile(name, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			overlay[filepath.Join(root, "doc", "snippet", filepath.Base(name))] = name
		}
	}
	if len(overlay) == 0 {
		t.Fatal("no Go block found in the documentation")
	}
	b, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ov, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", ov, "./doc/snippet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("a Go block of the documentation does not compile: %v\n%s", err, out)
	}
}
