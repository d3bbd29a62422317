package guard

import (
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func addr(s string) netip.Addr           { return netip.MustParseAddr(s) }
func verdicts(l *Limiter, ip netip.Addr, n int) (got [3]int) {
	for range n {
		got[l.Allow(ip)]++
	}
	return got
}

func TestLimiterBurstThenRateThenBan(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{Rate: 10, Burst: 20, BanAfter: 30, BanFor: time.Minute, Now: clk.now})
	src := addr("192.0.2.1")
	if got := verdicts(l, src, 20); got != [3]int{20, 0, 0} {
		t.Fatalf("the burst: %v, want all 20 passed", got)
	}
	if got := l.Allow(src); got != Limited {
		t.Fatalf("21st at once: %v, want limited", got)
	}
	clk.add(time.Second) // 10 tokens back
	if got := verdicts(l, src, 10); got != [3]int{10, 0, 0} {
		t.Fatalf("after 1 s: %v, want 10 passed", got)
	}
	// 1 refused above and 29 more make 30 (BanAfter): the 31st bans.
	if got := verdicts(l, src, 29); got != [3]int{0, 29, 0} {
		t.Fatalf("over the rate: %v, want 29 limited", got)
	}
	if got := l.Allow(src); got != Banned {
		t.Fatalf("31st refusal: %v, want banned", got)
	}
	if !l.Banned(src) {
		t.Fatal("Banned = false during the ban")
	}
	clk.add(30 * time.Second) // tokens would be back, the ban is not over
	if got := l.Allow(src); got != Banned {
		t.Fatalf("during the ban: %v, want banned", got)
	}
	if st := l.Stats(); st.Bans != 1 || st.BannedNow != 1 {
		t.Fatalf("stats during the ban = %+v, want 1 ban, 1 banned now", st)
	}
	clk.add(30 * time.Second)
	if got := verdicts(l, src, 20); got != [3]int{20, 0, 0} {
		t.Fatalf("after the ban: %v, want a full burst", got)
	}
	if st := l.Stats(); st.BannedNow != 0 {
		t.Fatalf("banned now after the ban = %d", st.BannedNow)
	}
}

func TestLimiterSourcesAreIndependent(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, BanAfter: 1, Now: clk.now})
	for range 5 {
		l.Allow(addr("192.0.2.1"))
	}
	if !l.Banned(addr("192.0.2.1")) {
		t.Fatal("the flooder is not banned")
	}
	if got := l.Allow(addr("192.0.2.2")); got != Pass {
		t.Fatalf("another address: %v, want pass", got)
	}
	// One IPv6 /64 is one source; the next /64 is another.
	l.Allow(addr("2001:db8:0:1::1"))
	l.Allow(addr("2001:db8:0:1::2"))
	l.Allow(addr("2001:db8:0:1:ffff::3"))
	if !l.Banned(addr("2001:db8:0:1::99")) {
		t.Fatal("a /64 spread over several addresses is not banned")
	}
	if l.Banned(addr("2001:db8:0:2::1")) {
		t.Fatal("the next /64 is banned")
	}
	// IPv4-mapped IPv6 is IPv4.
	if !l.Banned(addr("::ffff:192.0.2.1")) {
		t.Fatal("::ffff:192.0.2.1 is not 192.0.2.1")
	}
}

func TestLimiterAllowlist(t *testing.T) {
	clk := newClock()
	allow := &Allowlist{}
	allow.Set([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, []netip.Addr{addr("198.51.100.7")})
	l := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, BanAfter: 1, Allow: allow, Now: clk.now})
	for _, ip := range []string{"127.0.0.2", "198.51.100.7", "::ffff:198.51.100.7"} {
		if got := verdicts(l, addr(ip), 100); got != [3]int{100, 0, 0} {
			t.Errorf("%s: %v, want all passed", ip, got)
		}
	}
	if got := verdicts(l, addr("198.51.100.8"), 3); got[Pass] != 1 {
		t.Errorf("a neighbour of an allowed address: %v, want limited", got)
	}
	if st := l.Stats(); st.Tracked != 1 {
		t.Errorf("tracked %d sources, want 1 (allowed sources are not tracked)", st.Tracked)
	}
}

func TestLimiterOff(t *testing.T) {
	l := NewLimiter(LimiterConfig{})
	if l.Enabled() {
		t.Fatal("a zero rate is enabled")
	}
	if got := verdicts(l, addr("192.0.2.1"), 1000); got != [3]int{1000, 0, 0} {
		t.Fatalf("off: %v", got)
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, BanAfter: 1, MaxSources: 64, Now: clk.now})
	for i := range 10_000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if st := l.Stats(); st.Tracked > 64 {
		t.Fatalf("tracked %d sources, want at most 64", st.Tracked)
	}
	// Idle sources are forgotten after a minute, banned ones not before
	// their ban ends.
	l = NewLimiter(LimiterConfig{Rate: 1, Burst: 1, BanAfter: 1, BanFor: 5 * time.Minute, Now: clk.now})
	verdicts(l, addr("192.0.2.1"), 5) // banned
	l.Allow(addr("192.0.2.2"))
	clk.add(2 * time.Minute)
	for i := range 200 { // touch every shard
		l.Allow(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}))
	}
	if !l.Banned(addr("192.0.2.1")) {
		t.Fatal("a ban was forgotten before its end")
	}
}

func TestAllowlistPrefixes(t *testing.T) {
	ps, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	var a Allowlist
	a.Set(ps, nil)
	for ip, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8:1::1": true, "2001:db9::1": false, "::ffff:10.0.0.1": true, "172.16.0.9": true, "172.32.0.1": false,
	} {
		if got := a.Contains(addr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 parsed")
	}
	if _, err := ParsePrefixes([]string{"host.example"}); err == nil {
		t.Error("a name parsed")
	}
	var none *Allowlist
	if none.Contains(addr("127.0.0.1")) {
		t.Error("a nil Allowlist allows")
	}
}

func TestLimiterBan(t *testing.T) {
	clk := newClock()
	allow := &Allowlist{}
	allow.Set([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	l := NewLimiter(LimiterConfig{Rate: 100, BanFor: time.Minute, Allow: allow, Now: clk.now})
	if !l.Ban(addr("192.0.2.9"), "test") {
		t.Fatal("Ban did not begin a ban")
	}
	if l.Ban(addr("192.0.2.9"), "test") {
		t.Error("a second Ban during the ban began another")
	}
	if got := l.Allow(addr("192.0.2.9")); got != Banned {
		t.Fatalf("a banned source's message: %v", got)
	}
	if l.Ban(addr("127.0.0.9"), "test") || l.Banned(addr("127.0.0.9")) {
		t.Error("an allowed source was banned")
	}
	clk.add(time.Minute)
	if got := l.Allow(addr("192.0.2.9")); got != Pass {
		t.Fatalf("after the ban: %v", got)
	}
	if st := l.Stats(); st.Bans != 1 {
		t.Errorf("bans = %d, want 1", st.Bans)
	}
	if NewLimiter(LimiterConfig{}).Ban(addr("192.0.2.9"), "test") {
		t.Error("a limiter that is off banned")
	}
}
