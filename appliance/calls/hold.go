package calls

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// Music on hold. A party holds the call with an offer whose direction is
// sendonly or inactive (or whose address is 0.0.0.0, RFC 2543); the other
// party then hears music played by the node, on an IVR endpoint of its own
// (one socket, the node's one pacing goroutine), looping
// prompts.MusicOnHold until the hold ends:
//
//   - A phone whose media flows directly (an internal call) is re-INVITEd
//     toward the endpoint (sendonly: the node sends, the phone listens);
//     the holder is answered "inactive", so nothing flows between the two
//     phones while the call is held. Resuming passes the holder's new
//     offer to the other phone as any re-INVITE, which points it back.
//   - A party anchored in the relay (an SBC, or the phone of a PSTN call)
//     is not re-INVITEd: the endpoint takes the place of the other side's
//     party in the relay session (the relay's source for that party
//     becomes the player) and the holder is answered "inactive" by the
//     relay, so it sends nothing that would compete. Resuming points the
//     relay back at the holder.
//
// Both parties holding: nobody hears music, both are inactive; either
// resuming hears the music until the other resumes too. The music stops
// the moment the call resumes, ends, is transferred or mixed into a
// conference. Parked calls use the same endpoint (park.go).

// holdState is a call's hold: who holds it and the music playing.
type holdState struct {
	hmu sync.Mutex // one hold change at a time (a second one is answered 491)

	mu    sync.Mutex
	by    [2]bool // parties[i] holds the call
	music *music  // nil: none playing
}

// music is one party's music on hold.
type music struct {
	leg     IVRLeg
	to      *party
	restore func() // an anchored party: the relay side given back
}

// stop ends the music and gives the relay side back.
func (m *music) stop() {
	m.leg.Close()
	if m.restore != nil {
		m.restore()
	}
}

// musicTo is the party of a call held as by that hears music: the one
// held by the other, when it does not hold too; -1 none.
func musicTo(by [2]bool) int {
	switch {
	case by[0] && !by[1]:
		return 1
	case by[1] && !by[0]:
		return 0
	}
	return -1
}

// playsMusic reports whether the node has the media engine music on hold
// needs.
func (b *B2BUA) playsMusic() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ivr != nil
}

// isHold reports whether an offer puts the call on hold: its audio (or
// session) direction is sendonly or inactive, or its connection address
// is the unspecified one.
func isHold(sdp []byte) bool {
	for _, line := range sdpLines(sdp) {
		switch {
		case line == "a=sendonly", line == "a=inactive":
			return true
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) == 3 && (f[2] == "0.0.0.0" || f[2] == "::") {
				return true
			}
		}
	}
	return false
}

func (c *call) index(p *party) int {
	if c.parties[1] == p {
		return 1
	}
	return 0
}

// held reports whether either party holds the call.
func (c *call) held() bool {
	c.hold.mu.Lock()
	defer c.hold.mu.Unlock()
	return c.hold.by[0] || c.hold.by[1]
}

