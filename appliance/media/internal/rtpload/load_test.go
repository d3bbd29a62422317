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
	rec := NewResidence()
	r, err := media.New(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 32000, PortMax: 32099,
		Residence: rec.Record})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := Run(context.Background(), &RelayAnchor{Relay: r, Recorder: rec}, Config{
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
	// The residence window opens after the warm-up: 4 calls x 50/s x
	// 0.3 s each way, give or take a packet at the edge.
	if res.RelayErr != "" || res.Relay.N < 110 || res.Relay.N > 130 || res.Relay.P99 <= 0 || res.Relay.Max < res.Relay.P99 {
		t.Errorf("in-relay figures: %+v (%s)", res.Relay, res.RelayErr)
	}
}

// TestRunDirect sends the load with no relay in the path.
func TestRunDirect(t *testing.T) {
	res, err := Run(context.Background(), DirectAnchor{}, Config{
		Calls: 2, Duration: 200 * time.Millisecond, Drain: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent[0] != 20 || res.Received != res.Sent || res.Misrouted != 0 {
		t.Errorf("sent %v received %v misrouted %d", res.Sent, res.Received, res.Misrouted)
	}
	if res.RelayErr == "" {
		t.Error("no relay, yet in-relay figures")
	}
}

func TestCPUWaitQuantiles(t *testing.T) {
	// 1 s with one 20 ms gap and many short ones: a packet waits over
	// 10 ms only inside the first 10 ms of the long gap (1 % of the time).
	gaps := []time.Duration{20 * time.Millisecond}
	for range 100 {
		gaps = append(gaps, 50*time.Microsecond)
	}
	w := cpuWaitOf(gaps, time.Second)
	if w.Longest != 20*time.Millisecond || w.Unavailable < 0.0249 || w.Unavailable > 0.0251 {
		t.Errorf("longest %v unavailable %v", w.Longest, w.Unavailable)
	}
	if w.P99 < 9990*time.Microsecond || w.P99 > 10010*time.Microsecond {
		t.Errorf("p99 %v, want 10 ms", w.P99)
	}
	if w.P999 < 18990*time.Microsecond || w.P999 > 19010*time.Microsecond {
		t.Errorf("p99.9 %v, want 19 ms", w.P999)
	}
	if w := cpuWaitOf(nil, time.Second); w.P99 != 0 || w.Unavailable != 0 {
		t.Errorf("no gaps: %+v", w)
	}
}
