package rtpload

import (
	"runtime"
	"slices"
	"time"
)

// CPUWait describes how available one CPU was to a thread that wanted it
// all the time: the environment's own jitter, under any relay pinned to
// that CPU.
type CPUWait struct {
	Duration time.Duration
	// Unavailable is the share of the time (0-1) the thread was not
	// running: other processes, interrupts, the hypervisor.
	Unavailable float64
	// P99 and P999 are how long a packet arriving at a random moment would
	// have waited for the CPU, at those quantiles: the delay a relay that
	// costs nothing would add on this CPU.
	P99, P999 time.Duration
	Longest   time.Duration
}

// gapMin is the smallest pause counted: shorter ones are the clock read.
const gapMin = 5 * time.Microsecond

// MeasureCPUWait spins on the calling goroutine's thread for d, reading
// the clock, and records every pause. Pin the process to the CPU to
// measure (taskset) and run nothing else on it meanwhile.
func MeasureCPUWait(d time.Duration) CPUWait {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var gaps []time.Duration
	start := time.Now()
	last := start
	for last.Sub(start) < d {
		now := time.Now()
		if g := now.Sub(last); g > gapMin {
			gaps = append(gaps, g)
		}
		last = now
	}
	return cpuWaitOf(gaps, last.Sub(start))
}

func cpuWaitOf(gaps []time.Duration, total time.Duration) CPUWait {
	w := CPUWait{Duration: total}
	if total <= 0 {
		return w
	}
	var sum time.Duration
	for _, g := range gaps {
		sum += g
		w.Longest = max(w.Longest, g)
	}
	w.Unavailable = float64(sum) / float64(total)
	// A packet arriving inside a gap waits for the rest of it: the share
	// of the time at which the rest is longer than x is sum(g-x) over
	// the gaps longer than x. Find the x where that share is 1-q.
	slices.Sort(gaps)
	waitShare := func(x time.Duration) float64 {
		var s time.Duration
		i, _ := slices.BinarySearch(gaps, x)
		for _, g := range gaps[i:] {
			s += g - x
		}
		return float64(s) / float64(total)
	}
	quantile := func(q float64) time.Duration {
		lo, hi := time.Duration(0), w.Longest
		for hi-lo > time.Microsecond {
			mid := (lo + hi) / 2
			if waitShare(mid) > 1-q {
				lo = mid
			} else {
				hi = mid
			}
		}
		return hi
	}
	w.P99, w.P999 = quantile(0.99), quantile(0.999)
	return w
}
