package calls

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	relay "github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/sbc"
)

// Trunks is the B2BUA's way to the PSTN: the site's SBCs (package sbc for
// the decisions, this file for the SIP). Toward an SBC Outpost hides the
// inside (RFC 5853): each trunk call is a dialog of its own (its Call-ID,
// tags, Via and Contact are the node's), the caller is named by a number of
// the account, and media is anchored in the node's relay so no phone
// address reaches the SBC, nor the SBC's a phone.
type Trunks struct {
	Health   interface{ States() map[string]sbc.State } // the OPTIONS prober
	Resolver interface {
		Resolve(ctx context.Context, t sbc.Target) ([]sbc.Endpoint, error)
	}
	Channels  *sbc.Channels // per trunk (max_channels)
	UserCalls *sbc.Channels // per user (the toll-fraud limit)
	ELINs     *sbc.ELINs
	Rand      sbc.Rand
	Anchor    Anchor // required: trunk calls always go through the relay
	Host      string // the node's host, in the From and P-Asserted-Identity it sends
	// TLS opens the connection to a trunk's address over TLS (transport
	// "tls") with that trunk's certificates before a request goes there;
	// nil: TLS trunks cannot be reached.
	TLS interface {
		Connect(ctx context.Context, t sbc.Target, ep sbc.Endpoint) error
	}
	// TLSPort is the node's SIP TLS listener port, the Contact of a call
	// over TLS (where the SBC sends its requests in the dialog); 0: the
	// node has none, and the SBC is given the node's default Contact.
	TLSPort int
}

// SetTrunks enables calls to and from the PSTN.
func (b *B2BUA) SetTrunks(t *Trunks) {
	b.mu.Lock()
	b.trunks = t
	b.mu.Unlock()
}

func (b *B2BUA) trunksSet() *Trunks {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.trunks
}

// TrunkDirectory is what trunk calls read beyond Directory.
type TrunkDirectory interface {
	Trunks(ctx context.Context) ([]account.Trunk, error)
}

// outcome is how one trunk attempt ended, for sbc.FailOver.
type outcome struct {
	attempt sbc.Attempt
	err     error
	reason  string // the SBC's reason phrase with attempt.Status
}

