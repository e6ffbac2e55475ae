package ops

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait between attempts to reach a database: First,
// doubling up to Max, each wait drawn at random from its upper half so
// that clients that lost the same server do not all come back in the
// same millisecond. Reset starts over from First. The daemons and the
// tools choose their own First and Max (internal/daemon, tools/nbctl).
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// Next returns the wait before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.next < b.First {
		b.next = b.First
	}
	d := b.next
	b.next = min(2*b.next, max(b.Max, b.First))
	return d/2 + rand.N(d/2+1)
}

// Reset starts the waits from First again.
func (b *Backoff) Reset() { b.next = 0 }
