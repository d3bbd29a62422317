package calls

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/ivr"
	"github.com/outpost-voice/outpost/sdg"
)

// IVR menus. The node answers the caller itself: the call is anchored in
// the media relay (a call from a trunk is already), the caller's side of
// the session answered with one G.711 law of its offer and RFC 4733
// events; the other side's remote is the node's IVR endpoint, which plays
// the prompts into the relay and hears the caller's keys. When a member
// answers later, that side is pointed at the member's phone: the caller
// hears the member without a re-INVITE, since its media never moves.

// IVR opens the node's IVR endpoints.
type IVR interface {
	Open(callID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (IVRLeg, error)
}

// IVRLeg is one call's IVR endpoint (package ivr's Endpoint).
type IVRLeg interface {
	Addr() netip.AddrPort
	Play(ctx context.Context, names ...string) error
	// Menu plays names and returns the first key, ivr.ErrNoInput when
	// none came within timeout after them.
	Menu(ctx context.Context, names []string, timeout time.Duration) (byte, error)
	Key(k byte)
	// SendDigits sends keys as RFC 4733 events (a call-out's extension).
	SendDigits(ctx context.Context, keys string) error
	// Record hands the caller's audio to sink until it returns false, a
	// key (returned), idle without audio (ivr.ErrNoInput) or the end.
	Record(ctx context.Context, idle time.Duration, sink func([]int16) bool) (byte, error)
	// PlaySamples plays audio; a key pressed ends it and is returned.
	PlaySamples(ctx context.Context, samples []int16) (byte, error)
	// Loop plays a prompt over and over (music on hold) until Stop.
	Loop(name string)
	Stop()
	Close()
}

// SetIVR enables IVR menus.
func (b *B2BUA) SetIVR(i IVR) {
	b.mu.Lock()
	b.ivr = i
	b.mu.Unlock()
}

// ivrCall is a call the node answered for an IVR.
type ivrCall struct {
	leg  IVRLeg
	ms   MediaSession
	sent []byte // the description the caller was answered with (relay side 1)
	held bool   // the caller was told the call goes on (holdForMember)
}

func (b *B2BUA) ivrOf(id string) *ivrCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ivrs[id]
}

// ivrAnswered says the node answered this caller for an IVR.
func (b *B2BUA) ivrAnswered(ds *sipgo.DialogServerSession) bool { return b.ivrOf(ds.ID) != nil }

// takeIVR ends the IVR of a call a member now takes: the endpoint stops
// before the relay is pointed at the member.
func (b *B2BUA) takeIVR(id string) *ivrCall {
	b.mu.Lock()
	iv := b.ivrs[id]
	delete(b.ivrs, id)
	b.mu.Unlock()
	if iv != nil {
		iv.leg.Close()
	}
	return iv
}

// endIVR tells a caller the IVR answered and nobody took that nobody is
// available, and hangs up.
func (b *B2BUA) endIVR(ds *sipgo.DialogServerSession) {
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ds.Context(), 15*time.Second)
	defer cancel()
	_ = iv.leg.Play(ctx, "not-available", "goodbye")
	b.takeIVR(ds.ID)
	_ = ds.Bye(ctx)
}

// menu plays an IVR menu (answering the caller first) and reports the key
// or the timeout to the engine.
func (b *B2BUA) menu(ds *sipgo.DialogServerSession, req *sip.Request, rt *route, a sdg.Menu, c *sdg.Call) sdg.Action {
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		var err error
		if iv, err = b.answerForIVR(ds, req, rt); err != nil {
			b.log.Warn("ivr: cannot answer", "call_id", req.CallID().Value(), "error", err)
			return sdg.Fail{Status: 488, Err: fmt.Errorf("%w: %v", sdg.ErrBadRoute, err), Path: c.Path()}
		}
	}
	ctx := ds.Context()
	key, err := iv.leg.Menu(ctx, []string{a.Notice, a.Prompt}, a.Timeout)
	switch {
	case err == nil:
		return c.Next(sdg.Digit{Step: a.Step, Key: string(key)})
	case errors.Is(err, ivr.ErrNoInput):
		return c.Next(sdg.InputTimeout{Step: a.Step})
	default: // the caller hung up
		return c.Next(sdg.Hangup{})
	}
}

