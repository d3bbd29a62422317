package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sbc"
	"github.com/outpost-voice/outpost/sdg"
)

// Adding people to a live call (issue 8). The rules — owner, one
// invitation per invitee, how invitations end — are package invite's; here
// they act on SIP and media:
//
//   - A call gets a conf the first time its owner invites someone. The two
//     parties keep talking directly (or through the relay) while the
//     invitation rings.
//   - When an invitee answers, the call is mixed: the node opens a room in
//     the conference bridge; each phone is re-INVITEd to a leg of its own in
//     the room (a phone hears the join tone and nothing else changes); a
//     party anchored in the relay (the SBC of a PSTN call) keeps its relay
//     session, whose phone side now faces the room. The invitee was offered
//     a leg of the room from the start.
//   - A participant leaving (BYE) leaves the room; with one participant
//     left, the node hangs up on them and the call ends, recorded once
//     under the call's record.
//   - A call-out rings the number through the trunks (caller ID from the
//     snapshot's callout), sends the number's extension digits once it
//     answers, then plays the greeting and waits for 1 (callout.
//     require_press_1) on an IVR endpoint before the callee joins.

// Mixer opens rooms in the node's conference bridge (package
// media/conference, adapted by appliance/node).
type Mixer interface {
	Open(id string) (Room, error)
}