// callOut places an authenticated caller's call to a number outside the
// account (or an emergency number) on the caller's site's trunks, trying
// the next trunk when one fails before the callee is alerted, and connects
// the first answer to the caller through the relay.
func (b *B2BUA) callOut(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, dest Destination,
	hops int, rec *store.CallRecord) {
	t := b.trunksSet()
	ctx := ds.Context()
	emergency := dest.Kind == DestEmergency
	fail := func(code int, reason, disposition string) {
		_ = ds.Respond(code, reason, nil)
		b.finish(rec, code, disposition)
	}
	site, err := b.dir.Site(ctx, caller.Site)
	if err != nil {
		fail(500, "Server Internal Error", DispFailed)
		return
	}
	rec.Callee = dest.Number
	// SIP Early Offer toward the SBC always: a phone's INVITE without an
	// offer (delayed offer) gets one of the node's own (lateOffer), the
	// SBC's answer goes to the phone as the offer in the 200, and the
	// phone's answer comes in its ACK (OnAck).
	offer, late := req.Body(), len(req.Body()) == 0
	if late {
		offer = lateOffer
	}
	policy := sbc.SitePolicy(site) // the site's outbound setting, else the default
	err = policy.Check(sbc.OutboundRequest{Authenticated: true, UserID: caller.ID, Site: site,
		Number: dest.Number, Emergency: emergency, ActiveCalls: t.UserCalls.InUse(caller.ID)})
	if err != nil {
		b.log.Warn("outbound call refused", "call_id", req.CallID().Value(), "user", caller.SIP.Username, "number", dest.Number, "reason", err)
		fail(403, "Forbidden: "+err.Error(), DispRefused)
		return
	}
	userDone, ok := t.UserCalls.Acquire(caller.ID, policy.CallLimit(), emergency)
	if !ok {
		fail(403, "Forbidden: "+sbc.ErrTooManyCalls.Error(), DispRefused)
		return
	}
	trunkDir, ok := b.dir.(TrunkDirectory)
	var all []account.Trunk
	if ok {
		all, err = trunkDir.Trunks(ctx)
	}
	if !ok || err != nil {
		userDone()
		fail(500, "Server Internal Error", DispFailed)
		return
	}
	sel := sbc.Select(sbc.SelectRequest{Site: caller.Site, Emergency: emergency, Trunks: all,
		Health: t.Health.States(), InUse: t.Channels.Counts()}, t.Rand)
	if len(sel.Trunks) == 0 {
		userDone()
		b.log.Warn("no trunk for an outbound call", "call_id", req.CallID().Value(), "site", caller.Site, "skipped", sel.Skipped)
		fail(503, "Service Unavailable: no trunk to the PSTN is available", DispFailed)
		return
	}

	out := outCall{caller: caller, site: site, dest: dest, hops: hops, callerID: sbc.OutboundCallerID(caller, site)}
	if emergency {
		if err := b.emergencyCall(ctx, t, &out); err != nil {
			b.log.Error("emergency call: no location or ELIN; placing it without", "call_id", req.CallID().Value(), "error", err)
		}
	}
	onTimeout, bind := b.mediaTimeout()
	ms, err := t.Anchor.Allocate(req.CallID().Value(), onTimeout)
	if err != nil {
		userDone()
		b.log.Error("media relay", "call_id", req.CallID().Value(), "error", err)
		fail(503, "Service Unavailable: no media port", DispFailed)
		return
	}
	bind(ms)
	from := answeredParty(ds, caller)
	from.media = &media{sess: ms, side: 0}
	from.heard(req.Body()) // now anchored: the relay learns the phone's address (late offer: from its ACK)

	var ringing sync.Once
	onRinging := func(res *sip.Response, to *party) {
		if res.StatusCode != 180 && res.StatusCode != 183 {
			return
		}
		ringing.Do(func() {
			b.engCalleeRinging(caller, rec)
			var body []byte
			if len(res.Body()) > 0 && isSDP(res) && !late { // late offer: no offer in an unreliable 18x
				to.heard(res.Body())
				body = from.told(res.Body())
				_ = ds.Respond(res.StatusCode, res.Reason, body, sip.NewHeader("Content-Type", sdpType))
				return
			}
			_ = ds.Respond(res.StatusCode, res.Reason, nil)
		})
	}
	status, reason := 503, "Service Unavailable: every trunk failed"
	for _, trunk := range sel.Trunks {
		trunkDone, ok := t.Channels.AcquireTrunk(trunk, emergency)
		if !ok {
			continue
		}
		from.media.plain.Store(wantsSDES(trunk)) // the relay terminates an SRTP trunk's media
		to, sess, oc := b.tryTrunk(ctx, t, trunk, ms, offer, &out, onRinging)
		if oc.err == nil {
			b.connectOut(ds, req, from, to, sess, ms, rec, func() { trunkDone(); userDone() })
			return
		}
		trunkDone()
		if wantsSDES(trunk) { // early media may have keyed the relay for this trunk
			_ = ms.SetSRTP(1, relay.Crypto{}, relay.Crypto{})
		}
		if oc.attempt.Status != 0 {
			status, reason = oc.attempt.Status, oc.reason
		}
		if ctx.Err() != nil {
			status = 487
			break
		}
		b.log.Warn("trunk attempt failed", "call_id", req.CallID().Value(), "trunk", trunk.ID, "error", oc.err,
			"fail_over", sbc.FailOver(oc.attempt))
		if !sbc.FailOver(oc.attempt) {
			break
		}
	}
	ms.Close()
	userDone()
	switch {
	case status == 487:
		b.finish(rec, 487, DispCancelled) // sipgo answered the CANCEL with 487
	case status == 486 || status == 600:
		fail(486, "Busy Here", DispBusy)
	case status >= 500:
		fail(503, "Service Unavailable: every trunk failed", DispFailed)
	default:
		if reason == "" {
			reason = "Temporarily Unavailable"
			if status == 404 || status == 484 {
				reason = "Not Found"
			}
		}
		fail(status, reason, DispUnavailable)
	}
}

