package ivr

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// energy is the RMS of a PCMU payload.
func energy(p rtp.Packet) float64 {
	var e float64
	for _, b := range p.Payload {
		v := float64(g711.DecodeMuLaw(b))
		e += v * v
	}
	return math.Sqrt(e / float64(max(1, len(p.Payload))))
}

// TestLoopMusicAndStop: Loop streams the music on hold at 20 ms pacing
// past the end of the track's first turn; Stop turns it into silence at
// once, the stream going on (IdleSilence).
func TestLoopMusicAndStop(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-moh", c.addr(), g711.PCMU, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ep.Loop(prompts.MusicOnHold)
	// Music: loud frames, 50 a second. Idle silence sent before Loop may
	// lead; skip it.
	var first time.Time
	loud, n := 0, 0
	deadline := time.After(5 * time.Second)
	for loud < 100 {
		select {
		case p := <-c.got:
			if energy(p) > 300 {
				if loud == 0 {
					first = time.Now()
				}
				loud++
			}
			n++
		case <-deadline:
			t.Fatalf("%d loud packets of %d in 5 s, want music", loud, n)
		}
	}
	if took := time.Since(first); took < 1500*time.Millisecond || took > 2600*time.Millisecond {
		t.Errorf("100 music packets took %v, want about 2 s (20 ms pacing)", took)
	}
	ep.Stop()
	// Within a few packets the stream is silence, and stays so.
	quiet := 0
	deadline = time.After(3 * time.Second)
	for quiet < 25 {
		select {
		case p := <-c.got:
			if energy(p) > 300 {
				if quiet > 0 {
					t.Fatal("music again after silence followed Stop")
				}
				continue
			}
			quiet++
		case <-deadline:
			t.Fatalf("only %d silent packets in 3 s after Stop", quiet)
		}
	}
}
