package guard

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Verdict is what the Limiter says of one message.
type Verdict int

const (
	Pass    Verdict = iota // within the source's rate, or an allowed source
	Limited                // over the rate: drop this message
	Banned                 // the source is banned: drop everything it sends
)

func (v Verdict) String() string {
	return [...]string{"pass", "limited", "banned"}[v]
}

// banWindow is the window in which a source's refused messages are counted
// toward a ban; it opens at the first refusal.
const banWindow = time.Minute

// DefaultMaxSources bounds the number of sources a Limiter tracks.
const DefaultMaxSources = 65_536

// limiterShards spreads the sources over independent locks.
const limiterShards = 16

// LimiterConfig sets a Limiter's rate, burst and ban.
type LimiterConfig struct {
	// Rate is the sustained messages per second a source may send. Zero or
	// less turns the limiter off: every message passes.
	Rate float64
	// Burst is how many messages a source may send at once above the rate
	// (the bucket's size). Default: 5 s worth of Rate.
	Burst float64
	// BanAfter bans a source once more than this many of its messages were
	// refused for the rate within a minute. Default: 5 s worth of Rate.
	BanAfter int
	// BanFor is how long a ban lasts. Default: 10 minutes.
	BanFor time.Duration
	// MaxSources bounds the sources tracked; when full, the source heard
	// from longest ago is forgotten. Default: DefaultMaxSources.
	MaxSources int
	// Allow lists sources never limited; nil: none.
	Allow *Allowlist
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log gets one warning per ban.
	Log *slog.Logger
}

// Limiter is a token bucket per source with a temporary ban for sources
// that keep going over their rate. A source is an IPv4 address or the /64
// of an IPv6 address (one host usually owns a whole /64); IPv4-mapped IPv6
// addresses count as IPv4. Memory is bounded: a source is forgotten a
// minute after it was last heard from (once its ban is over), and when
// MaxSources are tracked, the one heard from longest ago is dropped. Safe
// for concurrent use.
type Limiter struct {
	c      LimiterConfig
	shards [limiterShards]limiterShard

	passed, limited, banned, bans atomic.Uint64
}

type limiterShard struct {
	mu      sync.Mutex
	max     int
	sources map[netip.Addr]*source
	// newest and oldest are the ends of a list of the shard's sources
	// ordered by when they were last heard from.
	newest, oldest *source
}

type source struct {
	key          netip.Addr
	tokens       float64
	refilled     time.Time // when tokens was last brought up to date
	seen         time.Time // last message
	overSince    time.Time // opening of the window counting refusals
	over         int       // messages refused for the rate in that window
	bannedUntil  time.Time
	newer, older *source
}

