package ops

import (
	"testing"
	"time"

	"github.com/courier-sdn/courier/schema/nbdb"
)

// A monitor delivering rows is a server that talks: southd's echo went
// unanswered for 15 s while libovsdb applied 256,000 rows ahead of its
// reply, and the session was dropped and reopened, over and over (#20).
func TestRowsDeliveredCountAsHearing(t *testing.T) {
	s := &Session{}
	if s.heardWithin(time.Hour) {
		t.Fatal("a session that has received nothing counts as heard")
	}
	h := hearing{s}
	for name, deliver := range map[string]func(){
		"add":    func() { h.OnAdd("Port", &nbdb.Port{}) },
		"update": func() { h.OnUpdate("Port", &nbdb.Port{}, &nbdb.Port{}) },
		"delete": func() { h.OnDelete("Port", &nbdb.Port{}) },
	} {
		s.heard.Store(time.Now().Add(-2 * time.Hour).UnixNano())
		deliver()
		if !s.heardWithin(time.Hour) {
			t.Errorf("a row's %s does not count as hearing from the server", name)
		}
	}
}