// lateOffer is the offer made to an SBC for a phone that sent none (its
// addresses are replaced by the relay's and its formats filtered to the
// trunk's codecs like any phone's offer): G.711 both laws, G.722, and
// RFC 4733 events.
var lateOffer = []byte("v=0\r\n" +
	"o=outpost 0 0 IN IP4 0.0.0.0\r\n" +
	"s=-\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"t=0 0\r\n" +
	"m=audio 9 RTP/AVP 0 8 9 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n")

// outCall is what every trunk attempt of one call shares.
type outCall struct {
	caller   account.User
	site     account.Site
	dest     Destination
	hops     int
	callerID string
	pidf     []byte // emergency: the caller's location (PIDF-LO)
}

// emergencyCall gives an emergency call an ELIN as its caller ID (a call
// back to it within 2 hours rings this caller) and the site's address as
// its location.
func (b *B2BUA) emergencyCall(ctx context.Context, t *Trunks, out *outCall) error {
	var errs []error
	if t.ELINs != nil && len(out.site.Emergency.ELINPool) > 0 {
		m, err := t.ELINs.Assign(ctx, out.site, out.caller.ID, b.now())
		if err == nil {
			out.callerID = sbc.EmergencyCallerID(m.ELIN, out.caller, out.site)
		} else {
			errs = append(errs, fmt.Errorf("assign an ELIN: %w", err))
		}
	}
	pidf, err := sbc.Location{Entity: "pres:" + out.callerID + "@" + t.Host, Address: out.site.Emergency.Address,
		Country: out.site.Country, At: b.now()}.PIDF()
	if err != nil {
		errs = append(errs, fmt.Errorf("location: %w", err))
	}
	out.pidf = pidf
	return errors.Join(errs...)
}

// tryTrunk sends the call to one trunk (each address the trunk's host
// resolves to in turn, on transport errors) and waits for the answer.
func (b *B2BUA) tryTrunk(ctx context.Context, t *Trunks, trunk account.Trunk, ms MediaSession, offer []byte,
	out *outCall, onRinging func(*sip.Response, *party)) (*party, *sipgo.DialogClientSession, outcome) {
	eps, err := t.Resolver.Resolve(ctx, sbc.TargetOf(trunk))
	if err != nil {
		return nil, nil, outcome{attempt: sbc.Attempt{Emergency: out.dest.Kind == DestEmergency, TransportError: true},
			err: fmt.Errorf("resolve %s: %w", trunk.Host, err)}
	}
	var oc outcome
	for _, ep := range eps {
		to := &party{media: &media{sess: ms, side: 1, codecs: trunk.Codecs}}
		if wantsSDES(trunk) { // a fresh key per attempt
			if to.media.srtp, err = offerSDES(); err != nil {
				return nil, nil, outcome{attempt: sbc.Attempt{Emergency: out.dest.Kind == DestEmergency, Status: 500},
					err: fmt.Errorf("trunk %s: %w", trunk.ID, err), reason: "Server Internal Error"}
			}
		}
		var sess *sipgo.DialogClientSession
		sess, oc = b.trunkLeg(ctx, t, trunk, ep, to, offer, out, onRinging)
		if oc.err == nil {
			to.id, to.callID, to.sess = sess.ID, sess.InviteRequest.CallID().Value(), sess
			if strings.EqualFold(ep.Transport, "tls") {
				target, ep := sbc.TargetOf(trunk), ep
				to.sess = tlsLeg{sess, func(ctx context.Context) error { return t.TLS.Connect(ctx, target, ep) }}
			}
			to.user = account.User{Name: out.dest.Number, SIP: account.SIPCredentials{Username: out.dest.Number}}
			to.target = remoteTarget(sess.InviteResponse, sess.InviteRequest.Recipient)
			to.heard(sess.InviteResponse.Body())
			return to, sess, oc
		}
		if !oc.attempt.TransportError && !oc.attempt.NoAnswer {
			break // the SBC answered: its other addresses would say the same
		}
	}
	return nil, nil, oc
}

