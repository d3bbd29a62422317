package rtpload

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media"
)

func TestHistQuantiles(t *testing.T) {
	h := newHist()
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * 100 * time.Microsecond) // 0.1 .. 10 ms
	}
	h.add(2 * time.Second)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5101 * time.Microsecond}, {0.99, 10100 * time.Microsecond}, {1, 2 * time.Second}} {
		if got := h.quantile(tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if min, max := time.Duration(h.min.Load()), time.Duration(h.max.Load()); min != 100*time.Microsecond || max != 2*time.Second {
		t.Errorf("min %v max %v", min, max)
	}
}

// TestRunThroughRelay is a smoke test of the generator on a small load.
func TestRunThroughRelay(t *testing.T) {
	r, err := media.New(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 32000, PortMax: 32099})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := Run(context.Background(), &RelayAnchor{Relay: r}, Config{
		Calls: 4, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Drain: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 4 calls x 50/s x 0.4 s each way.
	if res.Sent[0] != 80 || res.Sent[1] != 80 {
		t.Errorf("sent %v, want 80 each way", res.Sent)
	}
	if res.Received != res.Sent || res.Misrouted != 0 || res.LossPct() != 0 {
		t.Errorf("received %v of %v, misrouted %d", res.Received, res.Sent, res.Misrouted)
	}
	if res.Measured == 0 || res.MinTransit <= 0 {
		t.Errorf("no delay measured: %+v", res)
	}
	if st := r.Stats(); st.Sessions != 0 || st.AtoB.RTPPackets != 80 {
		t.Errorf("relay after the run: %+v", st)
	}
}
