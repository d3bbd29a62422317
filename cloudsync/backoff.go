package cloudsync

import (
	"math/rand/v2"
	"time"
)

// Backoff paces retries (docs/sync-protocol.md, "Failures"): 1 s, doubling
// to 60 s, each ±20 % at random; Reset after a success starts again at
// 1 s. It is not safe for concurrent use: each loop has its own.
type Backoff struct {
	Min    time.Duration // first delay (1 s)
	Max    time.Duration // the delay stops doubling here (60 s)
	Jitter float64       // ± this fraction of the delay (0.2)
	// Rand returns a number in [0, 1); math/rand/v2's by default. Tests
	// inject their own.
	Rand func() float64

	failures int
}

// NewBackoff is the protocol's backoff with random source rnd (nil: the
// default source).
func NewBackoff(rnd func() float64) *Backoff {
	return &Backoff{Min: time.Second, Max: time.Minute, Jitter: 0.2, Rand: rnd}
}

// Next is the delay before the next retry; each call doubles the base.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.failures++
	return b.jitter(d)
}

// Slowest is the delay at the slowest pace, for failures that retrying
// soon will not fix (a 4xx: a bug on one side, or the operator's call).
func (b *Backoff) Slowest() time.Duration {
	b.failures++
	return b.jitter(b.Max)
}

// Reset starts again at Min after a success.
func (b *Backoff) Reset() { b.failures = 0 }

func (b *Backoff) jitter(d time.Duration) time.Duration {
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	f := 1 + b.Jitter*(2*rnd()-1)
	return time.Duration(float64(d) * f)
}
