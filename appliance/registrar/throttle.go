package registrar

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxThrottledSources bounds the number of sources a Throttle tracks.
const DefaultMaxThrottledSources = 65_536

// Throttle counts authentication failures per source and refuses a source
// that failed more than maxFailures times within one window, for one window
// from its last counted failure. Failures are counted in a fixed window that
// opens at a source's first failure. A source is an IPv4 address, or the /64
// of an IPv6 address (one host usually owns a whole /64); IPv4-mapped IPv6
// addresses count as IPv4.
//
// Memory is bounded: sources whose failures are all older than one window are
// forgotten, and when DefaultMaxThrottledSources are tracked the one that
// failed longest ago is dropped. Safe for concurrent use.
type Throttle struct {
	max    int
	window time.Duration
	now    func() time.Time
	limit  int

	// onBlock, when set, hears of each block as it begins (SetOnBlock).
	onBlock func(source netip.Addr)

	mu      sync.Mutex
	sources map[netip.Addr]*throttleEntry
	// newest and oldest are the ends of a list of entries ordered by their
	// last failure: Fail moves an entry to the newest end.
	newest, oldest *throttleEntry
}

type throttleEntry struct {
	key          netip.Addr
	failures     int       // failures counted in the window opened at since
	since        time.Time // start of the counting window
	lastFail     time.Time
	blockedUntil time.Time
	newer, older *throttleEntry
}

// NewThrottle returns a Throttle that refuses a source once it has failed
// more than maxFailures times within window, until window has passed. now is
// the clock; nil means time.Now. It panics if maxFailures is negative or
// window is not positive: both are programming errors.
func NewThrottle(maxFailures int, window time.Duration, now func() time.Time) *Throttle {
	return newThrottle(maxFailures, window, now, DefaultMaxThrottledSources)
}

func newThrottle(maxFailures int, window time.Duration, now func() time.Time, limit int) *Throttle {
	if maxFailures < 0 {
		panic(fmt.Sprintf("registrar: throttle max failures %d, want >= 0", maxFailures))
	}
	if window <= 0 {
		panic(fmt.Sprintf("registrar: throttle window %v, want > 0", window))
	}
	if now == nil {
		now = time.Now
	}
	if limit < 1 {
		limit = 1
	}
	return &Throttle{
		max:     maxFailures,
		window:  window,
		now:     now,
		limit:   limit,
		sources: make(map[netip.Addr]*throttleEntry),
	}
}

// throttleKey maps an address to the source it counts against.
func throttleKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// Allowed reports whether requests from ip may be authenticated: false while
// its source is blocked. Check it before verifying credentials.
func (t *Throttle) Allowed(ip netip.Addr) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.sources[throttleKey(ip)]
	return !ok || !now.Before(e.blockedUntil)
}

// Fail counts an authentication failure from ip. The failure that takes the
// source past maxFailures within the window blocks it for one window.
func (t *Throttle) Fail(ip netip.Addr) {
	now := t.now()
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forget(now)
	e, ok := t.sources[key]
	if !ok {
		if len(t.sources) >= t.limit {
			t.remove(t.oldest)
		}
		e = &throttleEntry{key: key, since: now}
		t.sources[key] = e
	} else {
		t.unlink(e)
	}
	t.pushNewest(e)
	e.lastFail = now
	if now.Before(e.blockedUntil) {
		return // already blocked; the block does not grow
	}
	if now.Sub(e.since) >= t.window {
		e.since, e.failures = now, 0
	}
	e.failures++
	if e.failures > t.max {
		e.blockedUntil = now.Add(t.window)
		if t.onBlock != nil {
			t.onBlock(key)
		}
	}
}

// SetOnBlock makes f hear of each block as it begins, with the source
// blocked (an IPv4 address, an IPv6 /64's first address). The node bans
// the source at the transport then (appliance/guard), so a password
// guesser is locked out for sip.flood_ban, not one window. f runs under
// the Throttle's lock: it must not call the Throttle. Call SetOnBlock
// before the Throttle is used.
func (t *Throttle) SetOnBlock(f func(source netip.Addr)) { t.onBlock = f }

// Succeed forgets the failures counted for ip after a successful
// authentication. It does not lift a block in force.
func (t *Throttle) Succeed(ip netip.Addr) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.sources[throttleKey(ip)]; ok && !now.Before(e.blockedUntil) {
		t.remove(e)
	}
}

// forget drops sources whose last failure is a window old: their count has
// lapsed and any block has ended.
func (t *Throttle) forget(now time.Time) {
	for t.oldest != nil && now.Sub(t.oldest.lastFail) >= t.window {
		t.remove(t.oldest)
	}
}

func (t *Throttle) remove(e *throttleEntry) {
	t.unlink(e)
	delete(t.sources, e.key)
}

func (t *Throttle) unlink(e *throttleEntry) {
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		t.newest = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		t.oldest = e.newer
	}
	e.newer, e.older = nil, nil
}

func (t *Throttle) pushNewest(e *throttleEntry) {
	e.older = t.newest
	if t.newest != nil {
		t.newest.newer = e
	} else {
		t.oldest = e
	}
	t.newest = e
}

// len returns the number of sources tracked; tests use it.
func (t *Throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources)
}
