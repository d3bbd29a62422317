package calls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/invite"
)

// Actions on a user's engagements (the call widget's requests). Each acts
// on a real call through SIP: the B2BUA is a party of every dialog.
//
//   - Click-to-call (RFC 3725 third-party call control): the node calls
//     the user's own phones, asking them to answer at once (Call-Info
//     answer-after=0, Alert-Info auto-answer); the first to answer is
//     anchored in the media relay, and the node then places the call to
//     the destination as the user, through its own SIP listener, signed
//     like a node-to-node call (originateHeader): dial plan, SDGs, trunks
//     and toll-fraud policy apply as if the user had dialled from the
//     phone. The relay joins the two.
//   - Hold and mute are re-INVITEs of the other party (RFC 3264 §8.4):
//     inactive on hold, recvonly when muted (the other party keeps
//     sending, stops receiving), sendrecv again after.
//   - DTMF is an INFO (application/dtmf-relay) to the other party.
//   - A direct transfer is a blind transfer (transfer.go) by the user's
//     leg, which is then hung up.
//   - Accepting a ringing call asks the ringing phone to answer with an
//     unsolicited NOTIFY (Event: talk), which Yealink, Poly and Cisco
//     phones honour when remote control is enabled; rejecting it CANCELs
//     the legs ringing the user (a call to the user alone then gets 486).

// ErrNoPhone: the user has no registered phone to ring for click-to-call.
var ErrNoPhone = errors.New("none of your phones is registered")

// ErrBadDestination: what to dial is not a number, extension or username.
var ErrBadDestination = errors.New("the destination must be digits, optionally with a leading +, * or #")

// originateHeader carries click-to-call's call from the user into the
// node's own listener: "<user id> <record id> <unix seconds>;<hex MAC>".
const originateHeader = "X-Outpost-Originate"

// originateMAC signs a click-to-call INVITE as hop INVITEs are signed,
// with its own prefix so neither signature passes for the other.
func (b *B2BUA) originateMAC(callID, userID, recID string, at int64) string {
	return b.hopMAC("originate\x00"+callID, userID, recID, at)
}

// originated checks an originate header (signature, time, replay, as
// hopValid does a hop's); it returns the user ID and the record ID it
// names.
func (b *B2BUA) originated(callID, value string) (userID, recID string, ok bool) {
	f := strings.Fields(value)
	if len(f) != 3 || !b.hopValid("originate\x00"+callID, f[0], f[1], f[2]) {
		return "", "", false
	}
	return f[0], f[1], true
}

// validDial reports whether s can be dialled: digits with an optional
// leading + (or * / # service codes), or a username-like word.
func validDial(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
		case r == '+' && i == 0:
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// userByName finds a user of the account by SIP username.
func (b *B2BUA) userByName(ctx context.Context, username string) (account.User, error) {
	d, ok := b.dir.(interface {
		UserByUsername(ctx context.Context, username string) (account.User, error)
	})
	if !ok {
		return account.User{}, errors.New("the directory cannot find users by name")
	}
	u, err := d.UserByUsername(ctx, username)
	if err != nil {
		return account.User{}, fmt.Errorf("user %q: %w", username, err)
	}
	return u, nil
}

// ClickToCall calls the user's own phones first and, when one answers,
// calls dest from the user (third-party call control). It returns at once
// with the new engagement; what follows comes as events.
func (b *B2BUA) ClickToCall(ctx context.Context, username, dest string) (Engagement, error) {
	dest = strings.TrimSpace(dest)
	if !validDial(dest) {
		return Engagement{}, ErrBadDestination
	}
	user, err := b.userByName(ctx, username)
	if err != nil {
		return Engagement{}, err
	}
	t := b.trunksSet()
	if t == nil || t.Anchor == nil {
		return Engagement{}, fmt.Errorf("%w: this node has no media relay", ErrNotSupported)
	}
	rt, refusal := b.routeToUser(ctx, user.ID, &store.CallRecord{})
	if refusal != nil {
		if refusal.code == 480 {
			return Engagement{}, ErrNoPhone
		}
		return Engagement{}, fmt.Errorf("ring your phones: %d %s", refusal.code, refusal.reason)
	}
	rt.autoAnswer = true
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: sip.GenerateTagN(24), Caller: username, CallerName: user.Name,
		Dialled: dest, Start: b.now().UTC(), Node: b.nodeID, Site: user.Site, Route: "click-to-call",
	}
	b.engStarted(user, rec)
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.mu.Lock()
	if b.originating == nil {
		b.originating = map[string]originating{}
	}
	b.originating[rec.ID] = originating{user: username, cancel: cancel}
	b.mu.Unlock()
	go b.originate(octx, cancel, t, user, rt, dest, rec)
	e, _ := b.engagement(username, rec.ID)
	return e, nil
}

