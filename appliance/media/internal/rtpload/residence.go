package rtpload

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Dist summarises a delay distribution.
type Dist struct {
	N             uint64
	P50, P99, Max time.Duration
}

// ResidenceMeter is an Anchor whose relay measures how long each packet
// stayed in it, from the kernel's arrival stamp to its send
// (media.Config.Residence): the delay the relay adds, without the
// generator's or the receiving side's part. Run uses it when the anchor
// has it.
type ResidenceMeter interface {
	// ResetResidence starts a new window: what was measured is forgotten.
	ResetResidence(ctx context.Context) error
	// Residence describes the window so far.
	Residence(ctx context.Context) (Dist, error)
}

// Residence collects what a relay reports to media.Config.Residence. It is
// safe for concurrent use.
type Residence struct {
	cur atomic.Pointer[hist]
}

// NewResidence returns an empty collector.
func NewResidence() *Residence {
	r := &Residence{}
	r.cur.Store(newHist())
	return r
}

// Record adds one packet's residence (media.Config.Residence).
func (r *Residence) Record(d time.Duration) { r.cur.Load().add(d) }

// Reset starts a new window.
func (r *Residence) Reset() { r.cur.Store(newHist()) }

// Dist describes the window.
func (r *Residence) Dist() Dist { return r.cur.Load().dist() }

func (h *hist) dist() Dist {
	d := Dist{N: h.n.Load()}
	if d.N > 0 {
		// A quantile is its bucket's upper edge: never above the max.
		d.Max = time.Duration(h.max.Load())
		d.P50, d.P99 = min(h.quantile(0.50), d.Max), min(h.quantile(0.99), d.Max)
	}
	return d
}

var errNoResidence = errors.New("the relay does not measure residence (give the relay a Residence)")
