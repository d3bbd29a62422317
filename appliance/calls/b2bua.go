package calls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Authenticator authenticates a caller (Proxy-Authorization, 407).
type Authenticator interface {
	AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool)
}

// Journal records finished calls (local-first, shared with the cluster).
type Journal interface {
	Record(r store.CallRecord)
}

// Directory is what the B2BUA reads: the configuration and the bindings.
type Directory interface {
	Account(ctx context.Context) (account.Account, error)
	LookupDial(ctx context.Context, dial string) (store.Target, error)
	Site(ctx context.Context, id string) (account.Site, error)
	UserByID(ctx context.Context, id string) (account.User, error)
	Bindings(ctx context.Context, aor string, now time.Time) ([]store.Binding, error)
	Members(ctx context.Context) ([]store.Member, error)
}

// B2BUA connects calls between phones: every call is an inbound leg from
// the caller and an outbound leg to the callee, each its own SIP dialog.
// Media flows directly between the phones (their SDP is passed through).
type B2BUA struct {
	nodeID  string
	hopKey  []byte // authenticates INVITEs between the nodes of the cluster
	auth    Authenticator
	dir     Directory
	journal Journal
	dialogs *dialogs
	log     *slog.Logger
	now     func() time.Time
	hops    hopSeen // hop INVITEs accepted, against replays

	mu     sync.Mutex
	calls  map[string]*call // by the dialog ID of either party
	trunks *Trunks          // nil: no way to the PSTN

	rotations   Rotations                    // rotating groups' state (groups.go)
	ivr         IVR                          // IVR endpoints (ivr.go); nil: no IVR
	ivrs        map[string]*ivrCall          // calls answered for an IVR, by the caller's dialog ID
	ringing     map[string]int               // by user ID: legs ringing that user's phones now
	walking     map[string]*walkView         // group calls being routed, by the caller's dialog ID
	lastCallEnd map[string]time.Time         // by user ID: when their last call here ended (longest_idle)
	onCalls     map[string]int               // by user ID: connected calls here they are a party of (busy)
	ringLegs    map[string][]*ringLeg        // by record ID: legs ringing users' phones (control.go)
	originating map[string]originating       // by record ID: click-to-calls not connected yet
	mailboxes   Mailboxes                    // voicemail (voicemail.go); nil: none
	mixer       Mixer                        // the conference bridge; nil: no conferences
	confs       map[string]*conf             // calls with invitations, by record ID (conference.go)
	confDialogs map[string]*conf             // their participants' dialogs
	confRecs    map[string]*store.CallRecord // call-outs' own records, by dialog ID
	consults    map[string]string            // the widget's consult invitations, by consultKey
	dialins     *dialInState                 // live calls' PINs, PIN guessers, SMS sent (dialin.go)
	confCount   atomic.Int64                 // len(confs), read without b.mu (finish)
	groupIdx    struct {                     // the SDGs and numbers[] entries, briefly cached (groups)
		sync.Mutex
		idx *groupIndex
	}
	parks      *parkLot    // parked calls (park.go)
	parkPeers  ParkPeers   // asks the other members about their park slots (parkpeers.go); nil: none
	engaged    engagements // the users' calls as the call widget sees them (engage.go)
	trunkAddrs struct {    // the trunks' addresses, briefly cached (trunkEndpoints)
		sync.Mutex
		at   time.Time
		list []trunkEndpoint
	}
	active atomic.Int64
}

// session is what Outpost does in a dialog, whichever side began it.
type session interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
	Bye(ctx context.Context) error
	Context() context.Context
}

// party is one leg of a connected call: Outpost's dialog with a phone (or
// with the node holding the phone's flow).
type party struct {
	id     string // dialog ID
	callID string // the dialog's SIP Call-ID
	sess   session
	user   account.User // who is on this leg (name and username only on a node-to-node leg)
	target sip.Uri      // remote target for in-dialog requests
	origin origin       // the o= line this party has seen
	media  *media       // this party's side of the relay, when the call is anchored

	mu   sync.Mutex
	sdp  []byte // the last session description this party sent
	sent []byte // the last session description this party was sent

	// answering is held while the node answers this party's INVITE with
	// its 200 (up to the ACK): the call is connected, and may be hung up,
	// before that, but sipgo's dialog must not be sent a BYE while its 200
	// is being written. hangUp waits for it.
	answering sync.Mutex
}

func answeredParty(ds *sipgo.DialogServerSession, u account.User) *party {
	p := &party{id: ds.ID, callID: ds.InviteRequest.CallID().Value(), sess: ds, user: u,
		target: remoteTarget(ds.InviteRequest, ds.InviteRequest.Recipient)}
	p.heard(ds.InviteRequest.Body())
	return p
}

func placedParty(cs *sipgo.DialogClientSession, u account.User) *party {
	p := &party{id: cs.ID, callID: cs.InviteRequest.CallID().Value(), sess: cs, user: u,
		target: remoteTarget(cs.InviteResponse, cs.InviteRequest.Recipient)}
	p.told(cs.InviteRequest.Body())
	p.heard(cs.InviteResponse.Body())
	return p
}