// originating is a click-to-call not connected yet.
type originating struct {
	user   string
	cancel context.CancelFunc
}

// originate rings the user's phones, then calls dest as the user and
// joins the two through the relay.
func (b *B2BUA) originate(ctx context.Context, cancel context.CancelFunc, t *Trunks, user account.User, rt route,
	dest string, rec *store.CallRecord) {
	defer func() {
		cancel()
		b.mu.Lock()
		delete(b.originating, rec.ID)
		b.mu.Unlock()
	}()
	log := b.log.With("record", rec.ID, "user", user.SIP.Username, "dest", dest)
	onTimeout, bind := b.mediaTimeout()
	ms, err := t.Anchor.Allocate(rec.CallID, onTimeout)
	if err != nil {
		log.Error("click-to-call: media relay", "error", err)
		b.finish(rec, 503, DispFailed)
		return
	}
	bind(ms)
	offer, _ := anchoredSDP(lateOffer, ms.Local(0), nil)
	shown := account.User{Name: "Calling " + dest, Extension: dest} // what the user's phone shows
	winner, _, status := b.fork(ctx, offer, shown, rt, func(*sip.Response) {})
	if winner == nil {
		ms.Close()
		log.Info("click-to-call: the user's phone did not answer", "status", status)
		if status == 487 {
			b.finish(rec, 487, DispCancelled)
		} else {
			b.finish(rec, status, DispNoAnswer)
		}
		return
	}
	if err := winner.Ack(context.Background()); err != nil {
		log.Warn("click-to-call: ack the user's phone", "error", err)
	}
	// The bridge's parties carry no user ID: the user is counted once,
	// as the caller of the call placed below.
	phone := placedParty(winner, account.User{Name: user.Name, SIP: user.SIP, Site: user.Site})
	phone.media = &media{sess: ms, side: 0}
	phone.heard(winner.InviteResponse.Body())
	toward, err := anchoredSDP(winner.InviteResponse.Body(), ms.Local(1), nil)
	if err != nil {
		toward = nil
	}
	loop, err := b.placeAs(ctx, user, dest, rec, toward)
	if err != nil {
		b.hangUp(phone)
		ms.Close()
		var de *sipgo.ErrDialogResponse
		if !errors.As(err, &de) && ctx.Err() == nil { // never reached the listener: nothing recorded it
			log.Warn("click-to-call: place the call", "error", err)
			b.finish(rec, 500, DispFailed)
		}
		return
	}
	far := placedParty(loop, account.User{})
	far.media = &media{sess: ms, side: 1}
	far.heard(loop.InviteResponse.Body())
	context.AfterFunc(loop.Context(), ms.Close)
	c := b.connectBridge(phone, far)
	if phone.sess.Context().Err() != nil { // the user hung up meanwhile
		if b.end(c, DispAnswered) {
			b.hangUp(far)
		}
	}
	log.Info("click-to-call connected")
}

// placeAs sends the call from user to dest into the node's own listener,
// with offer, and returns its answered (acknowledged) dialog.
func (b *B2BUA) placeAs(ctx context.Context, user account.User, dest string, rec *store.CallRecord, offer []byte) (*sipgo.DialogClientSession, error) {
	acct, err := b.dir.Account(ctx)
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	self := b.dialogs.ua.ContactHDR.Address
	port := self.Port
	if port == 0 {
		port = 5060
	}
	inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: dest, Host: self.Host, Port: port})
	inv.SetDestination(net.JoinHostPort(self.Host, strconv.Itoa(port)))
	inv.SetTransport("UDP")
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&sip.FromHeader{DisplayName: user.Name,
		Address: sip.Uri{Scheme: "sip", User: numberOf(user), Host: acct.SIPRealm}, Params: fromParams})
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: dest, Host: acct.SIPRealm}, Params: sip.NewParams()})
	inv.AppendHeader(sip.NewHeader("Call-ID", rec.CallID))
	inv.AppendHeader(sip.NewHeader(originateHeader,
		user.ID+" "+rec.ID+" "+b.originateMAC(rec.CallID, user.ID, rec.ID, b.now().Unix())))
	if len(offer) > 0 {
		inv.AppendHeader(sip.NewHeader("Content-Type", sdpType))
	}
	inv.SetBody(offer)
	sess, err := b.dialogs.writeInvite(ctx, inv)
	if err != nil {
		return nil, err
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		_ = sess.Close()
		return nil, err
	}
	if err := sess.Ack(context.Background()); err != nil {
		b.log.Warn("click-to-call: ack", "error", err)
	}
	return sess, nil
}

