//go:build !linux

package conference

// Elsewhere than Linux (development machines) the clock sleeps on the
// runtime's timers, up to a millisecond late.
type metronome = sleeper

func newMetronome() *metronome { return newSleeper() }
