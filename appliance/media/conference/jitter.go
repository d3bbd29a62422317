package conference

import (
	"sync/atomic"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// frameSamples is one 20 ms G.711 frame: 160 samples, 160 payload bytes,
// 160 RTP timestamp units.
const frameSamples = g711.SampleRate / 50

// The jitter buffer's shape.
const (
	jbSlots   = 4   // the ring (a power of two, more than jbDepth)
	jbPrefill = 2   // frames buffered before a stream starts (or restarts) playing
	jbDepth   = 3   // the most frames kept: a newer one drops the oldest
	jbHold    = 3   // frames of underrun after which the stream counts as stopped
	jbRestart = 100 // a sequence jump larger than this, either way, restarts the stream
)

// frame is 20 ms of linear audio.
type frame = [frameSamples]int16

// slot holds one received frame, still encoded.
type slot struct {
	seq  uint16
	full bool
	code [frameSamples]byte
}

// jitter is one participant's receive buffer: 20 ms G.711 frames ordered
// by sequence number, 2 or 3 deep. It is pure (no clock, no socket) and
// owned by the mixing goroutine, except for its counters.
//
// A stream starts playing once jbPrefill frames are buffered, from the
// lowest. Each pull plays the next frame in sequence. A frame missing
// while later ones are buffered is lost: it is concealed and skipped. A
// frame missing with nothing buffered is an underrun (the sender is late
// or slower than the mixer): it is concealed and waited for, which grows
// the delay by a frame; after jbHold frames of underrun the stream counts
// as stopped (silence suppression, hold, a phone gone) and must prefill
// again. A frame arriving that would make the buffer deeper than jbDepth
// drops the oldest (a sender faster than the mixer, or a burst after a
// stall), so the delay never exceeds jbDepth frames. Frames arriving after
// their turn, and duplicates, are dropped. A new SSRC or a sequence jump
// of more than jbRestart starts the stream afresh.
//
// Concealment repeats the last frame played once, faded out to zero over
// the frame, then plays silence; the first frame after a start or a
// concealment is faded in over the frame. Neither edge clicks.
type jitter struct {
	slots    [jbSlots]slot
	n        int    // full slots
	next     uint16 // the next frame to play; meaningful while n > 0 or playing
	playing  bool
	ssrc     uint32
	haveSSRC bool
	fadeIn   bool  // the next frame played follows silence or a concealment
	missed   int   // frames concealed in a row
	last     frame // the last frame played, for concealment

	lost, late, dropped, concealed atomic.Uint64
}

// restart forgets the stream: what is buffered is dropped.
func (j *jitter) restart() {
	for i := range j.slots {
		if j.slots[i].full {
			j.slots[i].full = false
			j.dropped.Add(1)
		}
	}
	j.n, j.playing, j.missed = 0, false, 0
}

// insert takes a received frame (len(code) == frameSamples).
func (j *jitter) insert(seq uint16, ssrc uint32, code []byte) {
	if j.haveSSRC && ssrc != j.ssrc {
		j.restart()
	}
	j.ssrc, j.haveSSRC = ssrc, true
	if j.n == 0 && !j.playing {
		j.next = seq
	}
	d := int(int16(seq - j.next))
	switch {
	case d > jbRestart || d < -jbRestart:
		j.restart()
		j.next, d = seq, 0
	case d < 0 && j.playing:
		j.late.Add(1) // played or concealed already
		return
	case d < 0: // before the first frame of a stream not playing yet
		if j.newest()-int(int16(seq-j.next)) >= jbDepth {
			j.late.Add(1)
			return
		}
		j.next, d = seq, 0
	}
	if d >= jbDepth {
		j.advance(seq - (jbDepth - 1))
	}
	s := &j.slots[seq%jbSlots]
	if s.full && s.seq == seq {
		j.late.Add(1) // a duplicate
		return
	}
	if !s.full {
		j.n++
	}
	s.seq, s.full = seq, true
	copy(s.code[:], code)
}

// newest is the offset from next of the newest frame buffered.
func (j *jitter) newest() int {
	m := 0
	for i := range j.slots {
		if s := &j.slots[i]; s.full {
			m = max(m, int(s.seq-j.next))
		}
	}
	return m
}

// advance moves next up to seq: the frames before it that are buffered
// are dropped, the ones that never came are lost (a hole skipped here is
// never concealed, so pull would not count it).
func (j *jitter) advance(seq uint16) {
	for k := j.next; int16(k-seq) < 0; k++ {
		if s := &j.slots[k%jbSlots]; s.full && s.seq == k {
			s.full = false
			j.n--
			j.dropped.Add(1)
		} else {
			j.lost.Add(1)
		}
	}
	j.next = seq
}

// pull writes the frame to play now into dst, decoded with codec, and
// reports whether there is one: false means silence (nothing buffered
// yet, or concealment's silence).
func (j *jitter) pull(dst *frame, codec g711.Codec) bool {
	if !j.playing {
		if j.n < jbPrefill {
			return false
		}
		j.playing, j.fadeIn, j.missed = true, true, 0
	}
	if s := &j.slots[j.next%jbSlots]; s.full && s.seq == j.next {
		codec.Decode(dst[:], s.code[:])
		s.full = false
		j.n--
		j.next++
		if j.fadeIn {
			rampUp(dst)
			j.fadeIn = false
		}
		j.last, j.missed = *dst, 0
		return true
	}
	j.concealed.Add(1)
	if j.n > 0 { // later frames came: this one is lost
		j.lost.Add(1)
		j.next++
	} else if j.missed+1 >= jbHold {
		j.playing = false
	}
	j.missed++
	j.fadeIn = true
	if j.missed > 1 {
		return false
	}
	*dst = j.last
	rampDown(dst)
	return true
}

// rampUp fades f in linearly over the frame.
func rampUp(f *frame) {
	for i := range f {
		f[i] = int16(int32(f[i]) * int32(i) / frameSamples)
	}
}

// rampDown fades f out linearly over the frame.
func rampDown(f *frame) {
	for i := range f {
		f[i] = int16(int32(f[i]) * int32(frameSamples-1-i) / frameSamples)
	}
}
