package embed

import (
	"strings"
	"sync"
	"time"
)

// Sign-in lockout, as the admin UI's (ui/lockout.go): MaxFailures failed
// sign-ins for one username, or from one client address, within
// FailureWindow refuse every further attempt for that username or from
// that address, right or wrong, for LockoutFor. The counts are this
// node's own.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
	LockoutFor    = 15 * time.Minute
)

// maxLockoutKeys bounds the memory an attacker can make the tracker use.
const maxLockoutKeys = 50000

// lockout counts recent failed sign-ins per key ("user:NAME", "ip:ADDR").
type lockout struct {
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	at          []time.Time // failures within the window, oldest first
	lockedUntil time.Time
}

func newLockout(now func() time.Time) *lockout {
	return &lockout{now: now, keys: map[string]*failures{}}
}

func userKey(username string) string { return "user:" + strings.ToLower(username) }
func ipKey(ip string) string         { return "ip:" + ip }

// locked reports whether any of keys is locked out now, and until when.
func (l *lockout) locked(keys ...string) (bool, time.Time) {
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

// fail records one failed sign-in against each key and reports whether it
// locked any of them.
func (l *lockout) fail(keys ...string) bool {
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

// succeed forgets the failures of a key after a successful sign-in.
func (l *lockout) succeed(key string) {
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

func (l *lockout) sweepLocked(now time.Time) {
	for k, f := range l.keys {
		f.at = recent(f.at, now)
		if len(f.at) == 0 && !now.Before(f.lockedUntil) {
			delete(l.keys, k)
		}
	}
}