// Room is one call's mix.
type Room interface {
	// Join adds a participant whose RTP peer is peer (invalid: not known
	// yet) speaking codec with RFC 4733 events on dtmfPT (0: none).
	Join(partID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (RoomLeg, error)
	Close()
}

// RoomLeg is one participant's media in a room.
type RoomLeg interface {
	Addr() netip.AddrPort // where the participant sends its RTP
	SetPeer(addr netip.AddrPort)
	SetCodec(codec g711.Codec, dtmfPT uint8)
	SetMute(on bool)
	Leave()
}

// SetMixer enables conferences.
func (b *B2BUA) SetMixer(m Mixer) {
	b.mu.Lock()
	b.mixer = m
	b.mu.Unlock()
}

// Errors of the invitation API beyond package invite's.
var (
	ErrNoCall    = errors.New("no such call in progress on this node")
	ErrNoOwner   = errors.New("no user of the account is in this call")
	ErrNoMixer   = errors.New("this node has no conference bridge")
	ErrNoTrunk   = errors.New("no trunk can place the call-out")
	errNotJoined = errors.New("the invitation ended before the invitee joined")
)

// conf is a call with invitations, mixed once someone joins.
type conf struct {
	id  string // the call's record ID
	rec *store.CallRecord

	mu    sync.Mutex
	st    *invite.Call
	pair  *call                         // the two first parties, until mixed
	room  Room                          // once mixed (or an invitation rings)
	parts map[string]*confPart          // by dialog ID
	stops map[string]context.CancelFunc // ringing invitations, by ID
	ended bool
}

// confPart is a participant of a mixed call.
type confPart struct {
	p      *party
	leg    RoomLeg
	codec  g711.Codec
	dtmfPT uint8
}

// confOf finds the conf of call id (its record ID), making one for a
// connected two-party call.
func (b *B2BUA) confOf(id string) (*conf, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cf := b.confs[id]; cf != nil {
		return cf, nil
	}
	var c *call
	for _, cc := range b.calls {
		if !cc.bridge && cc.rec != nil && cc.rec.ID == id {
			c = cc
		}
	}
	if c == nil {
		return nil, ErrNoCall
	}
	owner := c.parties[0].user // the caller placed it; else the callee answered it
	if owner.ID == "" {
		owner = c.parties[1].user
	}
	if owner.ID == "" {
		return nil, ErrNoOwner
	}
	now := b.now().UTC()
	var parts []invite.Participant
	for _, p := range c.parties {
		parts = append(parts, invite.Participant{ID: p.id, User: p.user.ID, Name: p.user.Name, Number: numberOf(p.user)})
	}
	cf := &conf{id: id, rec: c.rec, st: invite.NewCall(id, owner.ID, now, parts...), pair: c,
		parts: map[string]*confPart{}, stops: map[string]context.CancelFunc{}}
	if b.confs == nil {
		b.confs, b.confDialogs = map[string]*conf{}, map[string]*conf{}
	}
	b.confs[id] = cf
	b.confCount.Add(1)
	return cf, nil
}

// ConfView is a call with invitations as the API shows it.
type ConfView struct {
	ID           string               `json:"id"`
	Owner        string               `json:"owner"`
	Mixed        bool                 `json:"mixed"`
	Participants []invite.Participant `json:"participants"`
	Invitations  []invite.Invitation  `json:"invitations"`
	History      []invite.Event       `json:"history,omitempty"`
}

func (cf *conf) view(now time.Time) ConfView {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return ConfView{ID: cf.id, Owner: cf.st.Owner(), Mixed: cf.pair == nil, Participants: cf.st.Participants(),
		Invitations: cf.st.Invitations(), History: cf.st.History(now)}
}

// Conference is call id's participants and invitations; ok is false when
// the call has none (a plain two-party call or no such call).
func (b *B2BUA) Conference(id string) (ConfView, bool) {
	b.mu.Lock()
	cf := b.confs[id]
	b.mu.Unlock()
	if cf == nil {
		return ConfView{}, false
	}
	return cf.view(b.now().UTC()), true
}

// CallOwner is the owner of call id (user ID): the conf's, or who placed
// (else answered) a plain call.
func (b *B2BUA) CallOwner(id string) (string, error) {
	b.mu.Lock()
	cf := b.confs[id]
	b.mu.Unlock()
	if cf != nil {
		cf.mu.Lock()
		defer cf.mu.Unlock()
		return cf.st.Owner(), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if !c.bridge && c.rec != nil && c.rec.ID == id {
			if c.parties[0].user.ID != "" {
				return c.parties[0].user.ID, nil
			}
			return c.parties[1].user.ID, nil
		}
	}
	return "", ErrNoCall
}

// availability answers package invite's question from the registrations
// and calls here.
type availability struct {
	ctx  context.Context
	b    *B2BUA
	acct account.Account
}

func (a availability) Available(userID string) bool {
	return presence(a).State(userID) == sdg.Idle
}

// Invite sends an invitation to call id on behalf of by (a user ID; an
// admin passes the call's owner).
func (b *B2BUA) Invite(ctx context.Context, by, id string, r invite.Request) (invite.Invitation, error) {
	b.mu.Lock()
	mixer := b.mixer
	b.mu.Unlock()
	if mixer == nil {
		return invite.Invitation{}, ErrNoMixer
	}
	cf, err := b.confOf(id)
	if err != nil {
		return invite.Invitation{}, err
	}
	acct, err := b.dir.Account(ctx)
	if err != nil {
		return invite.Invitation{}, fmt.Errorf("read account: %w", err)
	}
	if r.Kind == invite.KindGroup {
		if err := b.checkGroup(ctx, r.SDG); err != nil {
			return invite.Invitation{}, err
		}
	}
	return b.launch(cf, acct, func() (invite.Invitation, error) {
		return cf.st.Invite(by, r, availability{ctx: ctx, b: b, acct: acct}, b.now().UTC())
	})
}

// launch records an invitation made by send (under the conf's lock) and
// rings it.
func (b *B2BUA) launch(cf *conf, acct account.Account, send func() (invite.Invitation, error)) (invite.Invitation, error) {
	cf.mu.Lock()
	inv, err := send()
	if err != nil {
		cf.mu.Unlock()
		return invite.Invitation{}, err
	}
	ictx, cancel := context.WithCancel(context.Background())
	cf.stops[inv.ID] = cancel
	cf.mu.Unlock()
	go b.runInvitation(ictx, cf, inv, acct)
	return inv, nil
}

// RetryInvitation sends a failed call-out again.
func (b *B2BUA) RetryInvitation(ctx context.Context, by, id, invID string) (invite.Invitation, error) {
	cf, err := b.existingConf(id)
	if err != nil {
		return invite.Invitation{}, err
	}
	acct, err := b.dir.Account(ctx)
	if err != nil {
		return invite.Invitation{}, fmt.Errorf("read account: %w", err)
	}
	return b.launch(cf, acct, func() (invite.Invitation, error) { return cf.st.Retry(by, invID, b.now().UTC()) })
}

func (b *B2BUA) existingConf(id string) (*conf, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cf := b.confs[id]; cf != nil {
		return cf, nil
	}
	return nil, ErrNoCall
}

// CancelInvitation ends an invitation at its owner's request.
func (b *B2BUA) CancelInvitation(ctx context.Context, by, id, invID string) (invite.Invitation, error) {
	cf, err := b.existingConf(id)
	if err != nil {
		return invite.Invitation{}, err
	}
	cf.mu.Lock()
	inv, err := cf.st.Cancel(by, invID, b.now().UTC())
	stop := cf.stops[invID]
	cf.mu.Unlock()
	if err == nil && stop != nil {
		stop()
	}
	return inv, err
}

// HandOver makes user to the owner of call id.
func (b *B2BUA) HandOver(ctx context.Context, by, id, to string) error {
	cf, err := b.confOf(id)
	if err != nil {
		return err
	}
	cf.mu.Lock()
	ended, err := cf.st.HandOver(by, to, b.now().UTC())
	stops := cf.stopsOf(ended)
	cf.mu.Unlock()
	for _, s := range stops {
		s()
	}
	return err
}

func (cf *conf) stopsOf(ended []invite.Invitation) []context.CancelFunc {
	var out []context.CancelFunc
	for _, inv := range ended {
		if s := cf.stops[inv.ID]; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// checkGroup makes sure sdgID is an SDG whose route is a group.
func (b *B2BUA) checkGroup(ctx context.Context, sdgID string) error {
	idx, err := b.groups(ctx)
	if err != nil {
		return err
	}
	g, ok := idx.SDG(sdgID)
	if !ok {
		return fmt.Errorf("%w: no SDG %q", invite.ErrBadRequest, sdgID)
	}
	if g.Route == nil || g.Route.Type != account.RouteGroup {
		return fmt.Errorf("%w: SDG %q does not route to a group", invite.ErrBadRequest, sdgID)
	}
	return nil
}

// runInvitation rings the invitee with a leg of the call's room and, when
// they answer, mixes the call and adds them.
func (b *B2BUA) runInvitation(ctx context.Context, cf *conf, inv invite.Invitation, acct account.Account) {
	log := b.log.With("call", cf.id, "invitation", inv.ID, "type", inv.Kind)
	defer func() {
		cf.mu.Lock()
		if s := cf.stops[inv.ID]; s != nil {
			s()
			delete(cf.stops, inv.ID)
		}
		cf.mu.Unlock()
	}()
	room, err := b.roomOf(cf)
	if err != nil {
		log.Warn("invitation: no room", "error", err)
		b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonUnreachable)
		return
	}
	leg, err := room.Join(inv.ID, netip.AddrPort{}, g711.PCMU, defaultDTMFPT)
	if err != nil {
		log.Warn("invitation: join the room", "error", err)
		b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonUnreachable)
		return
	}
	if inv.Kind == invite.KindCallout {
		b.callOutInvitation(ctx, cf, inv, leg, acct, log)
		return
	}
	offer := roomOffer(leg.Addr())
	rt := route{acct: acct, hops: maxForwards, rec: cf.rec}
	switch inv.Kind {
	case invite.KindUser:
		u, err := b.dir.UserByID(ctx, inv.User)
		if err != nil {
			leg.Leave()
			b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonUnreachable)
			return
		}
		rt.callee, rt.targets = u, b.memberTargets(ctx, acct, []string{u.ID})
	case invite.KindGroup:
		rt.targets = b.memberTargets(ctx, acct, b.groupInvitees(ctx, cf, inv.SDG, acct))
	}
	if len(rt.targets) == 0 {
		leg.Leave()
		b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonUnreachable)
		return
	}
	owner := b.ownerUser(ctx, cf)
	shown := account.User{Name: "Conference: " + owner.Name, Extension: owner.Extension, SIP: owner.SIP}
	winner, tg, status := b.fork(ctx, offer, shown, rt, func(*sip.Response) {})
	if winner == nil {
		leg.Leave()
		switch status {
		case 486:
			b.invitationFailed(cf, inv.ID, invite.Declined, invite.ReasonDeclined)
		case 487: // cancelled: the invitation ended already
		default:
			b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonNoAnswer)
		}
		return
	}
	if err := winner.Ack(context.Background()); err != nil {
		log.Warn("invitation: ack", "error", err)
	}
	user := rt.callee
	if tg.user != nil {
		user = *tg.user
	}
	answer := winner.InviteResponse.Body()
	codec, pt, ok := ivrFormats(answer, nil)
	if !ok {
		hangUpAnswered(winner)
		leg.Leave()
		b.invitationFailed(cf, inv.ID, invite.Failed, invite.ReasonUnreachable)
		return
	}
	leg.SetCodec(codec, pt)
	if peer, ok := sdpRemote(answer); ok {
		leg.SetPeer(peer)
	}
	p := placedParty(winner, user)
	if err := b.join(cf, inv.ID, "", p, leg, codec, pt); err != nil {
		log.Info("invitation: the invitee answered too late", "error", err)
		b.hangUp(p)
		leg.Leave()
		return
	}
	b.engConnected(account.User{}, user, cf.rec, "")
	log.Info("invitee joined", "user", user.SIP.Username)
}

