package conference

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

const (
	frameDur = 20 * time.Millisecond
	// maxBehind: a mixer this late skips the frames it missed (the
	// outgoing timestamps jump by the time skipped) instead of sending
	// them back to back.
	maxBehind = 3 * frameDur
)

// mixer is the state of a conference's mixing, owned by the clock's
// goroutine.
type mixer struct {
	frame    int64 // frames since Open, skipped ones included
	parts    []*Participant
	overlays []*overlay
	gone     []*Participant
	total    [frameSamples]int32 // everything heard this frame
	acc      [frameSamples]int32 // total less what one participant must not hear
	tail     [frameSamples]int32 // the faded last frames of those who left
	hasTail  bool
	pcm      frame
	shared   [2]struct { // total encoded, for participants with nothing to take out
		valid bool
		code  [frameSamples]byte
	}
	rbuf [1500]byte
}

// tick mixes c's frame due at due, or skips it if the clock is too late
// for it (maxBehind); it reports whether c is idle (no one in it, nothing
// playing) or closed, and then c must be taken out.
func (c *Conference) tick(due time.Time) (idle, closed bool) {
	now := time.Now()
	if now.Sub(due) < maxBehind {
		return c.mixFrame(now, due)
	}
	c.m.frame++
	c.mu.Lock()
	idle = len(c.parts) == 0 && len(c.pending) == 0 && len(c.m.overlays) == 0 && !c.m.hasTail
	closed = c.closed
	c.mu.Unlock()
	if late := c.b.cfg.SendLate; late != nil {
		for range c.m.parts {
			late(now.Sub(due))
		}
	}
	return idle, closed
}

// exit ends the conference's mixing, once the clock has taken it out:
// nothing is sent to a Keys channel after.
func (c *Conference) exit() {
	c.mu.Lock()
	gone := c.gone
	c.gone, c.pending = nil, nil
	c.mu.Unlock()
	for _, p := range gone {
		p.closeKeys()
	}
	c.m.parts, c.m.overlays, c.m.gone = nil, nil, nil
	close(c.done)
}

// mixFrame receives, mixes and sends one frame, due at due, and reports
// whether the conference is idle (no one in it, nothing playing) or
// closed (nothing done).
func (c *Conference) mixFrame(now, due time.Time) (idle, closed bool) {
	m := &c.m
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true, true
	}
	m.parts = append(m.parts[:0], c.parts...)
	m.overlays = append(m.overlays, c.pending...)
	clear(c.pending)
	c.pending = c.pending[:0]
	m.gone = append(m.gone[:0], c.gone...)
	clear(c.gone)
	c.gone = c.gone[:0]
	c.mu.Unlock()

	for i, p := range m.gone {
		if p.has { // its voice fades rather than stops with a click
			rampDown(&p.in)
			for k := range m.tail {
				m.tail[k] += int32(p.in[k])
			}
			m.hasTail, p.has = true, false
		}
		p.closeKeys()
		m.gone[i] = nil
	}
	for _, p := range m.parts {
		p.applyFormat()
		p.receive(m.rbuf[:], now)
		p.pull()
	}
	m.mix()
	late := c.b.cfg.SendLate
	for _, p := range m.parts {
		p.send(m.frame)
		if late != nil {
			late(time.Since(due))
		}
	}
	m.frame++
	return len(m.parts) == 0 && len(m.overlays) == 0 && !m.hasTail, false
}

// mix sums this frame's contributions (each participant's in, if it has
// one, and the overlays' frames) and writes each participant's payload:
// the sum less its own contribution and the overlays it must not hear,
// saturated to 16 bits and encoded in its codec.
func (m *mixer) mix() {
	if m.hasTail {
		m.total, m.tail, m.hasTail = m.tail, [frameSamples]int32{}, false
	} else {
		m.total = [frameSamples]int32{}
	}
	for _, p := range m.parts {
		if p.has {
			add(&m.total, &p.in)
		}
	}
	k := 0
	for _, o := range m.overlays {
		if !o.next() {
			close(o.done)
			continue
		}
		add(&m.total, &o.frame)
		m.overlays[k] = o
		k++
	}
	clear(m.overlays[k:])
	m.overlays = m.overlays[:k]
	m.shared[0].valid, m.shared[1].valid = false, false
	for _, p := range m.parts {
		m.encode(p)
	}
}

// encode writes p's payload for this frame.
func (m *mixer) encode(p *Participant) {
	payload := (*[frameSamples]byte)(p.out[headerSize:])
	excluded := false
	for _, o := range m.overlays {
		if o.except == p {
			excluded = true
			break
		}
	}
	var own *frame
	if p.has {
		own = &p.in
	}
	switch {
	case own == nil && !excluded: // hears the whole mix: shared with its like
		sh := &m.shared[0]
		if p.codec == g711.PCMA {
			sh = &m.shared[1]
		}
		if !sh.valid {
			minus(&m.pcm, &m.total, nil)
			p.codec.Encode(sh.code[:], m.pcm[:])
			sh.valid = true
		}
		*payload = sh.code
		return
	case excluded:
		m.acc = m.total
		for _, o := range m.overlays {
			if o.except == p {
				sub(&m.acc, &o.frame)
			}
		}
		minus(&m.pcm, &m.acc, own)
	default:
		minus(&m.pcm, &m.total, own)
	}
	p.codec.Encode(payload[:], m.pcm[:])
}

func add(t *[frameSamples]int32, f *frame) {
	for i := range t {
		t[i] += int32(f[i])
	}
}

func sub(t *[frameSamples]int32, f *frame) {
	for i := range t {
		t[i] -= int32(f[i])
	}
}

// minus writes t less own (nil: nothing), saturated to 16 bits, to dst.
func minus(dst *frame, t *[frameSamples]int32, own *frame) {
	if own == nil {
		for i, v := range t {
			dst[i] = int16(max(math.MinInt16, min(math.MaxInt16, v)))
		}
		return
	}
	for i, v := range t {
		v -= int32(own[i])
		dst[i] = int16(max(math.MinInt16, min(math.MaxInt16, v)))
	}
}

// overlay is a sound mixed into what everyone hears but except: prompts
// played to the conference, the join and leave tones.
type overlay struct {
	segs     [][]int16 // shared samples, read only
	seg, pos int
	shift    uint         // attenuation, in 6 dB steps
	except   *Participant // does not hear it (who joined); nil: everyone does
	frame    frame
	cancel   atomic.Bool
	done     chan struct{} // closed once it has played or was cancelled
}

func newOverlay(segs [][]int16, shift uint, except *Participant) *overlay {
	return &overlay{segs: segs, shift: shift, except: except, done: make(chan struct{})}
}

// next fills o.frame with the next 20 ms (the last padded with silence)
// and reports whether there was any.
func (o *overlay) next() bool {
	if o.cancel.Load() {
		return false
	}
	n := 0
	for n < frameSamples && o.seg < len(o.segs) {
		s := o.segs[o.seg]
		k := copy(o.frame[n:], s[o.pos:])
		n += k
		if o.pos += k; o.pos >= len(s) {
			o.seg, o.pos = o.seg+1, 0
		}
	}
	if n == 0 {
		return false
	}
	clear(o.frame[n:])
	if o.shift > 0 {
		for i := range n {
			o.frame[i] >>= o.shift
		}
	}
	return true
}