// onOriginate takes click-to-call's call from a user (originateHeader):
// routed as if the user had dialled it from a phone.
func (b *B2BUA) onOriginate(req *sip.Request, tx sip.ServerTransaction, value string, hops int) {
	userID, recID, ok := b.originated(req.CallID().Value(), value)
	if !ok {
		b.log.Warn("refused a click-to-call INVITE with a bad, stale or replayed signature", "source", req.Source())
		respond(tx, req, 403, "Forbidden")
		return
	}
	caller, err := b.dir.UserByID(context.Background(), userID)
	if err != nil {
		respond(tx, req, 404, "Not Found: no such user")
		return
	}
	rec := &store.CallRecord{
		ID: recID, CallID: req.CallID().Value(), Caller: caller.SIP.Username, CallerName: caller.Name,
		Dialled: req.Recipient.User, Start: b.now().UTC(), Node: b.nodeID, Site: caller.Site, Route: "click-to-call",
	}
	b.place(req, tx, caller, rec, hops)
}

// connectBridge records click-to-call's joining of the user's phone and
// the call it placed: a call in b.calls (in-dialog requests pass between
// the two), not counted as one more active call.
func (b *B2BUA) connectBridge(p1, p2 *party) *call {
	c := &call{parties: [2]*party{p1, p2}, bridge: true}
	b.mu.Lock()
	b.calls[p1.id], b.calls[p2.id] = c, c
	b.mu.Unlock()
	return c
}

// userCall finds username's connected call of engagement id and their
// party in it.
func (b *B2BUA) userCall(username, id string) (*call, *party) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c.rec == nil || c.rec.ID != id {
			continue
		}
		for _, p := range c.parties {
			if p.user.ID != "" && p.user.SIP.Username == username {
				return c, p
			}
		}
	}
	return nil, nil
}

// Hangup ends the user's call: connected, ringing the user (as Reject),
// or a click-to-call still ringing.
func (b *B2BUA) Hangup(ctx context.Context, username, id string) error {
	if cf, part := b.confPartOf(username, id); part != nil { // a conference: the user leaves it
		b.hangUp(part.p)
		b.leaveConf(cf, part.p.id)
		return nil
	}
	if c, _ := b.userCall(username, id); c != nil {
		if b.end(c, DispAnswered) {
			for _, p := range c.parties {
				b.hangUp(p)
			}
		}
		return nil
	}
	b.mu.Lock()
	o, ok := b.originating[id]
	b.mu.Unlock()
	if ok && o.user == username {
		o.cancel()
		return nil
	}
	if e, ok := b.engagement(username, id); ok && e.Direction == "inbound" {
		return b.Reject(ctx, username, id)
	}
	if _, ok := b.engagement(username, id); ok {
		return fmt.Errorf("%w: hang up a call you placed from your phone on the phone until it is answered", ErrNotSupported)
	}
	return ErrNoEngagement
}

// ringLeg is one leg ringing a user's phone for a call with a record.
type ringLeg struct {
	user     string
	cancel   context.CancelFunc
	declined bool
	inv      *sip.Request // the INVITE, once sent
}

func (b *B2BUA) addRingLeg(rec *store.CallRecord, user string, cancel context.CancelFunc) *ringLeg {
	if rec == nil {
		return nil
	}
	l := &ringLeg{user: user, cancel: cancel}
	b.mu.Lock()
	if b.ringLegs == nil {
		b.ringLegs = map[string][]*ringLeg{}
	}
	b.ringLegs[rec.ID] = append(b.ringLegs[rec.ID], l)
	b.mu.Unlock()
	return l
}