// defaultDTMFPT is the RFC 4733 payload type the room offers.
const defaultDTMFPT = 101

// roomOffer offers a room leg: both G.711 laws and RFC 4733 events.
func roomOffer(local netip.AddrPort) []byte {
	ip := "IP4"
	if local.Addr().Is6() {
		ip = "IP6"
	}
	addr := local.Addr().String()
	return []byte(fmt.Sprintf("v=0\r\no=outpost %d 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 %d\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
		time.Now().UnixNano()%1e9, ip, addr, ip, addr, local.Port(), defaultDTMFPT, defaultDTMFPT, defaultDTMFPT))
}

// groupInvitees is an SDG group's members who can be invited: not in the
// call, not ringing for another of its invitations, available.
func (b *B2BUA) groupInvitees(ctx context.Context, cf *conf, sdgID string, acct account.Account) []string {
	idx, err := b.groups(ctx)
	if err != nil {
		return nil
	}
	g, ok := idx.SDG(sdgID)
	if !ok || g.Route == nil {
		return nil
	}
	cf.mu.Lock()
	in := map[string]bool{}
	for _, p := range cf.st.Participants() {
		in[p.User] = true
	}
	for _, inv := range cf.st.Invitations() {
		if inv.Active() && inv.Kind == invite.KindUser {
			in[inv.User] = true
		}
	}
	cf.mu.Unlock()
	av := availability{ctx: ctx, b: b, acct: acct}
	var out []string
	for _, m := range g.Route.Members {
		if !in[m] && av.Available(m) {
			out = append(out, m)
		}
	}
	return out
}

