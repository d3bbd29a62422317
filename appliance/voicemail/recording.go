package voicemail

import (
	"math"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/wav"
)

// Recording limits (docs/sip.md, "Voicemail").
const (
	MaxMessage = 3 * time.Minute        // a recording stops here
	Silence    = 5 * time.Second        // this much silence ends a message
	MinVoice   = time.Second            // a message with less voice is dropped
	keepTail   = 300 * time.Millisecond // of silence kept after the last voice
	// VoiceLevel is the RMS a 20 ms frame needs to count as voice: about
	// -40 dBFS, above a phone's line noise and comfort noise.
	VoiceLevel = 330
)

// samplesOf is d in 8 kHz samples.
func samplesOf(d time.Duration) int { return int(d * wav.SampleRate / time.Second) }

// Recording is one message being recorded: the caller's audio in, the
// decision when it ends and what to keep. Not safe for concurrent use.
type Recording struct {
	samples   []int16
	lastVoice int // samples up to the end of the last frame of voice
	voiced    int // samples in frames of voice
}

// Add appends one frame of audio (a packet's worth, 8 kHz) and reports
// whether the recording is over: MaxMessage reached, or Silence of
// silence after the last voice (or since the start).
func (r *Recording) Add(frame []int16) (over bool) {
	room := samplesOf(MaxMessage) - len(r.samples)
	if len(frame) > room {
		frame = frame[:room]
	}
	r.samples = append(r.samples, frame...)
	if rms(frame) >= VoiceLevel {
		r.lastVoice = len(r.samples)
		r.voiced += len(frame)
	}
	return len(r.samples) >= samplesOf(MaxMessage) || len(r.samples)-r.lastVoice >= samplesOf(Silence)
}

// Message is what to keep: the audio up to shortly after the last voice,
// and false when it holds less than MinVoice of voice (dropped).
func (r *Recording) Message() ([]int16, bool) {
	if r.voiced < samplesOf(MinVoice) {
		return nil, false
	}
	end := min(len(r.samples), r.lastVoice+samplesOf(keepTail))
	return r.samples[:end], true
}

// Duration is the length recorded so far.
func (r *Recording) Duration() time.Duration {
	return time.Duration(len(r.samples)) * time.Second / wav.SampleRate
}

func rms(frame []int16) float64 {
	if len(frame) == 0 {
		return 0
	}
	var sum float64
	for _, s := range frame {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(frame)))
}
