package rtpload

import (
	"sync/atomic"
	"time"
)

// hist is a concurrent latency histogram: 1 µs buckets below 10 ms, 100 µs
// buckets from 10 ms to 1 s, one overflow bucket. Negative values count as
// zero.
type hist struct {
	fine   [10_000]atomic.Uint64
	coarse [9_900]atomic.Uint64
	over   atomic.Uint64
	n      atomic.Uint64
	min    atomic.Int64 // nanoseconds; math.MaxInt64 until the first value
	max    atomic.Int64
}

func newHist() *hist {
	h := &hist{}
	h.min.Store(int64(^uint64(0) >> 1))
	return h
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := int64(d / time.Microsecond)
	switch {
	case us < int64(len(h.fine)):
		h.fine[us].Add(1)
	case us < 1_000_000:
		h.coarse[(us-10_000)/100].Add(1)
	default:
		h.over.Add(1)
	}
	h.n.Add(1)
	for {
		m := h.min.Load()
		if int64(d) >= m || h.min.CompareAndSwap(m, int64(d)) {
			break
		}
	}
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// quantile returns the smallest bucket bound below which a fraction q of
// the values lie (the upper edge of the bucket holding the q-th value).
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if rank >= n {
		rank = n - 1
	}
	var seen uint64
	for i := range h.fine {
		if seen += h.fine[i].Load(); seen > rank {
			return time.Duration(i+1) * time.Microsecond
		}
	}
	for i := range h.coarse {
		if seen += h.coarse[i].Load(); seen > rank {
			return 10*time.Millisecond + time.Duration(i+1)*100*time.Microsecond
		}
	}
	return time.Duration(h.max.Load())
}
