package southd

import (
	"testing"
	"time"
)

// Which SNAT handoffs are stale: only those no end will act on, or far
// too old.
func TestStaleHandoff(t *testing.T) {
	const deadFor, maxAge = 2 * time.Minute, 10 * time.Minute
	live := handoffEnds{portExists: true, toKnown: true, age: time.Second}
	for _, c := range []struct {
		what string
		e    func(e handoffEnds) handoffEnds
		want string
	}{
		{"both ends live, young", func(e handoffEnds) handoffEnds { return e }, ""},
		{"its port deleted", func(e handoffEnds) handoffEnds { e.portExists = false; return e }, handoffNoPort},
		{"its destination deleted", func(e handoffEnds) handoffEnds { e.toKnown = false; return e }, handoffDestGone},
		{"its destination dead, within the bound", func(e handoffEnds) handoffEnds { e.toDead = deadFor - time.Second; return e }, ""},
		{"its destination dead past the bound", func(e handoffEnds) handoffEnds { e.toDead = deadFor; return e }, handoffDestGone},
		{"just below its max age", func(e handoffEnds) handoffEnds { e.age = maxAge - time.Second; return e }, ""},
		{"too old", func(e handoffEnds) handoffEnds { e.age = maxAge; return e }, handoffAged},
	} {
		if got := staleHandoff(c.e(live), deadFor, maxAge); got != c.want {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
}