// heard notes a description the party sent (and, anchored, where the
// relay sends this party's media).
func (p *party) heard(sdp []byte) {
	if len(sdp) == 0 {
		return
	}
	if p.media != nil {
		_ = p.media.key(sdp) // an SRTP SBC's answer without a key is refused where it arrives (trunkLeg)
		if remote, ok := sdpRemote(sdp); ok {
			p.media.sess.SetRemote(p.media.side, remote)
		}
	}
	p.mu.Lock()
	p.sdp = sdp
	p.mu.Unlock()
}

// told returns sdp as the party must be sent it (anchored: pointing at the
// relay; its origin kept) and notes it.
func (p *party) told(sdp []byte) []byte {
	if len(sdp) == 0 {
		return sdp
	}
	if p.media != nil {
		local := p.media.sess.Local(p.media.side)
		anchored, err := anchoredSDP(sdp, local, p.media.codecs)
		if err != nil { // no allowed format: send what there is rather than nothing
			anchored, _ = anchoredSDP(sdp, local, nil)
		}
		sdp = p.media.protect(anchored)
	}
	out := p.origin.present(sdp)
	p.mu.Lock()
	p.sent = out
	p.mu.Unlock()
	return out
}

func (p *party) lastSDP() (heard, sent []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sdp, p.sent
}

// call is one connected call between two parties.
type call struct {
	parties [2]*party         // the caller's side, the callee's side
	rec     *store.CallRecord // nil on a node that only carries another node's leg

	mu         sync.Mutex
	transferor *party // set while a transfer is under way
	leftEarly  bool   // the transferor hung up before the transfer ended
	// bridge: click-to-call's join of the user's phone and the call it
	// placed (control.go), not a call of its own.
	bridge bool

	hold holdState // music on hold (hold.go)
}

func (c *call) other(p *party) *party {
	if c.parties[0] == p {
		return c.parties[1]
	}
	return c.parties[0]
}

// NewB2BUA builds the call handler. contact is the Contact the node puts in
// its dialogs.
// hopSecret (shared by every node) authenticates calls one node hands to
// another for a phone registered there.
func NewB2BUA(client *sipgo.Client, contact sip.ContactHeader, auth Authenticator, dir Directory,
	journal Journal, nodeID string, hopSecret []byte, log *slog.Logger) *B2BUA {
	return &B2BUA{
		nodeID: nodeID, hopKey: hopSecret, auth: auth, dir: dir, journal: journal, log: log,
		dialogs:     newDialogs(client, contact),
		calls:       map[string]*call{},
		now:         time.Now,
		lastCallEnd: map[string]time.Time{},
		onCalls:     map[string]int{},
		ivrs:        map[string]*ivrCall{},
		ringing:     map[string]int{},
		walking:     map[string]*walkView{},
		dialins:     newDialInState(),
	}
}

// Active is the number of connected calls.
func (b *B2BUA) Active() int { return int(b.active.Load()) }

// Dialogs is the number of dialogs the node holds (two per connected call
// while nothing lingers).
func (b *B2BUA) Dialogs() int { return b.dialogs.count() }

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// storePlan is a Plan over the directory for one request.
type storePlan struct {
	ctx context.Context
	dir Directory
}

func (p storePlan) Lookup(dial string) (Target, bool) {
	t, err := p.dir.LookupDial(p.ctx, dial)
	if err != nil {
		return Target{}, false
	}
	return Target{Kind: t.Kind, ID: t.ID}, true
}

func (p storePlan) Site(id string) (account.Site, bool) {
	s, err := p.dir.Site(p.ctx, id)
	return s, err == nil
}

// OnInvite authenticates the caller, decides where the call goes and rings
// every contact of the callee registered here at once; the first answer
// wins and the other contacts are cancelled.
func (b *B2BUA) OnInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			b.passInDialog(req, tx)
			return
		}
	}
	hops, ok := hopsLeft(req)
	if !ok {
		respond(tx, req, 483, "Too Many Hops")
		return
	}
	if req.GetHeader(hopAuthHeader) != nil {
		b.onHop(req, tx, hops)
		return
	}
	if h := req.GetHeader(originateHeader); h != nil {
		b.onOriginate(req, tx, h.Value(), hops)
		return
	}
	if trunk, ok := b.fromTrunk(context.Background(), req); ok {
		b.onTrunkInvite(req, tx, trunk, hops)
		return
	}
	caller, ok := b.auth.AuthenticateRequest(req, tx)
	if !ok {
		return
	}
	if id, factory, ok := focusTarget(req.Recipient.User); ok {
		b.onConferenceInvite(req, tx, caller, id, factory)
		return
	}
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: req.CallID().Value(), Caller: caller.SIP.Username, CallerName: caller.Name,
		Dialled: req.Recipient.User, Start: time.Now().UTC(), Node: b.nodeID, Site: caller.Site,
	}
	b.engStarted(caller, rec)
	b.place(req, tx, caller, rec, hops)
}

