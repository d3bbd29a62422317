package prompts

import (
	"math"
	"testing"
	"time"
)

// TestMusicOnHold checks the synthesized loop: 8 s, never clipped, calm
// (about -7 dBFS at its peak), sounding in every 20 ms frame but the
// joins between notes, and joining itself without a click.
func TestMusicOnHold(t *testing.T) {
	p, err := Builtin(MusicOnHold)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Duration(); d != 8*time.Second {
		t.Fatalf("duration %v, want 8 s", d)
	}
	s := p.Samples
	peak, quiet := 0, 0
	for i := 0; i+160 <= len(s); i += 160 {
		var e float64
		for _, v := range s[i : i+160] {
			peak = max(peak, abs(int(v)))
			e += float64(v) * float64(v)
		}
		if math.Sqrt(e/160) < 300 {
			quiet++
		}
	}
	if peak < 12000 || peak > 16000 {
		t.Errorf("peak %d, want about 14700 (-7 dBFS)", peak)
	}
	if quiet > 8 { // the releases at the end of each bar
		t.Errorf("%d quiet frames of 400, want music throughout", quiet)
	}
	if a, b := abs(int(s[0])), abs(int(s[len(s)-1])); a > 200 || b > 200 {
		t.Errorf("loop join: first %d last %d, want both near silence", s[0], s[len(s)-1])
	}
	again, _ := Builtin(MusicOnHold)
	if &again.Samples[0] != &s[0] {
		t.Error("the music is synthesized again for every call")
	}
}
