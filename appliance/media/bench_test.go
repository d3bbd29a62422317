package media_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/media/internal/rtpload"
)

// BenchmarkRelay relays G.711-sized RTP (50 packets/s each way, 160-byte
// payloads) for N concurrent calls through an in-process relay, generator
// and relay sharing the machine. One iteration is one second of measured
// load (use -benchtime 10x for 10 s). Reported: loss, the delay spread
// the relay added (p50/p99/max, ms) as the generator sees it, each
// packet's time in the relay as the relay measures it (Config.Residence:
// kernel arrival stamp to send, p50/p99 ms), the process CPU (relay and
// generator together, % of one core) and how late the generator sent (a
// p99 over 2 ms means it sent in bursts, which the relay had to queue).
// The target: 500 calls with no loss and p99
// under 5 ms on 2 cores. scripts/bench-media.sh runs relay and generator
// as separate processes on separate CPUs, beside rtpengine.
//
//	go test -run '^$' -bench 'Relay/calls=500' -benchtime 10x ./appliance/media/
func BenchmarkRelay(b *testing.B) {
	for _, calls := range []int{100, 250, 500, 750} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) { benchRelay(b, calls) })
	}
}

func benchRelay(b *testing.B, calls int) {
	rec := rtpload.NewResidence()
	r, err := media.New(media.Config{
		IP:      netip.MustParseAddr("127.0.0.1"),
		PortMin: 24000, PortMax: 29999,
		InactivityTimeout: time.Hour,
		Residence:         rec.Record,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ResetTimer()
	res, err := rtpload.Run(context.Background(), &rtpload.RelayAnchor{Relay: r, Recorder: rec}, rtpload.Config{
		Calls:    calls,
		Warmup:   time.Second,
		Duration: time.Duration(b.N) * time.Second,
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Misrouted > 0 {
		b.Errorf("%d packets reached the wrong endpoint", res.Misrouted)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(res.PPS(), "pps-in")
	b.ReportMetric(res.LossPct(), "loss-%")
	b.ReportMetric(ms(res.AddedP50), "p50-added-ms")
	b.ReportMetric(ms(res.AddedP99), "p99-added-ms")
	b.ReportMetric(ms(res.AddedMax), "max-added-ms")
	b.ReportMetric(ms(res.Relay.P50), "p50-in-relay-ms")
	b.ReportMetric(ms(res.Relay.P99), "p99-in-relay-ms")
	b.ReportMetric(res.SelfCPU, "cpu-%")
	b.ReportMetric(ms(res.SendLateP99), "gen-late-p99-ms")
	if res.Behind() {
		b.Logf("the generator fell behind its pace (p99 %v late), sending in bursts: relay and generator share this process and its CPUs; scripts/bench-media.sh pins them apart", res.SendLateP99)
	}
	st := r.Stats()
	b.Logf("calls %d: sent %v received %v, relay forwarded %d+%d dropped %+v, min transit %v, sender late p99 %v",
		calls, res.Sent, res.Received, st.AtoB.RTPPackets, st.BtoA.RTPPackets, st.Dropped, res.MinTransit, res.SendLateP99)
}