// place routes an authenticated caller's INVITE and rings, or calls out
// to, what it dialled.
func (b *B2BUA) place(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord, hops int) {
	rt, refusal := b.route(context.Background(), caller.Site, req.Recipient.User, rec)
	if refusal != nil {
		respond(tx, req, refusal.code, refusal.reason)
		b.finish(rec, refusal.code, refusal.disposition)
		return
	}
	if rt.feature != nil && rt.feature.ID != FeatureVoicemail {
		b.onFeature(req, tx, caller, rec, *rt.feature)
		return
	}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return
	}
	_ = ds.Respond(100, "Trying", nil)
	rt.hops = hops
	if rt.feature != nil { // the voicemail code: the node answers
		b.playMailbox(ds, req, caller, &rt, rec)
		return
	}
	if rt.out != nil {
		b.callOut(ds, req, caller, *rt.out, hops, rec)
		return
	}
	b.ring(ds, req, caller, rt, rec)
}

// maxForwards is the Max-Forwards of the INVITEs Outpost places itself.
const maxForwards = 70

// hopsLeft is the Max-Forwards for the legs of an INVITE: one less than
// it arrived with (70 when it had none); false when it has none left
// (RFC 3261 §16.3, RFC 7332: a B2BUA must not reset it, or two nodes, or a
// node and a phone forwarding to it, could loop a call forever).
func hopsLeft(req *sip.Request) (int, bool) {
	mf := req.MaxForwards()
	if mf == nil {
		return maxForwards, true
	}
	if mf.Val() == 0 {
		return 0, false
	}
	return int(mf.Val()) - 1, true
}

// refusal is why a call cannot be placed: the status, and the record's
// disposition.
type refusal struct {
	code        int
	reason      string
	disposition string
}

// route is where a call goes: the callee and the places it rings.
type route struct {
	acct    account.Account
	callee  account.User
	targets []target
	hops    int               // Max-Forwards of the legs
	out     *Destination      // a call to the PSTN: the trunks, not targets
	media   MediaSession      // a call from a trunk: anchored (side 0 the phone, 1 the trunk)
	group   *groupWalk        // an SDG or numbers[] entry: the route walked (walk), not targets
	codecs  []string          // that trunk's codecs
	srtp    *sdes             // that trunk's SRTP keys (srtp "sdes"), nil: plain RTP
	rec     *store.CallRecord // the call's record (its ID names the engagement); nil on a hop leg
	queue   string            // the SDG the call came through, for the engagement
	// autoAnswer asks the phones to answer at once (click-to-call's leg
	// to the user's own phone).
	autoAnswer bool
	// mailbox is the callee's voicemail settings when an unanswered,
	// busy or unregistered call goes to their mailbox (voicemail.go).
	mailbox *account.VoicemailSettings
	feature *Destination // a feature code (features.go): no targets
}

// route resolves what a caller of site dialled to a user of the account
// and the places that user's phones ring, filling rec's destination and
// callee; or says why the call cannot be placed.
func (b *B2BUA) route(ctx context.Context, site, dialled string, rec *store.CallRecord) (route, *refusal) {
	rt, refusal := b.routeDest(ctx, site, dialled, rec)
	rt.rec = rec
	return rt, refusal
}

func (b *B2BUA) routeDest(ctx context.Context, site, dialled string, rec *store.CallRecord) (route, *refusal) {
	dest := Resolve(Dial{CallerSite: site, Digits: dialled, Features: b.features()}, storePlan{ctx, b.dir})
	rec.Destination = dest.Kind
	switch dest.Kind {
	case DestFeature:
		if dest.ID == FeatureVoicemail && b.boxes() == nil {
			return route{}, &refusal{404, "Not Found: no voicemail on this node", DispRefused}
		}
		return route{feature: &dest, hops: maxForwards}, nil
	case DestUser:
	case DestSDG:
		return b.startGroup(ctx, account.Route{Type: account.RouteSDG, ID: dest.ID}, rec)
	case DestNumber:
		return b.startGroup(ctx, account.Route{Type: account.RouteNumber, Number: dest.ID}, rec)
	case DestExternal, DestEmergency:
		if b.trunksSet() == nil {
			return route{}, &refusal{503, "Service Unavailable: no trunk to the PSTN", DispFailed}
		}
		return route{out: &dest, hops: maxForwards}, nil
	default:
		return route{}, &refusal{404, "Not Found", DispRefused}
	}
	rt, ref := b.routeToUser(ctx, dest.ID, rec)
	switch {
	case ref == nil:
		rt.mailbox = b.mailboxOf(rt.callee)
	case ref.code == 480: // no phone registered: the mailbox, if there is one
		if callee, err := b.dir.UserByID(ctx, dest.ID); err == nil {
			if mb := b.mailboxOf(callee); mb != nil {
				return route{callee: callee, mailbox: mb, hops: maxForwards}, nil
			}
		}
	}
	return rt, ref
}

// routeToUser is the places user id's phones ring, filling rec's callee.
func (b *B2BUA) routeToUser(ctx context.Context, id string, rec *store.CallRecord) (route, *refusal) {
	acct, err := b.dir.Account(ctx)
	if err != nil {
		return route{}, &refusal{500, "Server Internal Error", DispFailed}
	}
	callee, err := b.dir.UserByID(ctx, id)
	if err != nil {
		return route{}, &refusal{404, "Not Found", DispRefused}
	}
	rec.Callee = callee.SIP.Username
	bindings, err := b.dir.Bindings(ctx, callee.SIP.Username+"@"+acct.SIPRealm, time.Now())
	if err != nil {
		return route{}, &refusal{500, "Server Internal Error", DispFailed}
	}
	targets := b.targets(ctx, bindings)
	if len(targets) == 0 {
		return route{}, &refusal{480, "Temporarily Unavailable", DispUnavailable}
	}
	return route{acct: acct, callee: callee, targets: targets, hops: maxForwards}, nil
}

