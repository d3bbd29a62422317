package sbc

import (
	"log/slog"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// seqRand answers IntN from a script (each value mod n), repeating the last
// value when the script runs out; it records every n it was asked for.
type seqRand struct {
	mu   sync.Mutex
	vals []int
	asks []int
}

func script(vals ...int) *seqRand { return &seqRand{vals: vals} }

func (r *seqRand) IntN(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asks = append(r.asks, n)
	v := 0
	if len(r.vals) > 0 {
		v, r.vals = r.vals[0], r.vals[1:]
		if len(r.vals) == 0 {
			r.vals = []int{v}
		}
	}
	return v % n
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