// NewLimiter returns a Limiter with c's settings, defaults filled in.
func NewLimiter(c LimiterConfig) *Limiter {
	if c.Burst <= 0 {
		c.Burst = 5 * c.Rate
	}
	c.Burst = max(c.Burst, 1)
	if c.BanAfter <= 0 {
		c.BanAfter = int(max(5*c.Rate, 1))
	}
	if c.BanFor <= 0 {
		c.BanFor = 10 * time.Minute
	}
	if c.MaxSources <= 0 {
		c.MaxSources = DefaultMaxSources
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{c: c}
	per := max(c.MaxSources/limiterShards, 1)
	for i := range l.shards {
		l.shards[i].max = per
		l.shards[i].sources = make(map[netip.Addr]*source)
	}
	return l
}

// SourceKey maps an address to the source it counts against: IPv4 as is,
// IPv6 by its /64.
func SourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

func shardOf(key netip.Addr) int {
	b := key.As16()
	h := uint32(2166136261)
	for _, c := range b[:8] { // the /64 (an IPv4 address sits in b[12:])
		h = (h ^ uint32(c)) * 16777619
	}
	for _, c := range b[12:] {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % limiterShards)
}

// Enabled reports whether the limiter limits anything.
func (l *Limiter) Enabled() bool { return l.c.Rate > 0 }

// Allow counts one message from ip and says what to do with it.
func (l *Limiter) Allow(ip netip.Addr) Verdict {
	if !l.Enabled() || l.c.Allow.Contains(ip) {
		l.passed.Add(1)
		return Pass
	}
	now := l.c.Now()
	key := SourceKey(ip)
	s := &l.shards[shardOf(key)]
	s.mu.Lock()
	v, newBan := s.allow(key, now, &l.c)
	s.mu.Unlock()
	switch v {
	case Pass:
		l.passed.Add(1)
	case Limited:
		l.limited.Add(1)
	case Banned:
		l.banned.Add(1)
	}
	if newBan {
		l.bans.Add(1)
		l.c.Log.Warn("sip source banned: it kept sending over its rate; everything it sends is dropped until the ban ends",
			"source", key.String(), "rate", l.c.Rate, "refused", l.c.BanAfter+1, "ban", l.c.BanFor.String())
	}
	return v
}

// Banned reports whether ip's source is banned now, without counting a
// message.
func (l *Limiter) Banned(ip netip.Addr) bool {
	if !l.Enabled() || l.c.Allow.Contains(ip) {
		return false
	}
	now := l.c.Now()
	key := SourceKey(ip)
	s := &l.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.sources[key]
	return ok && now.Before(e.bannedUntil)
}

func (s *limiterShard) allow(key netip.Addr, now time.Time, c *LimiterConfig) (v Verdict, newBan bool) {
	s.forget(now)
	e, ok := s.sources[key]
	if !ok {
		if len(s.sources) >= s.max {
			s.remove(s.oldest)
		}
		e = &source{key: key, tokens: c.Burst, refilled: now}
		s.sources[key] = e
	} else {
		s.unlink(e)
	}
	s.pushNewest(e)
	e.seen = now
	if now.Before(e.bannedUntil) {
		return Banned, false
	}
	if d := now.Sub(e.refilled); d > 0 {
		e.tokens = min(c.Burst, e.tokens+d.Seconds()*c.Rate)
	}
	e.refilled = now
	if e.tokens >= 1 {
		e.tokens--
		return Pass, false
	}
	if now.Sub(e.overSince) >= banWindow {
		e.overSince, e.over = now, 0
	}
	e.over++
	if e.over > c.BanAfter {
		e.bannedUntil = now.Add(c.BanFor)
		e.over = 0
		return Banned, true
	}
	return Limited, false
}

// forget drops sources not heard from for a ban window whose ban, if any,
// is over: their bucket is full again anyway.
func (s *limiterShard) forget(now time.Time) {
	for s.oldest != nil && now.Sub(s.oldest.seen) >= banWindow && !now.Before(s.oldest.bannedUntil) {
		s.remove(s.oldest)
	}
}

func (s *limiterShard) remove(e *source) {
	s.unlink(e)
	delete(s.sources, e.key)
}

func (s *limiterShard) unlink(e *source) {
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		s.newest = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		s.oldest = e.newer
	}
	e.newer, e.older = nil, nil
}

func (s *limiterShard) pushNewest(e *source) {
	e.older = s.newest
	if s.newest != nil {
		s.newest.newer = e
	} else {
		s.oldest = e
	}
	s.newest = e
}

// LimiterStats are a Limiter's counts since it was made.
type LimiterStats struct {
	Passed, Limited, Banned uint64 // messages, by verdict
	Bans                    uint64 // bans imposed
	BannedNow               int    // sources banned at this moment
	Tracked                 int    // sources tracked
}

// Stats returns the counts. BannedNow and Tracked walk every source.
func (l *Limiter) Stats() LimiterStats {
	st := LimiterStats{Passed: l.passed.Load(), Limited: l.limited.Load(), Banned: l.banned.Load(), Bans: l.bans.Load()}
	now := l.c.Now()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Tracked += len(s.sources)
		for _, e := range s.sources {
			if now.Before(e.bannedUntil) {
				st.BannedNow++
			}
		}
		s.mu.Unlock()
	}
	return st
}

// Ban bans ip's source for BanFor from now, whatever its rate: the node
// calls it when the registrar's throttle blocks a source for failed
// authentications, so the guesser is dropped silently for the whole ban.
// A limiter that is off, an allowed source, or one banned already is
// left as it is. It reports whether a ban began.
func (l *Limiter) Ban(ip netip.Addr, reason string) bool {
	if !l.Enabled() || l.c.Allow.Contains(ip) {
		return false
	}
	now := l.c.Now()
	key := SourceKey(ip)
	s := &l.shards[shardOf(key)]
	s.mu.Lock()
	s.forget(now)
	e, ok := s.sources[key]
	if !ok {
		if len(s.sources) >= s.max {
			s.remove(s.oldest)
		}
		e = &source{key: key, tokens: l.c.Burst, refilled: now}
		s.sources[key] = e
	} else {
		s.unlink(e)
	}
	s.pushNewest(e)
	e.seen = now
	began := !now.Before(e.bannedUntil)
	if began {
		e.bannedUntil = now.Add(l.c.BanFor)
	}
	s.mu.Unlock()
	if began {
		l.bans.Add(1)
		l.c.Log.Warn("sip source banned: "+reason+"; everything it sends is dropped until the ban ends",
			"source", key.String(), "ban", l.c.BanFor.String())
	}
	return began
}