// target is where one leg goes: a phone's flow on this node, or the node
// that holds the phone's flow.
type target struct {
	binding store.Binding
	via     string        // the holding node's SIP address; empty when local
	user    *account.User // whose phone: set when the targets are several users' (a group)
}

// targets places each binding: here when this node holds its flow, else at
// the member that does (a member with no SIP address is skipped).
func (b *B2BUA) targets(ctx context.Context, bindings []store.Binding) []target {
	var out []target
	var members []store.Member
	for _, bd := range bindings {
		if bd.Node == b.nodeID {
			out = append(out, target{binding: bd})
			continue
		}
		if members == nil {
			members, _ = b.dir.Members(ctx)
		}
		for _, m := range members {
			if m.ID == bd.Node && m.SIPAddr != "" {
				out = append(out, target{binding: bd, via: m.SIPAddr})
			}
		}
	}
	return out
}

type legResult struct {
	sess     *sipgo.DialogClientSession
	tg       target
	err      error
	declined bool // the user rejected the call (Reject)
}

// ring forks the call to every place the callee rings and connects the
// first answer to the caller. A call from a trunk is anchored (rt.media):
// each phone is offered the relay, the trunk is answered with it. A call
// to an SDG or a numbers[] entry walks its route (walk).
func (b *B2BUA) ring(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt route, rec *store.CallRecord) {
	if rt.group != nil {
		b.walk(ds, req, caller, rt, rec)
		return
	}
	ctx := ds.Context()
	if rt.mailbox != nil { // unanswered, busy or unregistered: the mailbox
		if len(rt.targets) == 0 {
			if !b.toMailbox(ds, req, caller, &rt, rt.callee.ID, rt.mailbox.Greeting, "unavailable", rec) {
				b.unanswered(ds, 480, rec)
			}
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.mailbox.NoAnswer)
		defer cancel()
	}
	var ringing sync.Once
	winner, _, status := b.ringOnce(ctx, ds, req, caller, rt, &ringing)
	if winner == nil {
		if rt.mailbox != nil && ds.Context().Err() == nil {
			why := map[int]string{486: "busy"}[status]
			if why == "" {
				why = "no_answer"
			}
			if b.toMailbox(ds, req, caller, &rt, rt.callee.ID, rt.mailbox.Greeting, why, rec) {
				return
			}
			if status == 487 { // the no-answer time passed
				status = 480
			}
		}
		b.unanswered(ds, status, rec)
		return
	}
	b.answer(ds, req, caller, rt, winner, rt.callee, rec)
}

// ringOnce forks the call to rt's targets until one answers or ctx ends,
// telling the caller of the first ringing (once, across the calls that
// share ringing). It returns the answer (not acknowledged yet) and the
// target that gave it, or the status fork gives.
func (b *B2BUA) ringOnce(ctx context.Context, ds *sipgo.DialogServerSession, req *sip.Request, caller account.User,
	rt route, ringing *sync.Once) (*sipgo.DialogClientSession, target, int) {
	offer := req.Body()
	phoneSide := &media{sess: rt.media, side: 0}
	trunkSide := &media{sess: rt.media, side: 1, codecs: rt.codecs, srtp: rt.srtp}
	phoneSide.plain.Store(rt.srtp != nil)
	iv := b.ivrOf(ds.ID)
	switch {
	case iv != nil: // answered by an IVR: offered what the caller has
		offer = ivrMemberOffer(iv)
	case rt.media != nil && len(offer) > 0:
		offer, _ = anchoredSDP(offer, rt.media.Local(0), nil)
		offer = phoneSide.protect(offer)
	}
	return b.fork(ctx, offer, caller, rt, func(res *sip.Response) {
		if iv != nil {
			return // the caller is answered already
		}
		ringing.Do(func() {
			b.engCalleeRinging(caller, rt.rec)
			body := res.Body()
			if rt.media != nil && len(body) > 0 { // early media from a phone, through the relay
				if remote, ok := sdpRemote(body); ok {
					rt.media.SetRemote(0, remote)
				}
				body, _ = anchoredSDP(body, rt.media.Local(1), rt.codecs)
				body = trunkSide.protect(body)
			}
			_ = ds.Respond(res.StatusCode, res.Reason, body, contentType(res)...)
		})
	})
}

// unanswered ends a call nobody answered with fork's status.
func (b *B2BUA) unanswered(ds *sipgo.DialogServerSession, status int, rec *store.CallRecord) {
	switch status {
	case 487: // the caller cancelled: sipgo answered 487
		b.finish(rec, 487, DispCancelled)
	case 486:
		_ = ds.Respond(486, "Busy Here", nil)
		b.finish(rec, 486, DispBusy)
	default:
		_ = ds.Respond(480, "Temporarily Unavailable", nil)
		b.finish(rec, 480, DispNoAnswer)
	}
}