func (b *B2BUA) ownerUser(ctx context.Context, cf *conf) account.User {
	cf.mu.Lock()
	id := cf.st.Owner()
	cf.mu.Unlock()
	u, _ := b.dir.UserByID(ctx, id)
	return u
}

// invitationFailed ends an invitation that did not bring anyone.
func (b *B2BUA) invitationFailed(cf *conf, invID, state, reason string) {
	cf.mu.Lock()
	cf.st.Decline(invID, state, reason, b.now().UTC())
	cf.mu.Unlock()
	b.closeRoomIfIdle(cf)
}

// roomOf opens the call's room (not mixing anyone yet).
func (b *B2BUA) roomOf(cf *conf) (Room, error) {
	b.mu.Lock()
	mixer := b.mixer
	b.mu.Unlock()
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.ended {
		return nil, errNotJoined
	}
	if cf.room != nil {
		return cf.room, nil
	}
	if mixer == nil {
		return nil, ErrNoMixer
	}
	room, err := mixer.Open(cf.id)
	if err != nil {
		return nil, fmt.Errorf("open room: %w", err)
	}
	cf.room = room
	return room, nil
}

// closeRoomIfIdle closes a room nobody is mixed in and no invitation
// rings for.
func (b *B2BUA) closeRoomIfIdle(cf *conf) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.room == nil || cf.pair == nil {
		return
	}
	for _, inv := range cf.st.Invitations() {
		if inv.Active() {
			return
		}
	}
	cf.room.Close()
	cf.room = nil
}

