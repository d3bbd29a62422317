package prompts

import (
	"math"
	"sync"

	"github.com/outpost-voice/outpost/appliance/media/wav"
)

// MusicOnHold is the prompt name of the music a held or parked party
// hears. An account replaces it by a custom prompt of that name (the
// snapshot's prompts[], a WAV blob); the built-in one is synthesized here,
// never recorded or fetched.
const MusicOnHold = "music-on-hold"

// music is the built-in music on hold, made once.
var music = sync.OnceValue(synthMusic)

// Chords of the built-in loop, one every musicBar: I-vi-IV-V in C major,
// voiced around middle C (Hz), then the arpeggio's notes above them.
var (
	musicChords = [][]float64{
		{261.63, 329.63, 392.00}, // C
		{220.00, 261.63, 329.63}, // Am
		{174.61, 220.00, 261.63}, // F
		{196.00, 246.94, 293.66}, // G
	}
	musicArpeggio = [][]float64{
		{523.25, 659.25, 783.99, 659.25},
		{440.00, 523.25, 659.25, 523.25},
		{349.23, 440.00, 523.25, 440.00},
		{392.00, 493.88, 587.33, 493.88},
	}
)

const (
	musicBar  = 2.0  // seconds a chord lasts
	musicPeak = 0.45 // of full scale (about -7 dBFS): calm, below speech
)

// synthMusic renders the loop: four bars of soft electric-piano chords
// with a slow arpeggio on top, 8 s at 8 kHz. Every note starts and ends
// at silence (a short attack, a decay, a release before the bar ends), so
// the loop joins itself without a click.
func synthMusic() []int16 {
	const rate = wav.SampleRate
	barN := int(musicBar * rate)
	out := make([]float64, barN*len(musicChords))
	for bar, chord := range musicChords {
		start := bar * barN
		for _, f := range chord {
			note(out[start:start+barN], f, 0.22, 1.6)
		}
		beat := barN / len(musicArpeggio[bar])
		for i, f := range musicArpeggio[bar] {
			note(out[start+i*beat:start+(i+1)*beat], f, 0.16, 0.35)
		}
	}
	peak := 0.0
	for _, v := range out {
		peak = max(peak, math.Abs(v))
	}
	samples := make([]int16, len(out))
	for i, v := range out {
		samples[i] = int16(v / peak * musicPeak * math.MaxInt16)
	}
	return samples
}

// note adds a tone of frequency f (its second and third harmonics
// softly, for a warmer timbre) into dst at amplitude amp, decaying with
// time constant decay seconds: a 15 ms attack and a 60 ms release at the
// end of dst.
func note(dst []float64, f, amp, decay float64) {
	const rate = float64(wav.SampleRate)
	attack, release := int(0.015*rate), int(0.06*rate)
	for i := range dst {
		t := float64(i) / rate
		env := math.Exp(-t / decay)
		if i < attack {
			env *= float64(i) / float64(attack)
		}
		if rem := len(dst) - i; rem < release {
			env *= float64(rem) / float64(release)
		}
		w := 2 * math.Pi * f * t
		dst[i] += amp * env * (math.Sin(w) + 0.3*math.Sin(2*w) + 0.1*math.Sin(3*w))
	}
}
