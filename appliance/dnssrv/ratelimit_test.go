package dnssrv

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(RateLimit{QPS: 10, Burst: 3, Slip: 2}.withDefaults())
	t0 := time.Unix(1_700_000_000, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	var got []verdict
	for range 6 {
		got = append(got, l.check(ip, t0))
	}
	want := []verdict{allow, allow, allow, drop, slip, drop}
	if !slices.Equal(got, want) {
		t.Errorf("burst verdicts = %v, want %v", got, want)
	}
	// 100ms at 10 QPS refills one token.
	if v := l.check(ip, t0.Add(100*time.Millisecond)); v != allow {
		t.Errorf("after 100ms: %v, want allow", v)
	}
	if v := l.check(ip, t0.Add(100*time.Millisecond)); v == allow {
		t.Error("second query after 100ms allowed, want limited")
	}
	// Another source has its own bucket.
	if v := l.check(netip.MustParseAddr("192.0.2.2"), t0); v != allow {
		t.Errorf("other source: %v, want allow", v)
	}
	// A long pause refills up to the burst, no more.
	later := t0.Add(time.Hour)
	for i := range 4 {
		if v := l.check(ip, later); (v == allow) != (i < 3) {
			t.Errorf("query %d after an hour: %v", i, v)
		}
	}
}

func TestLimiterIPv6Prefix(t *testing.T) {
	l := newLimiter(RateLimit{QPS: 1, Burst: 1, Slip: -1}.withDefaults())
	t0 := time.Unix(1_700_000_000, 0)
	if v := l.check(netip.MustParseAddr("2001:db8:1:2::1"), t0); v != allow {
		t.Fatalf("first: %v", v)
	}
	if v := l.check(netip.MustParseAddr("2001:db8:1:2:ffff::9"), t0); v != drop {
		t.Errorf("same /64: %v, want drop (slip off)", v)
	}
	if v := l.check(netip.MustParseAddr("2001:db8:1:3::1"), t0); v != allow {
		t.Errorf("another /64: %v, want allow", v)
	}
	if v := l.check(netip.MustParseAddr("::ffff:192.0.2.1"), t0); v != allow {
		t.Errorf("v4-mapped: %v, want allow", v)
	}
	if v := l.check(netip.MustParseAddr("192.0.2.1"), t0); v != drop {
		t.Errorf("v4 after its v4-mapped form: %v, want drop (one source)", v)
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(RateLimit{QPS: 10, Burst: 10, MaxSources: 100}.withDefaults())
	t0 := time.Unix(1_700_000_000, 0)
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	// A spoofed flood from many sources, each seen once, a millisecond apart.
	for i := range 1000 {
		l.check(src(i), t0.Add(time.Duration(i)*time.Millisecond))
		if n := l.size(); n > 100 {
			t.Fatalf("after %d sources the limiter tracks %d, want at most 100", i+1, n)
		}
	}
	// The newest are kept: the last source is still limited.
	last := t0.Add(999 * time.Millisecond)
	for range 10 {
		l.check(src(999), last)
	}
	if v := l.check(src(999), last); v == allow {
		t.Error("the newest source lost its bucket")
	}
	// Quiet sources whose bucket refilled are forgotten first.
	much := last.Add(time.Hour)
	l.check(netip.MustParseAddr("192.0.2.200"), much)
	for range 100 {
		l.check(netip.MustParseAddr("192.0.2.200"), much)
	}
	if n := l.size(); n > 100 {
		t.Errorf("tracks %d, want at most 100", n)
	}
}

func TestLimiterOff(t *testing.T) {
	l := newLimiter(RateLimit{QPS: -1}.withDefaults())
	for range 1000 {
		if v := l.check(netip.MustParseAddr("192.0.2.1"), time.Unix(0, 0)); v != allow {
			t.Fatal("limited with QPS < 0")
		}
	}
}