// join adds p, answered on leg, to the call: the call is mixed first if
// it was not. invID is the invitation p accepted; "" for one who joins
// without (how says why: "merged", "dialled in").
func (b *B2BUA) join(cf *conf, invID, how string, p *party, leg RoomLeg, codec g711.Codec, pt uint8) error {
	now := b.now().UTC()
	cf.mu.Lock()
	if cf.ended {
		cf.mu.Unlock()
		return errNotJoined
	}
	part := invite.Participant{ID: p.id, User: p.user.ID, Name: p.user.Name, Number: numberOf(p.user)}
	var err error
	if invID == "" {
		err = cf.st.Join(part, how, now)
	} else {
		err = cf.st.Accept(invID, part, now)
	}
	if err != nil {
		cf.mu.Unlock()
		return err
	}
	pair := cf.pair
	cf.pair = nil
	cf.parts[p.id] = &confPart{p: p, leg: leg, codec: codec, dtmfPT: pt}
	room := cf.room
	cf.mu.Unlock()
	b.mu.Lock()
	b.confDialogs[p.id] = cf
	if p.user.ID != "" {
		b.onCalls[p.user.ID]++
	}
	b.mu.Unlock()
	if pair != nil {
		b.mix(cf, pair, room)
	}
	return nil
}

// mix moves a two-party call into its room: each phone re-INVITEd to a
// leg of its own; a party anchored in the relay's far side (an SBC) keeps
// its session, whose near side now faces the room.
func (b *B2BUA) mix(cf *conf, c *call, room Room) {
	c.stopMusic() // a held call mixed: the room takes over the media
	b.mu.Lock()
	for _, p := range c.parties {
		if b.calls[p.id] == c {
			delete(b.calls, p.id)
		}
		b.confDialogs[p.id] = cf
	}
	b.mu.Unlock()
	for _, p := range c.parties {
		part, err := b.mixParty(room, p)
		if err != nil {
			b.log.Warn("conference: a party could not be mixed; hanging it up", "call", cf.id, "dialog", p.id, "error", err)
			b.hangUp(p)
			b.leaveConf(cf, p.id)
			continue
		}
		cf.mu.Lock()
		cf.parts[p.id] = part
		cf.mu.Unlock()
	}
	b.log.Info("call mixed", "call", cf.id)
}

func (b *B2BUA) mixParty(room Room, p *party) (*confPart, error) {
	heard, _ := p.lastSDP()
	codec, pt, ok := ivrFormats(heard, nil)
	if !ok {
		codec, pt = g711.PCMU, defaultDTMFPT
	}
	if m := p.media; m != nil && m.side == 1 {
		// The far end of an anchored call: the relay's near side goes to
		// the room; the far end sees nothing change.
		leg, err := room.Join(p.id, m.sess.Local(0), codec, pt)
		if err != nil {
			return nil, err
		}
		m.sess.SetRemote(0, leg.Addr())
		return &confPart{p: p, leg: leg, codec: codec, dtmfPT: pt}, nil
	}
	peer, _ := sdpRemote(heard)
	leg, err := room.Join(p.id, peer, codec, pt)
	if err != nil {
		return nil, err
	}
	p.media = nil // a phone near an anchored call leaves the relay for the room
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	res, err := b.offer(ctx, p, sip.INVITE, ivrAnswer(leg.Addr(), codec, pt), sdpType)
	if err != nil || !res.IsSuccess() {
		leg.Leave()
		if err == nil {
			err = fmt.Errorf("re-INVITE answered %d", res.StatusCode)
		}
		return nil, err
	}
	b.ack(p, nil)
	if addr, ok := sdpRemote(res.Body()); ok {
		leg.SetPeer(addr)
	}
	return &confPart{p: p, leg: leg, codec: codec, dtmfPT: pt}, nil
}

