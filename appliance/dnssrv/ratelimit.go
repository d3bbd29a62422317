package dnssrv

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// RateLimit bounds the UDP answers one source gets, so the server cannot
// be used to amplify a flood toward a spoofed address. A source is an
// IPv4 address or an IPv6 /64. TCP is not limited: its handshake proves
// the source.
type RateLimit struct {
	// QPS is the sustained answers per second per source (default 50);
	// negative turns the limit off.
	QPS float64
	// Burst is how many answers a quiet source may get at once (default 100).
	Burst int
	// Slip: of the queries over the limit, every Slip-th gets an empty
	// answer with TC=1 (no larger than the query: nothing to amplify), so
	// a real client sharing the address with a flood retries over TCP;
	// the others are dropped. Default 2; negative: drop them all.
	Slip int
	// MaxSources bounds the sources tracked (default 10,000). When full,
	// sources whose bucket has refilled are forgotten, then the longest
	// quiet ones.
	MaxSources int
}

func (r RateLimit) withDefaults() RateLimit {
	if r.QPS == 0 {
		r.QPS = 50
	}
	if r.Burst <= 0 {
		r.Burst = 100
	}
	if r.Slip == 0 {
		r.Slip = 2
	}
	if r.MaxSources <= 0 {
		r.MaxSources = 10_000
	}
	return r
}

// verdict is what the limiter says of one query.
type verdict int

const (
	allow verdict = iota
	slip          // over the limit: answer with TC=1 and nothing else
	drop          // over the limit: no answer
)

// limiter is a token bucket per source.
type limiter struct {
	conf RateLimit

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time // of the last refill
	over   int       // queries over the limit, for slip
}

func newLimiter(c RateLimit) *limiter {
	return &limiter{conf: c, buckets: map[netip.Addr]*bucket{}}
}

// sourceKey is the address itself for IPv4, its /64 for IPv6.
func sourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// check takes a token for ip at now.
func (l *limiter) check(ip netip.Addr, now time.Time) verdict {
	if l == nil || l.conf.QPS < 0 {
		return allow
	}
	key := sourceKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.conf.MaxSources {
			l.evict(now)
		}
		b = &bucket{tokens: float64(l.conf.Burst), last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(l.conf.Burst), b.tokens+el.Seconds()*l.conf.QPS)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return allow
	}
	b.over++
	if l.conf.Slip > 0 && b.over%l.conf.Slip == 0 {
		return slip
	}
	return drop
}

// evict makes room: first every source whose bucket would be full again
// (forgetting it loses nothing), then, if that was not a tenth of the map,
// the longest quiet sources down to nine tenths. Called with mu held.
func (l *limiter) evict(now time.Time) {
	refill := time.Duration(float64(l.conf.Burst) / l.conf.QPS * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= refill {
			delete(l.buckets, k)
		}
	}
	target := l.conf.MaxSources * 9 / 10
	if len(l.buckets) <= target {
		return
	}
	type aged struct {
		key  netip.Addr
		last time.Time
	}
	all := make([]aged, 0, len(l.buckets))
	for k, b := range l.buckets {
		all = append(all, aged{k, b.last})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.last.Compare(b.last) })
	for _, a := range all[:len(all)-target] {
		delete(l.buckets, a.key)
	}
}

// size is how many sources are tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