// stopMusic ends the music of c, if any, and forgets who holds it (the
// call resumes, ends or changes hands).
func (c *call) stopMusic() {
	c.hold.mu.Lock()
	m := c.hold.music
	c.hold.music = nil
	c.hold.by = [2]bool{}
	c.hold.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// openMusic starts music toward p, whose session description is sdp:
// toward a direct phone, an endpoint aimed at the phone (which the caller
// must point the phone at: leg.Addr()); toward an anchored party, an
// endpoint in the place of the relay's other side, whose party (holder,
// nil: gone) gets the side back when the music stops.
func (b *B2BUA) openMusic(p *party, sdp []byte, holder *party) (*music, error) {
	b.mu.Lock()
	ivrs := b.ivr
	b.mu.Unlock()
	if ivrs == nil {
		return nil, errors.New("no media engine on this node")
	}
	codec, pt, ok := ivrFormats(sdp, nil)
	if !ok {
		return nil, errors.New("the party speaks neither PCMU nor PCMA")
	}
	if p.media == nil {
		peer, ok := sdpRemote(sdp)
		if !ok {
			return nil, errors.New("the party's description has no audio address")
		}
		leg, err := ivrs.Open(p.callID, peer, codec, pt)
		if err != nil {
			return nil, err
		}
		leg.Loop(prompts.MusicOnHold)
		return &music{leg: leg, to: p}, nil
	}
	if p.media.srtp != nil {
		return nil, errors.New("the relay side facing the party speaks SRTP")
	}
	ms, side := p.media.sess, 1-p.media.side
	leg, err := ivrs.Open(p.callID, ms.Local(side), codec, pt)
	if err != nil {
		return nil, err
	}
	ms.SetRemote(side, leg.Addr())
	leg.Loop(prompts.MusicOnHold)
	m := &music{leg: leg, to: p}
	if holder != nil {
		m.restore = func() {
			heard, _ := holder.lastSDP()
			if addr, ok := sdpRemote(heard); ok {
				ms.SetRemote(side, addr)
			}
		}
	}
	return m, nil
}

// holdInDialog handles a re-INVITE or UPDATE from party from of c when it
// holds or resumes the call or the call is held; false when it is an
// ordinary one, which passInDialog passes on (a resume, after the music
// stopped, is one).
func (b *B2BUA) holdInDialog(c *call, from *party, req *sip.Request, tx sip.ServerTransaction) bool {
	if !b.playsMusic() {
		return false // no media engine: holds pass between the parties as they are
	}
	if (!req.IsInvite() && req.Method != sip.UPDATE) || !isSDP(req) || len(req.Body()) == 0 {
		if req.IsInvite() && len(req.Body()) == 0 && c.held() {
			// A re-INVITE without offer while held: offer what it has.
			_, sent := from.lastSDP()
			b.answerInDialog(req, tx, sent)
			return true
		}
		return false
	}
	if !c.hold.hmu.TryLock() {
		respond(tx, req, 491, "Request Pending: the call's hold is changing")
		return true
	}
	defer c.hold.hmu.Unlock()
	i := c.index(from)
	c.hold.mu.Lock()
	by := c.hold.by
	c.hold.mu.Unlock()
	was := by[0] || by[1]
	by[i] = isHold(req.Body())
	if !was && !by[0] && !by[1] {
		return false
	}
	from.heard(req.Body())
	if !by[0] && !by[1] {
		c.stopMusic()
		b.log.Info("call resumed", "call_id", from.callID, "by", from.user.SIP.Username)
		return false
	}
	answer := b.applyHold(c, i, by, req.Body())
	b.answerInDialog(req, tx, from.told(answer))
	return true
}

// answerInDialog answers an in-dialog request 200 with a description.
func (b *B2BUA) answerInDialog(req *sip.Request, tx sip.ServerTransaction, sdp []byte) {
	out := sip.NewResponseFromRequest(req, 200, "OK", sdp)
	out.AppendHeader(sip.HeaderClone(&b.dialogs.ua.ContactHDR))
	if len(sdp) > 0 {
		out.AppendHeader(sip.NewHeader("Content-Type", sdpType))
	}
	_ = tx.Respond(out)
}

// applyHold moves c to the hold by (someone holds), party i having asked
// with offer (nil: the web UI asked for it), and returns the description
// for party i (not yet through told): the music's endpoint, sendonly, when
// i is the one to hear it; else the other party's, inactive.
func (b *B2BUA) applyHold(c *call, i int, by [2]bool, offer []byte) []byte {
	t := musicTo(by)
	c.hold.mu.Lock()
	old := c.hold.music
	c.hold.by = by
	keep := old != nil && t >= 0 && old.to == c.parties[t] && t != i
	if !keep {
		c.hold.music = nil
	}
	c.hold.mu.Unlock()
	if old != nil && !keep {
		old.stop()
	}
	me, other := c.parties[i], c.parties[1-i]
	var m *music
	if t >= 0 && !keep {
		p := c.parties[t]
		sdp, _ := p.lastSDP()
		if t == i && offer != nil {
			sdp = offer
		}
		var err error
		if m, err = b.openMusic(p, sdp, c.other(p)); err != nil {
			b.log.Warn("music on hold: not played", "call_id", p.callID, "to", p.user.SIP.Username, "error", err)
		} else {
			c.hold.mu.Lock()
			c.hold.music = m
			c.hold.mu.Unlock()
			context.AfterFunc(c.parties[0].sess.Context(), c.stopMusic)
			context.AfterFunc(c.parties[1].sess.Context(), c.stopMusic)
		}
	}
	b.log.Info("call held", "call_id", me.callID, "holds", [2]bool(by), "music_to", t)
	if m != nil && t == 1-i && other.media == nil {
		// The other phone is pointed at the music.
		if err := b.pointAtMusic(other, m, "sendonly"); err != nil {
			b.log.Warn("music on hold: re-INVITE the held party", "call_id", other.callID, "error", err)
		}
	}
	c.hold.mu.Lock()
	cur := c.hold.music
	c.hold.mu.Unlock()
	if cur != nil && me.media == nil {
		heard, _ := me.lastSDP()
		if t == i {
			return musicSDP(cur, heard, "sendonly")
		}
		// The holder is pointed at the music's socket too, so what it
		// sends (a=recvonly answers its sendonly) never reaches the held
		// phone.
		dir := "inactive"
		if offer != nil && answerDirectionOf(offer) == "recvonly" {
			dir = "recvonly"
		}
		return musicSDP(cur, heard, dir)
	}
	sdp, _ := other.lastSDP()
	dir := "inactive"
	if t == i { // anchored: the relay sends the music
		dir = "sendonly"
	}
	return withDirection(sdp, dir)
}

// musicSDP is the description pointing a direct phone at m's endpoint,
// in the law the phone spoke (sdp).
func musicSDP(m *music, sdp []byte, dir string) []byte {
	codec, pt, ok := ivrFormats(sdp, nil)
	if !ok {
		codec, pt = g711.PCMU, 0
	}
	return withDirection(ivrAnswer(m.leg.Addr(), codec, pt), dir)
}

// pointAtMusic re-INVITEs a direct phone toward m's endpoint.
func (b *B2BUA) pointAtMusic(p *party, m *music, dir string) error {
	heard, _ := p.lastSDP()
	return b.reinvite(p, musicSDP(m, heard, dir))
}

// reinvite sends p a re-INVITE with offer and acknowledges its answer.
func (b *B2BUA) reinvite(p *party, offer []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	res, err := b.offer(ctx, p, sip.INVITE, offer, sdpType)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return fmt.Errorf("answered %d %s", res.StatusCode, res.Reason)
	}
	b.ack(p, nil)
	return nil
}

// webHold holds (on) or resumes the call c for party p without p's phone
// asking (the call widget): the other party hears music and p's phone is
// made inactive; resuming joins the two again.
func (b *B2BUA) webHold(c *call, p *party, on bool) error {
	c.hold.hmu.Lock()
	defer c.hold.hmu.Unlock()
	i := c.index(p)
	c.hold.mu.Lock()
	by := c.hold.by
	c.hold.mu.Unlock()
	by[i] = on
	if by[0] || by[1] {
		return b.reinvite(p, b.applyHold(c, i, by, nil))
	}
	c.stopMusic()
	far := c.other(p)
	heard, _ := p.lastSDP()
	if err := b.reinvite(far, sendRecv(heard)); err != nil {
		return fmt.Errorf("re-INVITE the other party: %w", err)
	}
	answer, _ := far.lastSDP()
	if err := b.reinvite(p, sendRecv(answer)); err != nil {
		return fmt.Errorf("re-INVITE your phone: %w", err)
	}
	return nil
}
