package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
)

// Cluster is a three-member Raft cluster of both databases on loopback,
// each member in its own run directory.
type Cluster struct {
	Members []*central.Config
}

// StartCluster creates the cluster and waits until every member has joined.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	Integration(t, "ovs-appctl")
	raft := func() map[string]string {
		return map[string]string{
			"nb": fmt.Sprintf("tcp:127.0.0.1:%d", FreePort(t)),
			"sb": fmt.Sprintf("tcp:127.0.0.1:%d", FreePort(t)),
		}
	}
	first := raft()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := &Cluster{}
	for i := 0; i < 3; i++ {
		c := &central.Config{RunDir: RunDir(t), Log: Logger(t)}
		cl.Members = append(cl.Members, c)
		t.Cleanup(func() {
			if t.Failed() {
				DumpLogs(t, c.RunDir)
			}
			c.Stop()
		})
		var err error
		if i == 0 {
			err = c.ClusterCreate(ctx, first)
		} else {
			err = c.ClusterJoin(ctx, raft(), map[string][]string{"nb": {first["nb"]}, "sb": {first["sb"]}})
		}
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	for i, c := range cl.Members {
		Eventually(t, 30*time.Second, fmt.Sprintf("member %d joined", i), func() error {
			for _, d := range central.Databases {
				out, err := exec.Command("ovs-appctl", "-t", c.CtlSocket(d), "cluster/status", d.Name).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Status: cluster member") {
					return fmt.Errorf("%s: %s", d.Short, out)
				}
			}
			return nil
		})
	}
	return cl
}

// Remotes lists every member's unix socket for database d ("nb" or "sb").
func (cl *Cluster) Remotes(short string) []string {
	var out []string
	for _, c := range cl.Members {
		for _, d := range central.Databases {
			if d.Short == short {
				out = append(out, c.Remote(d))
			}
		}
	}
	return out
}

// Leader returns the index of the member leading database d, or -1.
func (cl *Cluster) Leader(short string) int {
	for i, c := range cl.Members {
		for _, d := range central.Databases {
			if d.Short != short {
				continue
			}
			out, _ := exec.Command("ovs-appctl", "-t", c.CtlSocket(d), "cluster/status", d.Name).CombinedOutput()
			if strings.Contains(string(out), "Role: leader") {
				return i
			}
		}
	}
	return -1
}