// answer connects the caller to winner, callee's answer.
func (b *B2BUA) answer(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt route,
	winner *sipgo.DialogClientSession, callee account.User, rec *store.CallRecord) {
	phoneSide := &media{sess: rt.media, side: 0}
	trunkSide := &media{sess: rt.media, side: 1, codecs: rt.codecs, srtp: rt.srtp}
	phoneSide.plain.Store(rt.srtp != nil)
	if rec != nil {
		rec.Callee = callee.SIP.Username
	}
	// With an offer from the caller, the callee's answer completes the
	// exchange: ACK it now. Without one (late offer), the callee's 200 is
	// the offer and the caller's ACK brings the answer, which the callee's
	// ACK must carry.
	iv := b.takeIVR(ds.ID) // the IVR stops sending before the relay turns to the callee
	lateOffer := len(req.Body()) == 0 && iv == nil
	if !lateOffer {
		if err := winner.Ack(context.Background()); err != nil {
			b.log.Warn("ack callee", "call_id", req.CallID().Value(), "error", err)
		}
	}
	if rec != nil {
		rec.Answer, rec.Status = time.Now().UTC(), 200
	}
	from, to := answeredParty(ds, caller), placedParty(winner, callee)
	if rt.media != nil {
		from.media, to.media = trunkSide, phoneSide
		from.heard(req.Body())
		to.heard(winner.InviteResponse.Body())
	}
	from.answering.Lock()
	c := b.connect(from, to, rec)
	b.engConnected(caller, callee, rec, rt.queue)
	if iv != nil { // the caller was answered by the IVR: nothing more to tell it
		from.answering.Unlock()
		from.told(iv.sent)
		b.log.Info("call connected after an ivr", "call_id", req.CallID().Value(), "to", callee.SIP.Username)
		return
	}
	answer := from.told(winner.InviteResponse.Body())
	err := ds.Respond(200, "OK", answer, contentType(winner.InviteResponse)...) // returns once the caller ACKs
	from.answering.Unlock()
	if lateOffer {
		heard, _ := from.lastSDP()
		ack := sip.NewRequest(sip.ACK, to.target)
		if len(heard) > 0 {
			ack.AppendHeader(sip.NewHeader("Content-Type", sdpType))
		}
		ack.SetBody(to.told(heard))
		if err := winner.WriteAck(context.Background(), ack); err != nil {
			b.log.Warn("ack callee", "call_id", req.CallID().Value(), "error", err)
		}
	}
	if err != nil {
		b.log.Warn("answer caller", "call_id", req.CallID().Value(), "error", err)
		if b.drop(c) {
			_ = winner.Bye(context.Background())
		}
		return
	}
	b.log.Info("call connected", "call_id", req.CallID().Value(), "from", caller.SIP.Username, "to", callee.SIP.Username)
}

// fork rings every target with offer and returns the first to answer
// (not acknowledged yet), the others cancelled or hung up; or, when none
// answered, the status for the caller: 486 when one was busy, 487 when ctx
// ended first, else 480. onRinging sees each provisional response.
func (b *B2BUA) fork(parent context.Context, offer []byte, caller account.User, rt route,
	onRinging func(*sip.Response)) (*sipgo.DialogClientSession, target, int) {
	// The legs' context ends with parent (the caller gave up, a ring timed
	// out: sipgo CANCELs), but not when another leg answers: those legs are
	// CANCELled here, with the reason (RFC 3326), and their INVITEs are
	// still read to the end so an answer crossing the CANCEL is hung up.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, cancel)
	results := make(chan legResult, len(rt.targets))
	// onRinging runs in the legs' goroutines; none runs once fork has
	// returned, when the caller may be answered (a late 180 from a losing
	// leg must not race the final response on the caller's dialog).
	var ringMu sync.Mutex
	ringDone := false
	defer func() {
		ringMu.Lock()
		ringDone = true
		ringMu.Unlock()
	}()
	var mu sync.Mutex
	started := map[*sipgo.DialogClientSession]bool{}
	answered := false                 // another leg won: a leg starting now is CANCELled at once
	rang := map[string]account.User{} // users whose phones rang, by username
	for _, tg := range rt.targets {
		user := rt.callee
		if tg.user != nil {
			user = *tg.user
		}
		ringing := user.ID
		b.ringingAdd(ringing, 1)
		legCtx, legCancel := context.WithCancel(ctx)
		rl := b.addRingLeg(rt.rec, user.SIP.Username, legCancel)
		go func() {
			defer b.ringingAdd(ringing, -1)
			defer b.removeRingLeg(rt.rec, rl)
			defer legCancel()
			sess, err := b.leg(legCtx, offer, caller, rt, tg, func(sess *sipgo.DialogClientSession) {
				mu.Lock()
				started[sess] = true
				late := answered // its INVITE went out, but the winner was CANCELling the others already
				mu.Unlock()
				if late {
					go b.cancelElsewhere(sess)
				}
				if rl != nil {
					b.mu.Lock()
					rl.inv = sess.InviteRequest
					b.mu.Unlock()
				}
			}, func(res *sip.Response) {
				if res.StatusCode == 180 || res.StatusCode == 183 {
					mu.Lock()
					rang[user.SIP.Username] = user
					mu.Unlock()
					b.engRinging(rt, caller, user)
					ringMu.Lock()
					if !ringDone {
						onRinging(res)
					}
					ringMu.Unlock()
				}
			})
			results <- legResult{sess, tg, err, b.declined(rl)}
		}()
	}
	var winner *sipgo.DialogClientSession
	var won target
	busy := false
	pending := len(rt.targets)
	for pending > 0 && winner == nil {
		r := <-results
		pending--
		if r.err == nil {
			winner, won = r.sess, r.tg
			if stop() { // parent has not ended: the others are told why they stop
				mu.Lock()
				answered = true
				for sess := range started {
					if sess != winner {
						go b.cancelElsewhere(sess)
					}
				}
				mu.Unlock()
			}
			break
		}
		var de *sipgo.ErrDialogResponse
		if r.declined || errors.As(r.err, &de) && de.Res.StatusCode == 486 {
			busy = true
		}
	}
	// The caller is answered at once; the other contacts end on their own
	// (a stale one only when its INVITE times out). One that answers anyway
	// is hung up.
	go func() {
		defer cancel()
		for range pending {
			if r := <-results; r.err == nil {
				_ = r.sess.Ack(context.Background())
				_ = r.sess.Bye(context.Background())
			}
		}
	}()
	status := 480
	switch {
	case winner != nil:
		status = 200
	case parent.Err() != nil:
		status = 487
	case busy:
		status = 486
	}
	// Users whose phones rang and did not answer missed the call.
	mu.Lock()
	missed := maps.Clone(rang)
	mu.Unlock()
	if winner != nil {
		winnerUser := rt.callee
		if won.user != nil {
			winnerUser = *won.user
		}
		delete(missed, winnerUser.SIP.Username)
	}
	for _, u := range missed {
		reason := map[int]string{200: "answered elsewhere", 487: "caller hung up", 486: "busy"}[status]
		if reason == "" {
			reason = "no answer"
		}
		b.engMissed(rt, u, status, reason)
	}
	if winner == nil {
		return nil, target{}, status
	}
	return winner, won, 200
}