func (b *B2BUA) removeRingLeg(rec *store.CallRecord, l *ringLeg) {
	if l == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	legs := b.ringLegs[rec.ID]
	for i, x := range legs {
		if x == l {
			legs = append(legs[:i:i], legs[i+1:]...)
			break
		}
	}
	if len(legs) == 0 {
		delete(b.ringLegs, rec.ID)
	} else {
		b.ringLegs[rec.ID] = legs
	}
}

// declined reports whether l's user rejected the call.
func (b *B2BUA) declined(l *ringLeg) bool {
	if l == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return l.declined
}

// userLegs is what rings username's phones for engagement id.
func (b *B2BUA) userLegs(username, id string) []*ringLeg {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*ringLeg
	for _, l := range b.ringLegs[id] {
		if l.user == username {
			out = append(out, l)
		}
	}
	return out
}

// Reject declines a call ringing the user: their phones stop ringing; a
// call to the user alone is answered 486 Busy Here, a group goes on.
func (b *B2BUA) Reject(ctx context.Context, username, id string) error {
	legs := b.userLegs(username, id)
	if len(legs) == 0 {
		return ErrNoEngagement
	}
	b.mu.Lock()
	for _, l := range legs {
		l.declined = true
	}
	b.mu.Unlock()
	for _, l := range legs {
		l.cancel()
	}
	return nil
}

// Accept asks the user's ringing phone to answer (NOTIFY Event: talk).
func (b *B2BUA) Accept(ctx context.Context, username, id string) error {
	var inv *sip.Request
	b.mu.Lock()
	for _, l := range b.ringLegs[id] {
		if l.user == username && l.inv != nil {
			inv = l.inv
			break
		}
	}
	b.mu.Unlock()
	if inv == nil {
		return ErrNoEngagement
	}
	req := sip.NewRequest(sip.NOTIFY, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.To()))
	fp := sip.NewParams()
	fp.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&sip.FromHeader{Address: inv.To().Address, Params: fp})
	req.AppendHeader(sip.NewHeader("Event", "talk"))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	req.SetDestination(inv.Destination())
	req.SetTransport(inv.Transport())
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	res, err := b.dialogs.ua.Client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("ask the phone to answer: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: the phone refused to answer remotely (%d %s); enable its remote control (talk event)",
			ErrNotSupported, res.StatusCode, res.Reason)
	}
	return nil
}

// Hold puts the other party on hold (on) or takes it off.
func (b *B2BUA) Hold(ctx context.Context, username, id string, on bool) error {
	return b.redirect(ctx, username, id, func(e *Engagement) { e.Held = on })
}

// Mute stops (on) or restores the user's audio toward the other party.
func (b *B2BUA) Mute(ctx context.Context, username, id string, on bool) error {
	return b.redirect(ctx, username, id, func(e *Engagement) { e.Muted = on })
}