// confByDialog finds the conf a participant's dialog belongs to.
func (b *B2BUA) confByDialog(id string) *conf {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.confDialogs[id]
}

// leaveConf: participant dialog id left (or was hung up). With one left,
// the call ends.
func (b *B2BUA) leaveConf(cf *conf, id string) {
	now := b.now().UTC()
	cf.mu.Lock()
	part := cf.parts[id]
	delete(cf.parts, id)
	stops := cf.stopsOf(cf.st.Leave(id, now))
	var last []*confPart
	endNow := !cf.ended && len(cf.st.Participants()) <= 1
	if endNow {
		cf.ended = true
		stops = append(stops, cf.stopsOf(cf.st.End(now))...)
		for _, p := range cf.parts {
			last = append(last, p)
		}
	}
	room := cf.room
	cf.mu.Unlock()
	for _, s := range stops {
		s()
	}
	b.mu.Lock()
	delete(b.confDialogs, id)
	if part != nil && part.p.user.ID != "" {
		b.lastCallEnd[part.p.user.ID] = now
		if b.onCalls[part.p.user.ID]--; b.onCalls[part.p.user.ID] <= 0 {
			delete(b.onCalls, part.p.user.ID)
		}
	}
	b.mu.Unlock()
	if part != nil {
		part.leg.Leave()
		if part.p.media != nil {
			part.p.media.sess.Close()
		}
	}
	b.mu.Lock()
	rec := b.confRecs[id]
	delete(b.confRecs, id)
	b.mu.Unlock()
	if rec != nil { // a call-out's own record
		b.finish(rec, 200, DispAnswered)
	}
	if !endNow {
		return
	}
	for _, p := range last {
		b.hangUp(p.p)
		b.leaveConf(cf, p.p.id)
	}
	if room != nil {
		room.Close()
	}
	b.mu.Lock()
	delete(b.confs, cf.id)
	b.confCount.Add(-1)
	for k := range b.consults {
		if strings.HasSuffix(k, "\x00"+cf.id) {
			delete(b.consults, k)
		}
	}
	b.mu.Unlock()
	b.active.Add(-1)
	b.finish(cf.rec, 200, DispAnswered)
	b.log.Info("conference ended", "call", cf.id)
}

// confInDialog answers a participant's in-dialog request itself: a
// re-INVITE or UPDATE gets the room leg's description (and moves the
// leg's peer), INFO a 200, anything else 403.
func (b *B2BUA) confInDialog(cf *conf, id string, req *sip.Request, tx sip.ServerTransaction) {
	cf.mu.Lock()
	part := cf.parts[id]
	cf.mu.Unlock()
	if part == nil {
		respond(tx, req, 491, "Request Pending: the call is being mixed")
		return
	}
	switch req.Method {
	case sip.INVITE, sip.UPDATE:
	case sip.INFO:
		respond(tx, req, 200, "OK")
		return
	default:
		respond(tx, req, 403, "Forbidden: not in a conference")
		return
	}
	body := req.Body()
	dir := "sendrecv"
	if isSDP(req) && len(body) > 0 {
		part.p.heard(body)
		if addr, ok := sdpRemote(body); ok {
			part.leg.SetPeer(addr)
		}
		if codec, pt, ok := ivrFormats(body, nil); ok && (codec != part.codec || pt != part.dtmfPT) {
			part.leg.SetCodec(codec, pt)
			part.codec, part.dtmfPT = codec, pt
		}
		dir = answerDirectionOf(body)
		part.leg.SetMute(dir == "recvonly" || dir == "inactive") // on hold: nothing of theirs to mix
	}
	sdp := withDirection(ivrAnswer(part.leg.Addr(), part.codec, part.dtmfPT), dir)
	res := sip.NewResponseFromRequest(req, 200, "OK", part.p.told(sdp))
	res.AppendHeader(sip.HeaderClone(&b.dialogs.ua.ContactHDR))
	res.AppendHeader(sip.NewHeader("Content-Type", sdpType))
	_ = tx.Respond(res)
}