// reasonElsewhere is the Reason (RFC 3326) of a CANCEL sent to phones that
// rang for a call another phone answered.
const reasonElsewhere = `SIP;cause=200;text="Call completed elsewhere"`

// cancelElsewhere CANCELs a leg whose call another phone answered.
func (b *B2BUA) cancelElsewhere(sess *sipgo.DialogClientSession) {
	inv := sess.InviteRequest
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.Via())) // the INVITE's branch: the CANCEL matches its transaction
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	sip.CopyHeaders("Route", inv, req)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Reason", reasonElsewhere))
	req.SetDestination(inv.Destination())
	req.SetTransport(inv.Transport())
	req.SetSource(inv.Source())
	req.Laddr = inv.Laddr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.dialogs.ua.Client.Do(ctx, req); err != nil {
		b.log.Debug("cancel a leg answered elsewhere", "call_id", inv.CallID().Value(), "error", err)
	}
}

// connect records a connected call under both parties' dialogs.
func (b *B2BUA) connect(p1, p2 *party, rec *store.CallRecord) *call {
	c := &call{parties: [2]*party{p1, p2}, rec: rec}
	b.mu.Lock()
	b.calls[p1.id], b.calls[p2.id] = c, c
	for _, p := range c.parties {
		if p.user.ID != "" {
			b.onCalls[p.user.ID]++
		}
	}
	b.mu.Unlock()
	b.active.Add(1)
	return c
}

// drop forgets a call that failed to connect, recording it as failed; it
// reports whether the call was still there.
func (b *B2BUA) drop(c *call) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls[c.parties[0].id] != c {
		return false
	}
	b.forgetLocked(c)
	b.finish(c.rec, 500, DispFailed)
	return true
}

func (b *B2BUA) forgetLocked(c *call) {
	c.stopMusic()
	now := b.now()
	for _, p := range c.parties {
		if b.calls[p.id] == c {
			delete(b.calls, p.id)
		}
		if p.user.ID != "" {
			b.lastCallEnd[p.user.ID] = now
			if b.onCalls[p.user.ID]--; b.onCalls[p.user.ID] <= 0 {
				delete(b.onCalls, p.user.ID)
			}
		}
	}
	if !c.bridge {
		b.active.Add(-1)
	}
}

// isSDP reports whether m carries a session description.
func isSDP(m interface{ GetHeader(string) sip.Header }) bool {
	h := m.GetHeader("Content-Type")
	return h != nil && strings.EqualFold(strings.TrimSpace(strings.Split(h.Value(), ";")[0]), sdpType)
}

func contentType(m interface{ GetHeader(string) sip.Header }) []sip.Header {
	if h := m.GetHeader("Content-Type"); h != nil {
		return []sip.Header{sip.NewHeader("Content-Type", h.Value())}
	}
	return nil
}

