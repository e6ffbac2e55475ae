package central

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllocatorEnv(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "x86_64-linux-gnu", "libjemalloc.so.2")
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	present := []string{filepath.Join(dir, "missing", "libjemalloc.so.2"), filepath.Join(dir, "*-linux-gnu", "libjemalloc.so.2")}
	absent := []string{filepath.Join(dir, "missing", "libjemalloc.so.2")}
	t.Setenv("LD_PRELOAD", "")

	for _, kind := range []string{"", AllocatorAuto, AllocatorJemalloc} {
		used, env, err := allocatorEnv(kind, present)
		if err != nil || used != AllocatorJemalloc || len(env) != 1 || env[0] != "LD_PRELOAD="+lib {
			t.Errorf("%q with jemalloc installed: used %q env %v err %v", kind, used, env, err)
		}
	}
	if used, env, err := allocatorEnv(AllocatorAuto, absent); err != nil || used != AllocatorSystem || env != nil {
		t.Errorf("auto without jemalloc: used %q env %v err %v", used, env, err)
	}
	if _, _, err := allocatorEnv(AllocatorJemalloc, absent); err == nil || !strings.Contains(err.Error(), "libjemalloc2") {
		t.Errorf("required jemalloc missing: err %v, want one naming the package", err)
	}
	if used, env, err := allocatorEnv(AllocatorSystem, present); err != nil || used != AllocatorSystem || env != nil {
		t.Errorf("system: used %q env %v err %v", used, env, err)
	}
	if _, _, err := allocatorEnv("tcmalloc", present); err == nil {
		t.Error("an unknown allocator was accepted")
	}
	// A preload the operator already set is kept, after jemalloc.
	t.Setenv("LD_PRELOAD", "/opt/trace.so")
	if _, env, _ := allocatorEnv(AllocatorAuto, present); len(env) != 1 || env[0] != "LD_PRELOAD="+lib+":/opt/trace.so" {
		t.Errorf("existing LD_PRELOAD lost: %v", env)
	}
}
