package voicemail

import (
	"math"
	"testing"
	"time"
)

// frames is d of 20 ms frames: a 440 Hz tone of amplitude amp (0: silence).
func frames(d time.Duration, amp float64) [][]int16 {
	var out [][]int16
	for n := 0; n < samplesOf(d); n += 160 {
		f := make([]int16, 160)
		for i := range f {
			f[i] = int16(amp * math.Sin(2*math.Pi*440*float64(n+i)/8000))
		}
		out = append(out, f)
	}
	return out
}

// feed adds fs and returns how many were added when the recording said
// it was over (-1: never).
func feed(r *Recording, fs [][]int16) int {
	for i, f := range fs {
		if r.Add(f) {
			return i + 1
		}
	}
	return -1
}

func TestRecordingSilenceEndsAndIsTrimmed(t *testing.T) {
	var r Recording
	if n := feed(&r, frames(3*time.Second, 8000)); n != -1 {
		t.Fatalf("voice ended the recording after %d frames", n)
	}
	n := feed(&r, frames(10*time.Second, 0))
	if want := samplesOf(Silence) / 160; n != want {
		t.Fatalf("silence ended it after %d frames, want %d (5 s)", n, want)
	}
	msg, ok := r.Message()
	if !ok {
		t.Fatal("a 3 s message was dropped")
	}
	if got, want := len(msg), samplesOf(3*time.Second+keepTail); got != want {
		t.Errorf("kept %d samples, want %d: 3 s of voice and the tail, the silence trimmed", got, want)
	}
}

func TestRecordingCap(t *testing.T) {
	var r Recording
	n := feed(&r, frames(4*time.Minute, 8000))
	if want := samplesOf(MaxMessage) / 160; n != want {
		t.Fatalf("capped after %d frames, want %d (3 min)", n, want)
	}
	if msg, ok := r.Message(); !ok || len(msg) != samplesOf(MaxMessage) {
		t.Fatalf("kept %d samples, %v; want 3 min", len(msg), ok)
	}
	if r.Duration() != MaxMessage {
		t.Errorf("Duration = %v", r.Duration())
	}
}

func TestRecordingShortOrQuietDropped(t *testing.T) {
	var r Recording
	feed(&r, frames(800*time.Millisecond, 8000))
	feed(&r, frames(2*time.Second, 0))
	if _, ok := r.Message(); ok {
		t.Error("0.8 s of voice was kept")
	}
	var q Recording
	feed(&q, frames(4*time.Second, 100)) // line noise, below VoiceLevel
	if _, ok := q.Message(); ok {
		t.Error("4 s of noise was kept")
	}
	var e Recording
	if _, ok := e.Message(); ok {
		t.Error("an empty recording was kept")
	}
}

// A message ended early (by # or a hang-up) keeps what it has.
func TestRecordingEndedEarly(t *testing.T) {
	var r Recording
	feed(&r, frames(1500*time.Millisecond, 8000))
	feed(&r, frames(time.Second, 0))
	msg, ok := r.Message()
	if !ok || len(msg) != samplesOf(1500*time.Millisecond+keepTail) {
		t.Fatalf("kept %d samples, %v", len(msg), ok)
	}
}