// leg sends the INVITE to one contact through the flow it registered from,
// or to the node holding that flow.
func (b *B2BUA) leg(ctx context.Context, offer []byte, caller account.User, rt route,
	tg target, started func(*sipgo.DialogClientSession), onResponse func(*sip.Response)) (*sipgo.DialogClientSession, error) {
	bd, callee, acct := tg.binding, rt.callee, rt.acct
	if tg.user != nil { // a group's member
		callee = *tg.user
	}
	var uri sip.Uri
	if err := sip.ParseUri(bd.Contact, &uri); err != nil {
		return nil, fmt.Errorf("contact %q: %w", bd.Contact, err)
	}
	inv := sip.NewRequest(sip.INVITE, uri)
	if tg.via == "" {
		inv.SetDestination(bd.Source)
		inv.SetTransport(strings.ToUpper(bd.Transport))
	} else {
		inv.SetDestination(tg.via)
		inv.SetTransport("UDP")
	}
	fromUser := caller.Extension
	if fromUser == "" {
		fromUser = caller.SIP.Username
	}
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&sip.FromHeader{DisplayName: caller.Name,
		Address: sip.Uri{Scheme: "sip", User: fromUser, Host: acct.SIPRealm}, Params: fromParams})
	inv.AppendHeader(&sip.ToHeader{DisplayName: callee.Name,
		Address: sip.Uri{Scheme: "sip", User: callee.SIP.Username, Host: acct.SIPRealm}, Params: sip.NewParams()})
	if len(offer) > 0 {
		inv.AppendHeader(sip.NewHeader("Content-Type", sdpType))
	}
	if rt.autoAnswer {
		inv.AppendHeader(sip.NewHeader("Call-Info", "<sip:"+acct.SIPRealm+">;answer-after=0"))
		inv.AppendHeader(sip.NewHeader("Alert-Info", "<http://"+acct.SIPRealm+">;info=alert-autoanswer;delay=0"))
	}
	mf := sip.MaxForwardsHeader(rt.hops)
	inv.AppendHeader(&mf)
	if tg.via != "" {
		callID := sip.GenerateTagN(24)
		inv.AppendHeader(sip.NewHeader("Call-ID", callID))
		inv.AppendHeader(sip.NewHeader(hopBindingHeader, bd.AOR+" "+bd.ID))
		inv.AppendHeader(sip.NewHeader(hopAuthHeader, b.hopMAC(callID, bd.AOR, bd.ID, b.now().Unix())))
	}
	inv.SetBody(offer)
	sess, err := b.dialogs.writeInvite(ctx, inv)
	if err != nil {
		return nil, err
	}
	started(sess)
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		onResponse(res)
		return nil
	}})
	if err != nil {
		if res := sess.InviteResponse; res != nil && res.IsSuccess() {
			// The answer crossed the CANCEL: acknowledge it and hang up, or
			// the phone stays off-hook in an empty call.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = sess.Ack(ctx)
				_ = sess.Bye(ctx)
			}()
		}
		_ = sess.Close()
		return nil, err
	}
	return sess, nil
}

// OnAck confirms the caller's side of a connected call.
func (b *B2BUA) OnAck(req *sip.Request, tx sip.ServerTransaction) {
	ds := b.dialogs.matchServer(req)
	if ds == nil {
		return
	}
	if isSDP(req) { // the answer to a late offer
		if _, p := b.lookup(ds.ID); p != nil {
			p.heard(req.Body())
		}
	}
	_ = ds.ReadAck(req, tx)
}

// OnBye ends a call from either side and hangs up the other. A transferor
// hanging up while its transfer is under way leaves the call to the
// transfer.
func (b *B2BUA) OnBye(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	var id string
	if ds := b.dialogs.matchServer(req); ds != nil {
		if err := ds.ReadBye(req, tx); err != nil {
			// A CSeq below the dialog's (RFC 3261 §12.2.2): the call goes on.
			respond(tx, req, 500, "Server Internal Error: CSeq out of order")
			return
		}
		id = ds.ID
	} else if cs := b.dialogs.matchClient(req); cs != nil {
		_ = cs.ReadBye(req, tx)
		id = cs.ID
	} else {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	b.dialogs.forget(id)
	if cf := b.confByDialog(id); cf != nil {
		b.leaveConf(cf, id)
		return
	}
	c, p := b.lookup(id)
	if c == nil {
		return
	}
	c.mu.Lock()
	transferring := c.transferor == p
	if transferring {
		c.leftEarly = true
	}
	c.mu.Unlock()
	if transferring || !b.end(c, DispAnswered) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.other(p).sess.Bye(ctx)
}

// end forgets a connected call and closes its record with disposition; it
// reports whether the call was still there.
func (b *B2BUA) end(c *call, disposition string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls[c.parties[0].id] != c && b.calls[c.parties[1].id] != c {
		return false
	}
	b.forgetLocked(c)
	b.finish(c.rec, 200, disposition)
	return true
}

// OnUpdate passes an in-dialog UPDATE to the other leg.
func (b *B2BUA) OnUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	b.passInDialog(req, tx)
}

// OnInfo passes an in-dialog INFO (DTMF relay, for one) to the other leg.
func (b *B2BUA) OnInfo(req *sip.Request, tx sip.ServerTransaction) {
	if b.ivrKey(req, tx) {
		return
	}
	b.OnUpdate(req, tx)
}

