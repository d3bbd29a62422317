package media

import (
	"net/netip"
	"testing"
	"time"
)

func TestLatch(t *testing.T) {
	x := netip.MustParseAddrPort("192.0.2.1:4000")
	y := netip.MustParseAddrPort("198.51.100.7:5000")
	loose := latchPolicy{silence: 2 * time.Second, newSSRC: true}
	strict := latchPolicy{silence: 2 * time.Second}
	type pkt struct {
		src       netip.AddrPort
		ssrc      uint32
		at        time.Duration
		ok, moved bool
		wantLatch netip.AddrPort
	}
	for _, tc := range []struct {
		name   string
		policy latchPolicy
		pkts   []pkt
	}{
		{"first packet latches", loose, []pkt{
			{x, 1, 10 * time.Second, true, true, x},
			{x, 1, 11 * time.Second, true, false, x},
		}},
		{"other source while active is refused", strict, []pkt{
			{x, 1, 10 * time.Second, true, true, x},
			{y, 1, 11 * time.Second, false, false, x},
			{y, 9, 11 * time.Second, false, false, x},
			{x, 1, 11500 * time.Millisecond, true, false, x},
			{y, 1, 13 * time.Second, false, false, x},
		}},
		{"other source after silence takes over", strict, []pkt{
			{x, 1, 10 * time.Second, true, true, x},
			{y, 1, 12 * time.Second, true, true, y},
			{x, 1, 12 * time.Second, false, false, y},
		}},
		{"new SSRC takes over at once when allowed", loose, []pkt{
			{x, 1, 10 * time.Second, true, true, x},
			{y, 1, 10 * time.Second, false, false, x},
			{y, 2, 10 * time.Second, true, true, y},
			{x, 1, 10 * time.Second, true, true, x},
		}},
		{"SSRC change from the latched source is no move", strict, []pkt{
			{x, 1, 10 * time.Second, true, true, x},
			{x, 2, 10 * time.Second, true, false, x},
			{y, 2, 11 * time.Second, false, false, x},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l latch
			for i, p := range tc.pkts {
				ok, moved := l.accept(tc.policy, p.src, p.ssrc, p.at)
				if ok != p.ok || moved != p.moved || l.addr != p.wantLatch {
					t.Errorf("packet %d from %s ssrc %d at %v: ok %v moved %v latch %s; want %v %v %s",
						i, p.src, p.ssrc, p.at, ok, moved, l.addr, p.ok, p.moved, p.wantLatch)
				}
			}
		})
	}
	var l latch
	l.accept(strict, x, 1, time.Second)
	l.reset()
	if ok, moved := l.accept(strict, y, 1, time.Second); !ok || !moved {
		t.Error("reset latch refused a new source")
	}
}
