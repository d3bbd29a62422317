package cloudsync

import (
	"fmt"
	"time"
)

// Mode is the appliance's operating mode (DESIGN.md, "Modes").
type Mode string

// Modes.
const (
	// ModeNormal: the cloud is reachable; phones are on the cloud.
	ModeNormal Mode = "normal"
	// ModeSurvivability: the cloud has been unreachable past outage_after;
	// phones register here.
	ModeSurvivability Mode = "survivability"
	// ModeRecovering: the cloud has been reachable again for recover_after;
	// the appliance reconciles and uploads its journal.
	ModeRecovering Mode = "recovering"
)

// ParseMode reads a replicated mode; "" (never set) is normal.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeNormal, nil
	case ModeNormal, ModeSurvivability, ModeRecovering:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want normal, survivability or recovering)", s)
}

// ModeMachine decides the mode from reachability probes. It is pure: the
// caller feeds each probe's result with its time, and it says the mode and
// whether it just changed. Transitions:
//
//	normal        unreachable continuously for outage_after  -> survivability
//	survivability reachable continuously for recover_after   -> recovering
//	recovering    RecoveryDone (revisions pulled, journal up) -> normal
//	recovering    unreachable continuously for outage_after  -> survivability
//
// "Continuously" runs from the first probe of a streak; one probe the other
// way ends the streak. A new leader starts from the replicated mode with
// no streak (NewModeMachine). It is not safe for concurrent use.
type ModeMachine struct {
	outageAfter  time.Duration
	recoverAfter time.Duration

	mode             Mode
	unreachableSince time.Time // start of the current unreachable streak; zero if none
	reachableSince   time.Time // start of the current reachable streak; zero if none
}

// NewModeMachine starts in mode start (the replicated one; "" is normal).
func NewModeMachine(start Mode, outageAfter, recoverAfter time.Duration) *ModeMachine {
	if start == "" {
		start = ModeNormal
	}
	return &ModeMachine{mode: start, outageAfter: outageAfter, recoverAfter: recoverAfter}
}

// Mode is the current mode.
func (m *ModeMachine) Mode() Mode { return m.mode }

// Observe feeds one probe's result at its time and returns the mode after
// it and whether it changed.
func (m *ModeMachine) Observe(reachable bool, at time.Time) (Mode, bool) {
	if reachable {
		m.unreachableSince = time.Time{}
		m.reachableSince = streakStart(m.reachableSince, at)
	} else {
		m.reachableSince = time.Time{}
		m.unreachableSince = streakStart(m.unreachableSince, at)
	}
	switch m.mode {
	case ModeNormal, ModeRecovering:
		if !reachable && at.Sub(m.unreachableSince) >= m.outageAfter {
			return m.set(ModeSurvivability)
		}
	case ModeSurvivability:
		if reachable && at.Sub(m.reachableSince) >= m.recoverAfter {
			return m.set(ModeRecovering)
		}
	}
	return m.mode, false
}

// RecoveryDone ends recovering: the missed revisions are pulled and the
// journal uploaded. In any other mode it changes nothing.
func (m *ModeMachine) RecoveryDone() (Mode, bool) {
	if m.mode != ModeRecovering {
		return m.mode, false
	}
	return m.set(ModeNormal)
}

func (m *ModeMachine) set(mode Mode) (Mode, bool) {
	changed := m.mode != mode
	m.mode = mode
	// Each mode counts its own streak from scratch.
	m.unreachableSince, m.reachableSince = time.Time{}, time.Time{}
	return mode, changed
}

// streakStart keeps a streak's start, or starts one at at; a clock that
// went back restarts it.
func streakStart(since, at time.Time) time.Time {
	if since.IsZero() || at.Before(since) {
		return at
	}
	return since
}