// confOfRequest finds the conf an in-dialog request's dialog is a
// participant of, and the dialog's ID.
func (b *B2BUA) confOfRequest(req *sip.Request) (*conf, string) {
	var id string
	if ds := b.dialogs.matchServer(req); ds != nil {
		id = ds.ID
	} else if cs := b.dialogs.matchClient(req); cs != nil {
		id = cs.ID
	} else {
		return nil, ""
	}
	if cf := b.confByDialog(id); cf != nil {
		return cf, id
	}
	return nil, ""
}

// match finds the connected call and the party an in-dialog request came
// from.
func (b *B2BUA) match(req *sip.Request) (*call, *party) {
	if ds := b.dialogs.matchServer(req); ds != nil {
		return b.lookup(ds.ID)
	}
	if cs := b.dialogs.matchClient(req); cs != nil {
		return b.lookup(cs.ID)
	}
	return nil, nil
}

// passInDialog sends an in-dialog request (re-INVITE, UPDATE) from one
// party on to the other, with its body, and answers it with the other
// side's final response. A 2xx to a re-INVITE is acknowledged on the far
// leg at once, as the callee's first answer is.
func (b *B2BUA) passInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if cf, id := b.confOfRequest(req); cf != nil {
		b.confInDialog(cf, id, req, tx)
		return
	}
	c, from := b.match(req)
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.mu.Lock()
	transferring := c.transferor != nil
	c.mu.Unlock()
	if transferring {
		respond(tx, req, 491, "Request Pending: the call is being transferred")
		return
	}
	if b.holdInDialog(c, from, req, tx) {
		return
	}
	to := c.other(from)
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	if isSDP(req) {
		from.heard(req.Body())
	}
	ctype := sdpType
	if h := req.GetHeader("Content-Type"); h != nil {
		ctype = h.Value()
	}
	res, err := b.offer(ctx, to, req.Method, req.Body(), ctype)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error: the other party did not answer")
		return
	}
	if req.IsInvite() && res.IsSuccess() {
		b.ack(to, nil)
	}
	body := res.Body()
	if isSDP(res) {
		body = from.told(body)
	}
	out := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, body)
	if res.IsSuccess() {
		out.AppendHeader(sip.HeaderClone(&b.dialogs.ua.ContactHDR))
	}
	for _, h := range contentType(res) {
		out.AppendHeader(h)
	}
	_ = tx.Respond(out)
}

// sdpType is the content type of session descriptions.
const sdpType = "application/sdp"

// offer sends p an in-dialog request (re-INVITE, UPDATE, INFO) with body
// of type ctype, and returns its final response, noting the session
// description p answered with.
func (b *B2BUA) offer(ctx context.Context, p *party, method sip.RequestMethod, body []byte, ctype string) (*sip.Response, error) {
	req := sip.NewRequest(method, p.target)
	if len(body) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", ctype))
	}
	if ctype == sdpType {
		body = p.told(body)
	}
	req.SetBody(body)
	res, err := p.sess.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsSuccess() && isSDP(res) {
		p.heard(res.Body())
	}
	return res, nil
}

// ack acknowledges p's 2xx to a re-INVITE, with body when the re-INVITE
// carried no offer.
func (b *B2BUA) ack(p *party, body []byte) {
	a := sip.NewRequest(sip.ACK, p.target)
	if len(body) > 0 {
		a.AppendHeader(sip.NewHeader("Content-Type", sdpType))
	}
	a.SetBody(p.told(body))
	if err := p.sess.WriteRequest(a); err != nil {
		b.log.Warn("ack re-INVITE", "error", err)
	}
}

// remoteTarget is where in-dialog requests go: the peer's Contact from m,
// else fallback.
func remoteTarget(m interface{ Contact() *sip.ContactHeader }, fallback sip.Uri) sip.Uri {
	if c := m.Contact(); c != nil {
		return c.Address
	}
	return fallback
}

// lookup finds a connected call and the party by either dialog ID.
func (b *B2BUA) lookup(id string) (*call, *party) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[id]
	if c == nil {
		return nil, nil
	}
	for _, p := range c.parties {
		if p.id == id {
			return c, p
		}
	}
	return nil, nil
}

// Dispositions of a call record.
const (
	DispAnswered     = "answered"
	DispBusy         = "busy"
	DispNoAnswer     = "no_answer"
	DispUnavailable  = "unavailable"
	DispCancelled    = "cancelled"
	DispFailed       = "failed"
	DispRefused      = "refused"
	DispTransferred  = "transferred"   // the call went on between other parties
	DispMediaTimeout = "media_timeout" // media stopped both ways; Outpost ended the call
)

// finish closes a call record and hands it to the journal. rec is nil on a
// node that only carries another node's leg: the caller's node records.
func (b *B2BUA) finish(rec *store.CallRecord, status int, disposition string) {
	if rec == nil || b.journal == nil {
		return
	}
	rec.End, rec.Status, rec.Disposition = time.Now().UTC(), status, disposition
	b.journal.Record(*rec)
	b.engClosed(*rec)
	// A call that ended while its invitations rang ends them. finish may
	// run under b.mu, so the conf is looked up elsewhere, and only when
	// there is one at all.
	if b.confCount.Load() > 0 {
		go b.endPairConf(rec.ID)
	}
}

// newRecordID is a random UUID (version 4), the record's stable id.
func newRecordID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