// answerForIVR answers the caller with the relay and opens the IVR
// endpoint as the relay's other side.
func (b *B2BUA) answerForIVR(ds *sipgo.DialogServerSession, req *sip.Request, rt *route) (*ivrCall, error) {
	b.mu.Lock()
	ivrs, t := b.ivr, b.trunks
	b.mu.Unlock()
	if ivrs == nil || t == nil {
		return nil, errors.New("no media engine on this node")
	}
	offer := req.Body()
	if len(offer) == 0 {
		return nil, errors.New("an IVR needs an offer in the INVITE")
	}
	codec, dtmfPT, ok := ivrFormats(offer, rt.codecs)
	if !ok {
		return nil, errors.New("the offer has neither PCMU nor PCMA")
	}
	if rt.media == nil { // a phone's call: anchored now, the caller on side 1 as a trunk would be
		onTimeout, bind := b.mediaTimeout()
		ms, err := t.Anchor.Allocate(req.CallID().Value(), onTimeout)
		if err != nil {
			return nil, err
		}
		bind(ms)
		context.AfterFunc(ds.Context(), ms.Close)
		rt.media = ms
	}
	caller := &media{sess: rt.media, side: 1, codecs: rt.codecs, srtp: rt.srtp}
	if remote, ok := sdpRemote(offer); ok {
		rt.media.SetRemote(1, remote)
	}
	leg, err := ivrs.Open(req.CallID().Value(), rt.media.Local(0), codec, dtmfPT)
	if err != nil {
		return nil, err
	}
	rt.media.SetRemote(0, leg.Addr())
	sdp := caller.protect(ivrAnswer(rt.media.Local(1), codec, dtmfPT))
	iv := &ivrCall{leg: leg, ms: rt.media, sent: sdp}
	b.mu.Lock()
	b.ivrs[ds.ID] = iv
	b.mu.Unlock()
	context.AfterFunc(ds.Context(), func() { b.takeIVR(ds.ID) })
	if err := ds.Respond(200, "OK", sdp, sip.NewHeader("Content-Type", sdpType)); err != nil {
		b.takeIVR(ds.ID)
		return nil, fmt.Errorf("answer: %w", err)
	}
	b.log.Info("ivr answered", "call_id", req.CallID().Value(), "codec", codec.String())
	return iv, nil
}

// ivrFormats picks the first G.711 law of an offer's audio (allowed by
// codecs, when given) and its telephone-event payload type (0: none).
func ivrFormats(offer []byte, codecs []string) (g711.Codec, uint8, bool) {
	var law *g711.Codec
	var pt uint8
	for _, line := range sdpLines(offer) {
		switch {
		case strings.HasPrefix(line, "m=audio ") && law == nil:
			f := strings.Fields(line)
			for _, format := range f[min(3, len(f)):] {
				c, err := g711.ParseCodec(format)
				if err == nil && (codecs == nil || allows(codecs, c)) {
					law = &c
					break
				}
			}
		case strings.HasPrefix(line, "a=rtpmap:"):
			n, enc, _ := strings.Cut(strings.TrimPrefix(line, "a=rtpmap:"), " ")
			if strings.HasPrefix(strings.ToLower(enc), "telephone-event/8000") {
				if v, err := strconv.ParseUint(n, 10, 8); err == nil && pt == 0 {
					pt = uint8(v)
				}
			}
		}
	}
	if law == nil {
		return 0, 0, false
	}
	return *law, pt, true
}

func allows(codecs []string, c g711.Codec) bool {
	for _, name := range codecs {
		if strings.EqualFold(name, c.String()) || name == strconv.Itoa(int(c)) {
			return true
		}
	}
	return false
}

// ivrAnswer is the description answering a caller for an IVR: the relay's
// address, one G.711 law and the telephone-events when offered.
func ivrAnswer(local netip.AddrPort, codec g711.Codec, dtmfPT uint8) []byte {
	ip := "IP4"
	if local.Addr().Is6() {
		ip = "IP6"
	}
	addr := local.Addr().String()
	var sb strings.Builder
	fmt.Fprintf(&sb, "v=0\r\no=outpost %d 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n", time.Now().UnixNano()%1e9, ip, addr, ip, addr)
	formats := strconv.Itoa(int(codec))
	if dtmfPT != 0 {
		formats += " " + strconv.Itoa(int(dtmfPT))
	}
	fmt.Fprintf(&sb, "m=audio %d RTP/AVP %s\r\na=rtpmap:%d %s/8000\r\n", local.Port(), formats, codec, codec.String())
	if dtmfPT != 0 {
		fmt.Fprintf(&sb, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmfPT, dtmfPT)
	}
	sb.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(sb.String())
}

// ivrKey takes a key a caller in an IVR sent by SIP INFO; false when the
// request is not that.
func (b *B2BUA) ivrKey(req *sip.Request, tx sip.ServerTransaction) bool {
	ds := b.dialogs.matchServer(req)
	if ds == nil {
		return false
	}
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		return false
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, err := dtmf.ParseInfo(ct, req.Body())
	if err != nil {
		respond(tx, req, 415, "Unsupported Media Type: send keys as application/dtmf-relay or application/dtmf")
		return true
	}
	iv.leg.Key(d.Key)
	respond(tx, req, 200, "OK")
	return true
}

// holdForMember tells a caller the IVR answered that the call goes on to
// someone, while they ring.
func (b *B2BUA) holdForMember(ds *sipgo.DialogServerSession) {
	b.mu.Lock()
	iv := b.ivrs[ds.ID]
	first := iv != nil && !iv.held
	if first {
		iv.held = true
	}
	b.mu.Unlock()
	if first {
		go func() { _ = iv.leg.Play(ds.Context(), "transferring") }()
	}
}

// ivrMember is a member's leg as it is offered after an IVR: the session
// the caller was answered with, pointed at the relay's other side.
func ivrMemberOffer(iv *ivrCall) []byte {
	off, _ := anchoredSDP(iv.sent, iv.ms.Local(0), nil)
	return plainSDP(off)
}
