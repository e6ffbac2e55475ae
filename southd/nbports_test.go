package southd_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// An orchestrator reads where a port runs, and whether it is up, from
// the northbound: southd copies each binding's state there, and follows
// it down when the chassis dies. (Before, port-list said "pending"
// forever.)
func TestPortStateReachesTheNorthbound(t *testing.T) {
	w := newWorld(t)
	defer startSouthd(t, w)()
	w.nb(t, "sb", "vpc-add", "v", "--", "vxnet-add", "v", "a", "10.0.1.0/24")
	w.nb(t, "sb", "port-add", "a", "p1", "02:00:00:00:00:01", "10.0.1.5", "--chassis", "hv1")
	status := func() string {
		var out bytes.Buffer
		err := nbctl.Run(context.Background(), nbctl.Options{DB: w.dbs.NB, Wait: "none", Format: "json", Timeout: 5 * time.Second},
			[]string{"port-list"}, &out)
		if err != nil {
			return err.Error()
		}
		return out.String()
	}
	testenv.Eventually(t, 10*time.Second, "an unbound port shows up=false", func() error {
		if s := status(); !strings.Contains(s, `"status": "unbound"`) {
			return fmt.Errorf("%s", s)
		}
		return nil
	})
	w.addChassis(t, "hv1", false)
	bind := func(up bool) {
		w.do(t, ovsdb.Operation{Op: "update", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: "p1"}},
			Row: ovsdb.Row{"chassis": "hv1", "up": up}})
	}
	bind(true)
	testenv.Eventually(t, 10*time.Second, "port up on hv1", func() error {
		if s := status(); !strings.Contains(s, `"status": "up on hv1"`) {
			return fmt.Errorf("%s", s)
		}
		return nil
	})
	w.stopBeating("hv1")
	testenv.Eventually(t, 10*time.Second, "port down once hv1 is dead", func() error {
		if s := status(); !strings.Contains(s, `"status": "down on hv1"`) {
			return fmt.Errorf("%s", s)
		}
		return nil
	})
}