// redirect applies change to the engagement and re-INVITEs the other
// party with the direction that follows from hold and mute.
func (b *B2BUA) redirect(ctx context.Context, username, id string, change func(*Engagement)) error {
	if _, part := b.confPartOf(username, id); part != nil {
		// In a conference: mute takes the user out of the mix; hold is
		// the phone's own (it re-INVITEs, and is then not mixed).
		e, ok := b.engagement(username, id)
		if !ok {
			return ErrNoEngagement
		}
		change(&e)
		if e.Held {
			return fmt.Errorf("%w: hold a conference from the phone", ErrNotSupported)
		}
		part.leg.SetMute(e.Muted)
		b.engage(username, Engagement{ID: id}, EvChanged, func(x *Engagement) { x.Muted = e.Muted }, EngagementEvent{})
		return nil
	}
	c, p := b.userCall(username, id)
	if c == nil {
		return ErrNoEngagement
	}
	e, ok := b.engagement(username, id)
	if !ok {
		return ErrNoEngagement
	}
	wasHeld := e.Held
	change(&e)
	dir := "sendrecv"
	switch {
	case e.Held:
		dir = "inactive"
	case e.Muted:
		dir = "recvonly"
	}
	if !c.begin(p) {
		return fmt.Errorf("%w: the call is being transferred", ErrNotSupported)
	}
	defer c.done()
	// changed tells the user's views of the new state.
	changed := func() {
		b.engage(username, Engagement{ID: id}, EvChanged, func(x *Engagement) {
			x.Held, x.Muted = e.Held, e.Muted
			x.State = EngConnected
			if e.Held {
				x.State = EngHeld
			}
		}, EngagementEvent{})
	}
	if (e.Held != wasHeld || e.Held) && b.playsMusic() { // hold: music for the other party (hold.go)
		if err := b.webHold(c, p, e.Held); err != nil {
			return fmt.Errorf("hold: %w", err)
		}
		changed()
		return nil
	}
	heard, _ := p.lastSDP()
	if len(heard) == 0 {
		return fmt.Errorf("%w: no session description to change yet", ErrNotSupported)
	}
	far := c.other(p)
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := b.offer(ctx, far, sip.INVITE, withDirection(heard, dir), sdpType)
	if err != nil {
		return fmt.Errorf("re-INVITE the other party: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("the other party refused the change: %d %s", res.StatusCode, res.Reason)
	}
	b.ack(far, nil)
	changed()
	return nil
}

// withDirection sets a description's direction attribute (RFC 3264 §5.1)
// to dir: every direction line replaced, or one added when there is none.
func withDirection(sdp []byte, dir string) []byte {
	var out []byte
	found := false
	for _, l := range bytes.SplitAfter(sdp, []byte("\n")) {
		switch string(bytes.TrimRight(l, "\r\n")) {
		case "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive":
			out = append(out, "a="+dir+"\r\n"...)
			found = true
			continue
		}
		out = append(out, l...)
	}
	if !found {
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, "\r\n"...)
		}
		out = append(out, "a="+dir+"\r\n"...)
	}
	return out
}