// answerDirectionOf is the direction answering an offer (RFC 3264 §6.1).
func answerDirectionOf(offer []byte) string {
	for _, line := range sdpLines(offer) {
		switch line {
		case "a=sendonly":
			return "recvonly"
		case "a=recvonly":
			return "sendonly"
		case "a=inactive":
			return "inactive"
		}
	}
	return "sendrecv"
}

// callOutInvitation rings a number through the trunks for an invitation,
// sends its extension digits, plays the greeting and waits for 1, then
// joins the callee.
func (b *B2BUA) callOutInvitation(ctx context.Context, cf *conf, inv invite.Invitation, leg RoomLeg,
	acct account.Account, log *slog.Logger) {
	fail := func(state, reason string) {
		leg.Leave()
		b.invitationFailed(cf, inv.ID, state, reason)
	}
	b.mu.Lock()
	t, ivrs := b.trunks, b.ivr
	b.mu.Unlock()
	if t == nil || ivrs == nil {
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	owner := b.ownerUser(ctx, cf)
	cfgDir, ok := b.dir.(CalloutDirectory)
	if !ok {
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	co, err := cfgDir.Callout(ctx)
	if err != nil {
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	trunkDir, ok := b.dir.(TrunkDirectory)
	if !ok {
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	all, err := trunkDir.Trunks(ctx)
	if err != nil {
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	callerID, trunks := b.calloutRoute(ctx, co, inv.Number, owner, all)
	if len(trunks) == 0 {
		log.Warn("call-out: no trunk", "number", inv.Number)
		fail(invite.Failed, invite.ReasonUnreachable)
		return
	}
	rec := &store.CallRecord{ID: newRecordID(), CallID: sip.GenerateTagN(24), Caller: owner.SIP.Username, CallerName: owner.Name,
		Dialled: inv.Number, Destination: DestExternal, Callee: inv.Number, Start: b.now().UTC(), Node: b.nodeID,
		Site: owner.Site, Route: "invitation:" + cf.id}
	onTimeout, bind := b.mediaTimeout()
	ms, err := t.Anchor.Allocate(rec.CallID, onTimeout)
	if err != nil {
		fail(invite.Failed, invite.ReasonUnreachable)
		b.finish(rec, 503, DispFailed)
		return
	}
	bind(ms)
	site, _ := b.dir.Site(ctx, owner.Site)
	out := outCall{caller: owner, site: site, dest: Destination{Kind: DestExternal, Number: inv.Number}, hops: maxForwards,
		callerID: callerID}
	offer, _ := anchoredSDP(lateOffer, ms.Local(0), nil)
	var to *party
	var sess *sipgo.DialogClientSession
	for _, trunk := range trunks {
		done, ok := t.Channels.AcquireTrunk(trunk, false)
		if !ok {
			continue
		}
		p, s, oc := b.tryTrunk(ctx, t, trunk, ms, offer, &out, func(*sip.Response, *party) {})
		if oc.err == nil {
			to, sess = p, s
			context.AfterFunc(s.Context(), done)
			break
		}
		done()
		if ctx.Err() != nil || !sbc.FailOver(oc.attempt) {
			break
		}
	}
	if sess == nil {
		ms.Close()
		if ctx.Err() != nil {
			b.finish(rec, 487, DispCancelled)
			return
		}
		fail(invite.Failed, invite.ReasonNoAnswer)
		b.finish(rec, 480, DispNoAnswer)
		return
	}
	if err := sess.Ack(context.Background()); err != nil {
		log.Warn("call-out: ack", "error", err)
	}
	context.AfterFunc(sess.Context(), ms.Close)
	rec.Answer, rec.Status = b.now().UTC(), 200
	// The callee talks to an IVR endpoint first: extension digits, the
	// greeting, 1.
	codec, pt, _ := ivrFormats(sess.InviteResponse.Body(), nil)
	iv, err := ivrs.Open(rec.CallID, ms.Local(0), codec, pt)
	if err != nil {
		hangUpAnswered(sess)
		fail(invite.Failed, invite.ReasonUnreachable)
		b.finish(rec, 500, DispFailed)
		return
	}
	ms.SetRemote(0, iv.Addr())
	hangUp := func(state, reason, disp string) {
		iv.Close()
		_ = sess.Bye(context.Background())
		fail(state, reason)
		b.finish(rec, 200, disp)
	}
	if inv.DTMF != "" {
		if err := iv.SendDigits(ctx, inv.DTMF); err != nil {
			hangUp(invite.Failed, invite.ReasonUnreachable, DispFailed)
			return
		}
	}
	if co.RequirePress1 {
		prompt := co.GreetingPrompt
		if prompt == "" {
			prompt = "callout-greeting"
		}
		key, err := iv.Menu(mergeDone(ctx, sess.Context()), []string{prompt}, 10*time.Second)
		if err != nil || key != '1' {
			log.Info("call-out: the callee did not press 1", "key", string(key), "error", err)
			hangUp(invite.Declined, invite.ReasonNoPress1, DispRefused)
			return
		}
	}
	iv.Close()
	to.user = account.User{Name: inv.Name, Extension: inv.Number, SIP: account.SIPCredentials{Username: inv.Number}}
	if err := b.joinAnchored(cf, inv.ID, "", to, ms, leg, codec, pt); err != nil {
		_ = sess.Bye(context.Background())
		leg.Leave()
		b.finish(rec, 200, DispCancelled)
		return
	}
	b.keepConfRecord(to, rec)
	log.Info("call-out joined", "number", inv.Number)
}

// mergeDone is a context that ends when either ends.
func mergeDone(a, b context.Context) context.Context {
	ctx, cancel := context.WithCancel(a)
	context.AfterFunc(b, cancel)
	return ctx
}

// CalloutDirectory reads the snapshot's callout settings.
type CalloutDirectory interface {
	Callout(ctx context.Context) (account.Callout, error)
}

// calloutRoute is the caller ID a call-out presents and the trunks that
// may place it: those of the sites in the caller ID's country, healthy,
// in selection order; the owner's site's when none is.
func (b *B2BUA) calloutRoute(ctx context.Context, co account.Callout, number string, owner account.User, all []account.Trunk) (string, []account.Trunk) {
	t := b.trunksSet()
	sitesOf := func(country string) []string {
		var out []string
		for _, tr := range all {
			if s, err := b.dir.Site(ctx, tr.Site); err == nil && strings.EqualFold(s.Country, country) {
				out = append(out, tr.Site)
			}
		}
		return out
	}
	selectFor := func(sites []string) []account.Trunk {
		var out []account.Trunk
		seen := map[string]bool{}
		for _, site := range sites {
			if seen[site] {
				continue
			}
			seen[site] = true
			sel := sbc.Select(sbc.SelectRequest{Site: site, Trunks: all, Health: t.Health.States(), InUse: t.Channels.Counts()}, t.Rand)
			out = append(out, sel.Trunks...)
		}
		return out
	}
	id, ok := invite.CallerID(co, number, func(id account.CallerID) bool { return len(selectFor(sitesOf(id.Country))) > 0 })
	if !ok {
		return "", selectFor([]string{owner.Site})
	}
	trunks := selectFor(sitesOf(id.Country))
	if len(trunks) == 0 {
		trunks = selectFor([]string{owner.Site})
	}
	return id.Number, trunks
}

// endPairConf ends the invitations of a call that ended before anyone
// joined (its two parties hung up).
func (b *B2BUA) endPairConf(id string) {
	b.mu.Lock()
	cf := b.confs[id]
	b.mu.Unlock()
	if cf == nil {
		return
	}
	cf.mu.Lock()
	if cf.pair == nil || cf.ended {
		cf.mu.Unlock()
		return
	}
	cf.ended = true
	stops := cf.stopsOf(cf.st.End(b.now().UTC()))
	room := cf.room
	cf.room = nil
	cf.mu.Unlock()
	for _, s := range stops {
		s()
	}
	if room != nil {
		room.Close()
	}
	b.mu.Lock()
	if b.confs[id] == cf {
		delete(b.confs, id)
		b.confCount.Add(-1)
	}
	b.mu.Unlock()
}
