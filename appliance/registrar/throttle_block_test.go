package registrar

import (
	"net/netip"
	"testing"
	"time"
)

// SetOnBlock hears of each block once, as it begins, with the source's key.
func TestThrottleOnBlock(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := NewThrottle(2, time.Minute, func() time.Time { return now })
	var blocked []netip.Addr
	th.SetOnBlock(func(src netip.Addr) { blocked = append(blocked, src) })
	ip := netip.MustParseAddr("2001:db8:0:7::42")
	for range 5 {
		th.Fail(ip)
	}
	if want := netip.MustParseAddr("2001:db8:0:7::"); len(blocked) != 1 || blocked[0] != want {
		t.Fatalf("blocks heard: %v, want one, for %s", blocked, want)
	}
	now = now.Add(2 * time.Minute) // the block is over; a new one is heard again
	for range 3 {
		th.Fail(ip)
	}
	if len(blocked) != 2 {
		t.Fatalf("blocks heard after the first ended: %d, want 2", len(blocked))
	}
}