// SendDTMF sends one key (0-9 * #) to the other party, as an INFO
// (application/dtmf-relay).
func (b *B2BUA) SendDTMF(ctx context.Context, username, id string, digit byte) error {
	if !strings.ContainsRune("0123456789*#", rune(digit)) {
		return fmt.Errorf("digit %q: must be one of 0-9 * #", digit)
	}
	c, p := b.userCall(username, id)
	if c == nil {
		return ErrNoEngagement
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	body := []byte("Signal=" + string(digit) + "\r\nDuration=160\r\n")
	res, err := b.offer(ctx, c.other(p), sip.INFO, body, "application/dtmf-relay")
	if err != nil {
		return fmt.Errorf("send the key: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("the other party refused the key: %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// Transfer connects the other party to dest and hangs up the user
// (direct); warm, it consults dest first (AddCall): the widget then
// completes or cancels it.
func (b *B2BUA) Transfer(ctx context.Context, username, id, dest string, warm bool) error {
	if warm {
		_, err := b.AddCall(ctx, username, id, dest)
		return err
	}
	if !validDial(dest) {
		return ErrBadDestination
	}
	c, p := b.userCall(username, id)
	if c == nil {
		return ErrNoEngagement
	}
	if !c.begin(p) {
		return fmt.Errorf("%w: a transfer is already under way", ErrNotSupported)
	}
	code, reason := b.blind(c, p, dest, nil)
	c.done()
	if code != 200 {
		return fmt.Errorf("transfer to %s: %d %s", dest, code, reason)
	}
	b.hangUp(p)
	return nil
}

// Consults (the widget's add-call, merge, complete and cancel) are
// invitations into the user's call (conference.go): adding a call invites
// dest (an extension rings that user, an SDG's its group, a number is a
// call-out) and the call is mixed when they answer, so merging is already
// done; completing hands the call to them (ownership, when a user) and
// hangs up the user; cancelling ends the invitation, or hangs up the
// consulted party once they joined.

// consultKey names a user's consult in a call.
func consultKey(username, id string) string { return username + "\x00" + id }

// AddCall invites dest into the user's call (the user must own it).
func (b *B2BUA) AddCall(ctx context.Context, username, id, dest string) (Engagement, error) {
	if !validDial(dest) {
		return Engagement{}, ErrBadDestination
	}
	user, err := b.userByName(ctx, username)
	if err != nil {
		return Engagement{}, err
	}
	if _, ok := b.engagement(username, id); !ok {
		return Engagement{}, ErrNoEngagement
	}
	r := invite.Request{Kind: invite.KindCallout, Name: dest, Number: dest}
	d := Resolve(Dial{CallerSite: user.Site, Digits: dest}, storePlan{ctx, b.dir})
	switch d.Kind {
	case DestUser:
		r = invite.Request{Kind: invite.KindUser, User: d.ID}
	case DestSDG:
		r = invite.Request{Kind: invite.KindGroup, SDG: d.ID}
	case DestExternal:
		r.Number = d.Number
	default:
		return Engagement{}, fmt.Errorf("%w: %s cannot be added to a call", ErrBadDestination, dest)
	}
	inv, err := b.Invite(ctx, user.ID, id, r)
	if err != nil {
		return Engagement{}, err
	}
	b.mu.Lock()
	if b.consults == nil {
		b.consults = map[string]string{}
	}
	b.consults[consultKey(username, id)] = inv.ID
	b.mu.Unlock()
	e, _ := b.engagement(username, id)
	return e, nil
}

// consult finds the user's consult in call id: its conf and invitation.
func (b *B2BUA) consult(username, id string) (*conf, invite.Invitation, error) {
	b.mu.Lock()
	invID := b.consults[consultKey(username, id)]
	cf := b.confs[id]
	b.mu.Unlock()
	if invID == "" || cf == nil {
		return nil, invite.Invitation{}, fmt.Errorf("%w: no consult call in this engagement", ErrNoEngagement)
	}
	cf.mu.Lock()
	inv, ok := cf.st.Invitation(invID)
	cf.mu.Unlock()
	if !ok {
		return nil, invite.Invitation{}, ErrNoEngagement
	}
	return cf, inv, nil
}

// joinedPart is the participant who accepted inv.
func (cf *conf) joinedPart(inv invite.Invitation) *confPart {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	for _, p := range cf.st.Participants() {
		if (p.User != "" && p.User == inv.Joined) || (p.User == "" && p.Name == inv.Joined) {
			return cf.parts[p.ID]
		}
	}
	return nil
}

// CancelConsult ends the consult: the invitation, or the consulted
// party's leg once they joined.
func (b *B2BUA) CancelConsult(ctx context.Context, username, id string) error {
	cf, inv, err := b.consult(username, id)
	if err != nil {
		return err
	}
	if inv.Active() {
		_, err := b.CancelInvitation(ctx, inv.By, id, inv.ID)
		return err
	}
	if part := cf.joinedPart(inv); part != nil {
		b.hangUp(part.p)
		b.leaveConf(cf, part.p.id)
		return nil
	}
	return fmt.Errorf("%w: the consulted party is not in the call", ErrNoEngagement)
}

// CompleteTransfer leaves the call to the consulted party (and the
// others): ownership goes to them when they are a user; the user is hung
// up.
func (b *B2BUA) CompleteTransfer(ctx context.Context, username, id string) error {
	cf, inv, err := b.consult(username, id)
	if err != nil {
		return err
	}
	if inv.State != invite.Accepted {
		return fmt.Errorf("%w: the consulted party has not answered", ErrNotSupported)
	}
	if inv.Kind != invite.KindCallout && inv.Joined != "" {
		if err := b.HandOver(ctx, inv.By, id, inv.Joined); err != nil {
			return err
		}
	}
	cf.mu.Lock()
	var mine *confPart
	for _, p := range cf.parts {
		if p.p.user.SIP.Username == username && p.p.user.ID != "" {
			mine = p
		}
	}
	cf.mu.Unlock()
	if mine == nil {
		return ErrNoEngagement
	}
	b.hangUp(mine.p)
	b.leaveConf(cf, mine.p.id)
	return nil
}

// MergeConsult: the consulted party is in the call already once they
// answered (the call is mixed).
func (b *B2BUA) MergeConsult(ctx context.Context, username, id string) error {
	_, inv, err := b.consult(username, id)
	if err != nil {
		return err
	}
	if inv.State != invite.Accepted {
		return fmt.Errorf("%w: the consulted party has not answered", ErrNotSupported)
	}
	return nil
}

// confPartOf finds username's leg in the conference of call id.
func (b *B2BUA) confPartOf(username, id string) (*conf, *confPart) {
	b.mu.Lock()
	cf := b.confs[id]
	b.mu.Unlock()
	if cf == nil {
		return nil, nil
	}
	cf.mu.Lock()
	defer cf.mu.Unlock()
	for _, p := range cf.parts {
		if p.p.user.ID != "" && p.p.user.SIP.Username == username {
			return cf, p
		}
	}
	return nil, nil
}
