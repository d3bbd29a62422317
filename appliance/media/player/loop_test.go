package player

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// TestLoop plays a loop of 250 samples (not a whole number of frames):
// the audio goes on across its end without a gap for as long as it plays,
// only the first packet has the marker, and Stop ends it at once.
func TestLoop(t *testing.T) {
	p, clk := newClock(t)
	var w capture
	s, _ := p.Start(&w, SessionConfig{Codec: g711.PCMU})
	samples := make([]int16, 250)
	for i := range samples {
		samples[i] = int16(1000 + i*10) // a ramp: every position is recognisable
	}
	pb := s.Play(Loop(samples))
	clk.run(2 * time.Second)
	if isDone(pb) {
		t.Fatal("a loop ended by itself")
	}
	pkts := w.packets()
	if len(pkts) < 99 || len(pkts) > 101 {
		t.Fatalf("%d packets in 2 s, want 100", len(pkts))
	}
	checkStream(t, pkts, s.SSRC())
	pos := 0
	for i, pk := range pkts {
		if pk.Marker != (i == 0) {
			t.Fatalf("packet %d: marker %v", i, pk.Marker)
		}
		if len(pk.Payload) != frameSamples {
			t.Fatalf("packet %d: %d bytes", i, len(pk.Payload))
		}
		for j, b := range pk.Payload {
			want := samples[pos%len(samples)]
			if got := g711.DecodeMuLaw(b); abs(int(got)-int(want)) > int(want)/16+8 {
				t.Fatalf("packet %d sample %d: %d, want about %d (the loop's sample %d)", i, j, got, want, pos%len(samples))
			}
			pos++
		}
	}
	s.Stop()
	if !errors.Is(pb.Err(), ErrStopped) {
		t.Fatalf("after Stop: %v, want ErrStopped", pb.Err())
	}
	n := len(w.packets())
	clk.run(200 * time.Millisecond)
	if got := len(w.packets()); got != n {
		t.Fatalf("%d packets after Stop of a loop (no IdleSilence)", got-n)
	}

	// A new loop after Stop starts with a marker again; an empty loop is
	// silence that goes on.
	pb = s.Play(Loop(nil))
	clk.run(100 * time.Millisecond)
	more := w.packets()[n:]
	if len(more) < 4 || !more[0].Marker {
		t.Fatalf("empty loop: %d packets, first marker %v", len(more), len(more) > 0 && more[0].Marker)
	}
	s.Close()
	if !errors.Is(pb.Err(), ErrClosed) {
		t.Fatalf("after Close: %v", pb.Err())
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
