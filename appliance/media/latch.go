package media

import (
	"net/netip"
	"time"
)

// latchPolicy says when a side's remote address may move once it has been
// learned from the media (symmetric RTP).
type latchPolicy struct {
	// silence is how long the latched source must have been quiet before
	// another source may take its place.
	silence time.Duration
	// newSSRC lets a source with an SSRC other than the latched one take
	// over at once (a far end that restarted its media, or moved it
	// without a re-INVITE).
	newSSRC bool
}

// latch is the learned remote address of one socket. It is pure: the
// caller passes the clock, and one goroutine (the socket's reader) owns it.
type latch struct {
	addr netip.AddrPort // zero until the first packet
	ssrc uint32         // SSRC last seen from addr
	last time.Duration  // relay clock of the last packet from addr
}

// accept decides whether a packet from src carrying ssrc, received at now,
// is taken. moved reports that the latch now points at src where it
// pointed elsewhere (or nowhere) before.
func (l *latch) accept(p latchPolicy, src netip.AddrPort, ssrc uint32, now time.Duration) (ok, moved bool) {
	switch {
	case l.addr == src:
	case !l.addr.IsValid(),
		now-l.last >= p.silence,
		p.newSSRC && ssrc != l.ssrc:
		l.addr, moved = src, true
	default:
		return false, false
	}
	l.ssrc, l.last = ssrc, now
	return true, moved
}

// reset forgets the learned address (the SDP announced a new one).
func (l *latch) reset() { *l = latch{} }
