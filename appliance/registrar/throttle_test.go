package registrar

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestThrottleBlocksAfterMaxFailures(t *testing.T) {
	clock := newAuthClock()
	th := NewThrottle(3, time.Minute, clock.Now)
	ip := netip.MustParseAddr("192.0.2.10")
	other := netip.MustParseAddr("192.0.2.11")
	steps := []struct {
		advance time.Duration
		fail    bool
		want    bool // Allowed(ip) after the step
	}{
		{0, true, true},
		{time.Second, true, true},
		{time.Second, true, true},        // three failures: still allowed
		{time.Second, true, false},       // the fourth blocks for a minute
		{59 * time.Second, false, false}, // 59s later: still blocked
		{time.Second - time.Nanosecond, false, false},
		{time.Nanosecond, false, true}, // a minute after the fourth failure
		{0, true, true},                // counting starts afresh
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if s.fail {
			th.Fail(ip)
		}
		if got := th.Allowed(ip); got != s.want {
			t.Errorf("step %d: Allowed = %v, want %v", i, got, s.want)
		}
		if !th.Allowed(other) {
			t.Errorf("step %d: another source is refused", i)
		}
	}
}

func TestThrottleWindow(t *testing.T) {
	clock := newAuthClock()
	th := NewThrottle(2, time.Minute, clock.Now)
	ip := netip.MustParseAddr("198.51.100.7")
	// Two failures a window, for ever, never block.
	for i := 0; i < 10; i++ {
		th.Fail(ip)
		th.Fail(ip)
		if !th.Allowed(ip) {
			t.Fatalf("round %d: refused after two failures in a window", i)
		}
		clock.Advance(time.Minute)
	}
	// A failure while blocked does not extend the block.
	for i := 0; i < 3; i++ {
		th.Fail(ip)
	}
	clock.Advance(30 * time.Second)
	th.Fail(ip)
	clock.Advance(30 * time.Second)
	if !th.Allowed(ip) {
		t.Errorf("refused a window after the blocking failure")
	}
}

func TestThrottleZeroFailures(t *testing.T) {
	th := NewThrottle(0, time.Minute, newAuthClock().Now)
	ip := netip.MustParseAddr("192.0.2.1")
	if !th.Allowed(ip) {
		t.Fatal("refused before any failure")
	}
	th.Fail(ip)
	if th.Allowed(ip) {
		t.Error("allowed after a failure with maxFailures 0")
	}
}

func TestThrottleSucceed(t *testing.T) {
	clock := newAuthClock()
	th := NewThrottle(2, time.Minute, clock.Now)
	ip := netip.MustParseAddr("203.0.113.5")
	th.Fail(ip)
	th.Fail(ip)
	th.Succeed(ip)
	th.Fail(ip)
	th.Fail(ip)
	if !th.Allowed(ip) {
		t.Fatal("refused: Succeed did not reset the count")
	}
	th.Fail(ip)
	if th.Allowed(ip) {
		t.Fatal("allowed after three failures since Succeed")
	}
	th.Succeed(ip)
	if th.Allowed(ip) {
		t.Error("Succeed lifted a block in force")
	}
	th.Succeed(netip.MustParseAddr("203.0.113.99")) // unknown source: no-op
}

func TestThrottleSources(t *testing.T) {
	th := NewThrottle(0, time.Minute, newAuthClock().Now)
	tests := []struct {
		fail  string
		same  []string
		other []string
	}{
		{"192.0.2.1", []string{"::ffff:192.0.2.1"}, []string{"192.0.2.2", "::ffff:192.0.2.2"}},
		{"2001:db8:1:2::1", []string{"2001:db8:1:2:ffff::9", "2001:db8:1:2::1%eth0"}, []string{"2001:db8:1:3::1", "::1"}},
	}
	for _, tt := range tests {
		th.Fail(netip.MustParseAddr(tt.fail))
		for _, s := range append([]string{tt.fail}, tt.same...) {
			if th.Allowed(netip.MustParseAddr(s)) {
				t.Errorf("after a failure from %s, %s is allowed, want refused", tt.fail, s)
			}
		}
		for _, s := range tt.other {
			if !th.Allowed(netip.MustParseAddr(s)) {
				t.Errorf("after a failure from %s, %s is refused, want allowed", tt.fail, s)
			}
		}
	}
	var zero netip.Addr
	th.Fail(zero) // an unparsable source counts as one source, and does not panic
	if th.Allowed(zero) {
		t.Error("the invalid address is allowed after a failure")
	}
}

func TestThrottleBounded(t *testing.T) {
	clock := newAuthClock()
	const limit = 8
	th := newThrottle(1, time.Minute, clock.Now, limit)
	victim := netip.MustParseAddr("10.0.0.1")
	th.Fail(victim)
	th.Fail(victim)
	if th.Allowed(victim) {
		t.Fatal("victim not blocked")
	}
	for i := 0; i < 1000; i++ {
		th.Fail(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
		if n := th.len(); n > limit {
			t.Fatalf("after %d sources: %d tracked, want at most %d", i+1, n, limit)
		}
	}
	if !th.Allowed(victim) {
		t.Error("the oldest source was not evicted")
	}
	clock.Advance(time.Minute)
	th.Fail(victim)
	if got := th.len(); got != 1 {
		t.Errorf("a window later %d sources tracked, want 1", got)
	}
}

func TestThrottleForgetKeepsBlocks(t *testing.T) {
	clock := newAuthClock()
	th := NewThrottle(1, time.Minute, clock.Now)
	blocked := netip.MustParseAddr("10.0.0.1")
	th.Fail(blocked)
	clock.Advance(30 * time.Second)
	th.Fail(blocked) // blocked until +90s
	clock.Advance(45 * time.Second)
	th.Fail(netip.MustParseAddr("10.0.0.2")) // sweeps lapsed sources
	if th.Allowed(blocked) {
		t.Error("a source still blocked was forgotten")
	}
}

func TestNewThrottlePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"negative max": func() { NewThrottle(-1, time.Minute, nil) },
		"zero window":  func() { NewThrottle(1, 0, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewThrottle did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestThrottleConcurrent runs under -race.
func TestThrottleConcurrent(t *testing.T) {
	clock := newAuthClock()
	th := newThrottle(5, time.Minute, clock.Now, 64)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				ip := netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", g, i%100))
				th.Allowed(ip)
				th.Fail(ip)
				if i%7 == 0 {
					th.Succeed(ip)
				}
				if i%50 == 0 {
					clock.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if n := th.len(); n > 64 {
		t.Errorf("%d sources tracked, want at most 64", n)
	}
}