// trunkLeg sends one INVITE to one address of a trunk.
func (b *B2BUA) trunkLeg(ctx context.Context, t *Trunks, trunk account.Trunk, ep sbc.Endpoint, to *party, offer []byte,
	out *outCall, onRinging func(*sip.Response, *party)) (*sipgo.DialogClientSession, outcome) {
	att := sbc.Attempt{Emergency: out.dest.Kind == DestEmergency}
	if _, err := anchoredSDP(offer, to.media.sess.Local(1), trunk.Codecs); err != nil {
		att.Status = 488
		return nil, outcome{attempt: att, err: err, reason: "Not Acceptable Here: no codec of the trunk"}
	}
	sdp := to.told(offer)
	ta := trunkAddressOf(t, trunk, ep, out.dest.Number, out.callerID, out.caller.Name)
	transport := ta.transport
	if transport == "TLS" {
		if t.TLS == nil {
			att.TransportError = true
			return nil, outcome{attempt: att, err: fmt.Errorf("trunk %s: tls toward sbcs is not set up on this node", trunk.ID)}
		}
		if err := t.TLS.Connect(ctx, sbc.TargetOf(trunk), ep); err != nil {
			att.TransportError = true
			return nil, outcome{attempt: att, err: fmt.Errorf("trunk %s at %s: %w", trunk.ID, ep.Addr(), err)}
		}
	}
	inv := ta.request(sip.INVITE)
	if transport == "TLS" && t.TLSPort != 0 {
		contact := sip.Uri{Scheme: "sip", User: "outpost", Host: t.Host, Port: t.TLSPort, UriParams: sip.NewParams()}
		contact.UriParams.Add("transport", "tls")
		inv.AppendHeader(&sip.ContactHeader{Address: contact})
	}
	mf := sip.MaxForwardsHeader(out.hops)
	inv.AppendHeader(&mf)
	if out.pidf != nil {
		cid := "loc-" + sip.GenerateTagN(12) + "@" + t.Host
		ctype, body, err := sbc.EmergencyBody(sdp, out.pidf, cid)
		if err == nil {
			inv.AppendHeader(sip.NewHeader("Content-Type", ctype))
			inv.AppendHeader(sip.NewHeader(sbc.HeaderGeolocation, sbc.GeolocationHeader(cid)))
			inv.AppendHeader(sip.NewHeader(sbc.HeaderGeolocationRouting, sbc.GeolocationRoutingYes))
			inv.SetBody(body)
		}
	}
	if inv.Body() == nil {
		inv.AppendHeader(sip.NewHeader("Content-Type", sdpType))
		inv.SetBody(sdp)
	}

	// No answer at all within 4 s: the next trunk (the INVITE's own timer
	// would take 32 s).
	// Nothing came back, so there is nothing to CANCEL (RFC 3261 §9.1):
	// sipgo is told to give up at once rather than wait out Timer B.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	answered := make(chan struct{})
	var once sync.Once
	var noAnswer atomic.Bool
	timer := time.AfterFunc(sbc.InviteAnswerTimeout, func() {
		select {
		case <-answered:
		default:
			noAnswer.Store(true)
			cancel(sipgo.WaitAnswerForceCancelErr)
		}
	})
	defer timer.Stop()
	sess, err := b.dialogs.writeInvite(actx, inv)
	if err != nil {
		att.TransportError = true
		return nil, outcome{attempt: att, err: fmt.Errorf("send INVITE to %s: %w", ep.Addr(), err)}
	}
	err = sess.WaitAnswer(actx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		once.Do(func() { close(answered) })
		if res.StatusCode == 180 || res.StatusCode == 183 {
			att.Alerted = true
		}
		onRinging(res, to)
		return nil
	}})
	if err == nil {
		if err := to.media.key(sess.InviteResponse.Body()); err != nil {
			// The SBC asked for SRTP but answered without a key the relay
			// can use: the call cannot be carried; the next trunk may.
			go hangUpAnswered(sess)
			_ = sess.Close()
			att.Status, att.Unusable = 488, true
			return nil, outcome{att, fmt.Errorf("trunk %s at %s: answer: %w", trunk.ID, ep.Addr(), err),
				"Not Acceptable Here: the SBC's answer has no usable SRTP key"}
		}
		return sess, outcome{attempt: att}
	}
	att.NoAnswer = noAnswer.Load()
	var de *sipgo.ErrDialogResponse
	reason := ""
	switch {
	case errors.As(err, &de):
		att.Status, reason = de.Res.StatusCode, de.Res.Reason
	case att.NoAnswer:
	case ctx.Err() != nil:
		att.Status = 487
	default:
		att.TransportError = true
	}
	if res := sess.InviteResponse; res != nil && res.IsSuccess() {
		go hangUpAnswered(sess) // the answer crossed our CANCEL
	}
	_ = sess.Close()
	return nil, outcome{att, fmt.Errorf("trunk %s at %s: %w", trunk.ID, ep.Addr(), err), reason}
}

