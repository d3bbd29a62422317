// Package lockout counts failed sign-ins and locks out a username or a
// client address that fails too often: the web UI's and the call widget's
// sign-ins share it.
package lockout

import (
	"strings"
	"sync"
	"time"
)

// Sign-in lockout: MaxFailures failed sign-ins for one username, or from
// one client address, within FailureWindow refuse every further attempt
// for that username or from that address, right or wrong, for LockoutFor.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
	LockoutFor    = 15 * time.Minute
)

// maxLockoutKeys bounds the memory an attacker can make the tracker use.
const maxLockoutKeys = 50000

// Tracker counts recent failed sign-ins per key ("user:NAME", "ip:ADDR").
type Tracker struct {
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	at          []time.Time // failures within the window, oldest first
	lockedUntil time.Time
}

// New returns an empty tracker reading the clock now.
func New(now func() time.Time) *Tracker {
	return &Tracker{now: now, keys: map[string]*failures{}}
}

// UserKey is the key of a username.
func UserKey(username string) string { return "user:" + strings.ToLower(username) }

// IPKey is the key of a client address.
func IPKey(ip string) string { return "ip:" + ip }

// Locked reports whether any of keys is locked out now, and until when.
func (l *Tracker) Locked(keys ...string) (bool, time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if f, ok := l.keys[k]; ok && now.Before(f.lockedUntil) && f.lockedUntil.After(until) {
			until = f.lockedUntil
		}
	}
	return !until.IsZero(), until
}

// Fail records one failed sign-in against each key and reports whether it
// locked any of them.
func (l *Tracker) Fail(keys ...string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) >= maxLockoutKeys {
		l.sweepLocked(now)
	}
	lockedNow := false
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok {
			if len(l.keys) >= maxLockoutKeys {
				continue // full of live entries: the other key still counts
			}
			f = &failures{}
			l.keys[k] = f
		}
		f.at = append(recent(f.at, now), now)
		if len(f.at) >= MaxFailures {
			f.lockedUntil = now.Add(LockoutFor)
			f.at = nil
			lockedNow = true
		}
	}
	return lockedNow
}

// Succeed forgets the failures of a key after a successful sign-in.
func (l *Tracker) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.keys[key]; ok && !l.now().Before(f.lockedUntil) {
		delete(l.keys, key)
	}
}

// recent drops the failures older than the window.
func recent(at []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(at) && now.Sub(at[i]) >= FailureWindow {
		i++
	}
	return at[i:]
}

func (l *Tracker) sweepLocked(now time.Time) {
	for k, f := range l.keys {
		f.at = recent(f.at, now)
		if len(f.at) == 0 && !now.Before(f.lockedUntil) {
			delete(l.keys, k)
		}
	}
}