// tlsLeg is a trunk dialog over TLS: before each request in the dialog
// the connection to the SBC is opened again if it was lost (sipgo cannot
// dial it: each trunk has its own certificates).
type tlsLeg struct {
	*sipgo.DialogClientSession
	connect func(ctx context.Context) error
}

func (l tlsLeg) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l.DialogClientSession.Do(ctx, req)
}

func (l tlsLeg) WriteRequest(req *sip.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), sbc.InviteAnswerTimeout)
	defer cancel()
	if err := l.connect(ctx); err != nil {
		return err
	}
	return l.DialogClientSession.WriteRequest(req)
}

func (l tlsLeg) Bye(ctx context.Context) error {
	if err := l.connect(ctx); err != nil {
		return err
	}
	return l.DialogClientSession.Bye(ctx)
}

// hangUpAnswered ends a trunk dialog answered but not wanted: ACK, BYE.
func hangUpAnswered(sess *sipgo.DialogClientSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
}

// connectOut connects an answered trunk call to the caller. done releases
// the call's trunk channel and the caller's outbound slot; it runs, with
// the relay session's close, when the trunk's dialog ends.
func (b *B2BUA) connectOut(ds *sipgo.DialogServerSession, req *sip.Request, from, to *party,
	sess *sipgo.DialogClientSession, ms MediaSession, rec *store.CallRecord, done func()) {
	if err := sess.Ack(context.Background()); err != nil {
		b.log.Warn("ack trunk", "call_id", req.CallID().Value(), "error", err)
	}
	context.AfterFunc(sess.Context(), func() { ms.Close(); done() })
	rec.Answer, rec.Status = time.Now().UTC(), 200
	c := b.connect(from, to, rec)
	b.engConnected(from.user, account.User{}, rec, "")
	answer := from.told(sess.InviteResponse.Body())
	if err := ds.Respond(200, "OK", answer, sip.NewHeader("Content-Type", sdpType)); err != nil {
		b.log.Warn("answer caller", "call_id", req.CallID().Value(), "error", err)
		if b.drop(c) {
			_ = sess.Bye(context.Background())
		}
		return
	}
	b.log.Info("trunk call connected", "call_id", req.CallID().Value(), "from", from.user.SIP.Username, "to", to.user.SIP.Username)
}

// mediaTimeout is the relay's onTimeout for a session about to be
// allocated, and bind, which gives it that session. When media stops (the
// relay saw nothing either way for its timeout) the call the session
// belongs to now — after a transfer, not the one it was allocated for —
// is ended on both sides and recorded as such.
func (b *B2BUA) mediaTimeout() (onTimeout func(), bind func(MediaSession)) {
	var held atomic.Pointer[MediaSession]
	onTimeout = func() {
		if ms := held.Load(); ms != nil {
			b.endStalled(*ms)
		}
	}
	return onTimeout, func(ms MediaSession) { held.Store(&ms) }
}

// endStalled ends the call anchored in ms.
func (b *B2BUA) endStalled(ms MediaSession) {
	var c *call
	b.mu.Lock()
	for _, cc := range b.calls {
		for _, p := range cc.parties {
			if p.media != nil && p.media.sess == ms {
				c = cc
			}
		}
	}
	b.mu.Unlock()
	if c == nil || !b.end(c, DispMediaTimeout) {
		return
	}
	b.log.Warn("media stopped; call ended", "call_id", c.parties[0].callID)
	for _, p := range c.parties {
		b.hangUp(p)
	}
}

// remoteAddr is a request's source address.
func remoteAddr(req *sip.Request) (netip.AddrPort, bool) {
	a, err := netip.ParseAddrPort(req.Source())
	return a, err == nil
}
