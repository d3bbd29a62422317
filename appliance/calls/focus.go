package calls

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/invite"
)

// Conferences from a phone's conference key: the "network conference" of
// Yealink, Poly, Cisco and Grandstream phones, after RFC 4579's ad hoc
// conferences, with the node as the focus:
//
//   - An INVITE to the conference factory URI — user part "conference" at
//     any domain the node serves (sip:conference@acme.example) — makes a
//     conference owned by the caller: the node answers with a leg of a
//     new room, its Contact the conference's own URI
//     (sip:conf-<call id>@node;isfocus).
//   - In that dialog the phone REFERs each call it merges: Refer-To names
//     the call's far party with Replaces naming the phone's dialog of
//     that call. The node moves the far party into the room (a re-INVITE
//     to a leg of it; a PSTN party keeps its relay session, pointed at the
//     room), hangs up the phone's old dialog, and NOTIFYs 200.
//   - An INVITE with Replaces to the factory or a conference's URI does
//     both at once: the new dialog joins, the named call's far party too,
//     and the named dialog ends. An INVITE to a conference's URI without
//     Replaces just joins it.
//   - A REFER in a conference without Replaces invites what Refer-To
//     names, as the owner's invitation: a user's extension, an SDG, or a
//     number (a call-out without extension digits).
//
// Only the owner merges or invites (package invite's rule); the calls
// merged must be the owner's own (Replaces names the owner's dialog).

// ConferenceFactory is the user part of the conference factory URI phones
// are configured with (docs/phones).
const ConferenceFactory = "conference"

// focusPrefix starts the user part of a conference's own URI.
const focusPrefix = "conf-"

// DestConference is a record's destination for a conference made with
// the conference key.
const DestConference = "conference"

// focusTarget reads a Request-URI user part: a new conference (factory),
// an existing one (its ID), or neither.
func focusTarget(user string) (id string, factory, ok bool) {
	switch {
	case strings.EqualFold(user, ConferenceFactory):
		return "", true, true
	case strings.HasPrefix(user, focusPrefix) && len(user) > len(focusPrefix):
		return user[len(focusPrefix):], false, true
	}
	return "", false, false
}

// errMerge is why a call cannot be merged into a conference.
var errMerge = errors.New("the call cannot be merged")

// onConferenceInvite answers an authenticated caller's INVITE to the
// conference factory or a conference's URI.
func (b *B2BUA) onConferenceInvite(req *sip.Request, tx sip.ServerTransaction, caller account.User, id string, factory bool) {
	b.mu.Lock()
	mixer := b.mixer
	b.mu.Unlock()
	if mixer == nil {
		respond(tx, req, 501, "Not Implemented: this node has no conference bridge")
		return
	}
	var merged *call
	var near *party
	if h := req.GetHeader("Replaces"); h != nil {
		c, p, code, reason := b.replacesDialog(h.Value(), &party{user: caller})
		if code != 0 {
			respond(tx, req, code, reason)
			return
		}
		merged, near = c, p
	}
	codec, pt, ok := ivrFormats(req.Body(), nil)
	if !ok {
		respond(tx, req, 488, "Not Acceptable Here: a conference needs PCMU or PCMA")
		return
	}
	var cf *conf
	if factory {
		cf = b.newFocus(caller, req)
	} else {
		b.mu.Lock()
		cf = b.confs[id]
		b.mu.Unlock()
		if cf == nil {
			respond(tx, req, 404, "Not Found: no such conference on this node")
			return
		}
	}
	room, err := b.roomOf(cf)
	if err != nil {
		respond(tx, req, 503, "Service Unavailable: the conference bridge cannot take the call")
		b.abandonFocus(cf)
		return
	}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.abandonFocus(cf)
		return
	}
	peer, _ := sdpRemote(req.Body())
	leg, err := room.Join(ds.ID, peer, codec, pt)
	if err != nil {
		_ = ds.Respond(503, "Service Unavailable: the conference bridge is full", nil)
		b.abandonFocus(cf)
		return
	}
	p := answeredParty(ds, caller)
	answer := p.told(withDirection(ivrAnswer(leg.Addr(), codec, pt), answerDirectionOf(req.Body())))
	how := "joined the conference's URI"
	if factory {
		how = "conference key"
	}
	if err := b.join(cf, "", how, p, leg, codec, pt); err != nil {
		leg.Leave()
		_ = ds.Respond(404, "Not Found: the conference has ended", nil)
		return
	}
	if err := ds.Respond(200, "OK", answer, sip.NewHeader("Content-Type", sdpType), b.focusContact(cf.id)); err != nil {
		b.log.Info("conference: the caller did not take the answer", "call", cf.id, "error", err)
		b.leaveConf(cf, p.id)
		return
	}
	b.engConnected(caller, account.User{}, cf.rec, "")
	b.log.Info("conference joined", "call", cf.id, "user", caller.SIP.Username, "factory", factory)
	if merged != nil {
		if err := b.mergeCall(cf, merged, near); err != nil {
			b.log.Info("conference: the replaced call was not merged", "call", cf.id, "error", err)
		}
	}
}

// newFocus makes a conference owned by caller, counted as one call in
// progress and recorded once when it ends.
func (b *B2BUA) newFocus(caller account.User, req *sip.Request) *conf {
	now := b.now().UTC()
	rec := &store.CallRecord{ID: newRecordID(), CallID: req.CallID().Value(), Caller: caller.SIP.Username, CallerName: caller.Name,
		Dialled: req.Recipient.User, Destination: DestConference, Start: now, Answer: now, Status: 200, Node: b.nodeID,
		Site: caller.Site}
	cf := &conf{id: rec.ID, rec: rec, st: invite.NewCall(rec.ID, caller.ID, now),
		parts: map[string]*confPart{}, stops: map[string]context.CancelFunc{}}
	b.mu.Lock()
	if b.confs == nil {
		b.confs, b.confDialogs = map[string]*conf{}, map[string]*conf{}
	}
	b.confs[cf.id] = cf
	b.confCount.Add(1)
	b.mu.Unlock()
	b.active.Add(1)
	b.engStarted(caller, rec)
	return cf
}

// abandonFocus forgets a conference nobody joined (its factory INVITE
// failed); a conference someone is in is left alone.
func (b *B2BUA) abandonFocus(cf *conf) {
	cf.mu.Lock()
	empty := !cf.ended && cf.pair == nil && len(cf.st.Participants()) == 0
	if empty {
		cf.ended = true
		cf.st.End(b.now().UTC())
	}
	room := cf.room
	cf.room = nil
	cf.mu.Unlock()
	if !empty {
		return
	}
	if room != nil {
		room.Close()
	}
	b.mu.Lock()
	if b.confs[cf.id] == cf {
		delete(b.confs, cf.id)
		b.confCount.Add(-1)
	}
	b.mu.Unlock()
	b.active.Add(-1)
	b.finish(cf.rec, 500, DispFailed)
}

// focusContact is the Contact of a conference's dialogs: its own URI,
// marked as a focus (RFC 4579 §3).
func (b *B2BUA) focusContact(id string) sip.Header {
	c := sip.HeaderClone(&b.dialogs.ua.ContactHDR).(*sip.ContactHeader)
	c.Address.User = focusPrefix + id
	if c.Params == nil {
		c.Params = sip.NewParams()
	}
	c.Params.Add("isfocus", "")
	return c
}

// mergeCall moves the far party of c — a connected two-party call of
// which near is the owner's dialog — into cf's room, and hangs up near.
func (b *B2BUA) mergeCall(cf *conf, c *call, near *party) error {
	far := c.other(near)
	if c.bridge {
		return fmt.Errorf("%w: click-to-call's own leg", errMerge)
	}
	cf.mu.Lock()
	room, ended := cf.room, cf.ended
	cf.mu.Unlock()
	if ended || room == nil {
		return fmt.Errorf("%w: the conference has ended", errMerge)
	}
	if !c.begin(near) {
		return fmt.Errorf("%w: a transfer of it is under way", errMerge)
	}
	defer c.done()
	b.mu.Lock()
	if b.calls[near.id] != c {
		b.mu.Unlock()
		return fmt.Errorf("%w: it ended", errMerge)
	}
	b.forgetLocked(c)
	b.finish(c.rec, 200, DispTransferred)
	b.confDialogs[far.id] = cf // a BYE from far meanwhile leaves the conference
	b.mu.Unlock()
	part, err := b.mixParty(room, far)
	if err != nil {
		b.hangUp(far)
		b.hangUp(near)
		b.mu.Lock()
		delete(b.confDialogs, far.id)
		b.mu.Unlock()
		return fmt.Errorf("%w: %v", errMerge, err)
	}
	b.hangUp(near)
	if far.sess.Context().Err() != nil {
		part.leg.Leave()
		b.mu.Lock()
		delete(b.confDialogs, far.id)
		b.mu.Unlock()
		return fmt.Errorf("%w: the far party hung up", errMerge)
	}
	if err := b.join(cf, "", "merged", far, part.leg, part.codec, part.dtmfPT); err != nil {
		part.leg.Leave()
		b.hangUp(far)
		return fmt.Errorf("%w: %v", errMerge, err)
	}
	b.engConnected(far.user, account.User{}, cf.rec, "")
	b.log.Info("call merged into the conference", "call", cf.id, "dialog", far.id)
	return nil
}

// onConfRefer handles a REFER in a conference dialog: a merge (Replaces)
// or an invitation, by the owner only.
func (b *B2BUA) onConfRefer(cf *conf, id string, req *sip.Request, tx sip.ServerTransaction) {
	cf.mu.Lock()
	part := cf.parts[id]
	owner := part != nil && cf.st.IsOwner(part.p.user.ID)
	cf.mu.Unlock()
	if !owner {
		respond(tx, req, 403, "Forbidden: only the call's owner adds to it")
		return
	}
	rt := req.ReferTo()
	if rt == nil || (rt.Address.Scheme != "sip" && rt.Address.Scheme != "sips") || rt.Address.User == "" {
		respond(tx, req, 400, "Bad Request: Refer-To must be a SIP URI with a user part")
		return
	}
	referrer := part.p
	if raw, ok := rt.Address.Headers.Get("Replaces"); ok {
		c, near, code, reason := b.replaces(raw, referrer)
		if code != 0 {
			respond(tx, req, code, reason)
			return
		}
		respond(tx, req, 202, "Accepted")
		go func() {
			b.notify(referrer, 100, "Trying", false)
			if err := b.mergeCall(cf, c, near); err != nil {
				b.notify(referrer, 487, "Request Terminated: "+err.Error(), true)
				return
			}
			b.notify(referrer, 200, "OK", true)
		}()
		return
	}
	r, err := b.referInvitation(context.Background(), referrer.user.Site, rt.Address.User)
	if err != nil {
		respond(tx, req, 404, "Not Found: "+err.Error())
		return
	}
	inv, err := b.Invite(context.Background(), referrer.user.ID, cf.id, r)
	if err != nil {
		respond(tx, req, 403, "Forbidden: "+err.Error())
		return
	}
	respond(tx, req, 202, "Accepted")
	go b.followInvitation(cf, inv.ID, referrer)
}

// referInvitation is the invitation a REFER's target asks for: a user, an
// SDG's group, or a number.
func (b *B2BUA) referInvitation(ctx context.Context, site, dialled string) (invite.Request, error) {
	dest := Resolve(Dial{CallerSite: site, Digits: dialled}, storePlan{ctx, b.dir})
	switch dest.Kind {
	case DestUser:
		return invite.Request{Kind: invite.KindUser, User: dest.ID}, nil
	case DestSDG:
		return invite.Request{Kind: invite.KindGroup, SDG: dest.ID}, nil
	case DestExternal:
		return invite.Request{Kind: invite.KindCallout, Name: dest.Number, Number: dest.Number}, nil
	}
	return invite.Request{}, fmt.Errorf("%q is neither a user, a group nor a number to call out to", dialled)
}

// followInvitation NOTIFYs the referrer of a REFER how the invitation it
// made ends: 180 while it rings, then 200 when the invitee joined, or the
// failure.
func (b *B2BUA) followInvitation(cf *conf, invID string, referrer *party) {
	b.notify(referrer, 180, "Ringing", false)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cf.mu.Lock()
		inv, ok := cf.st.Invitation(invID)
		cf.mu.Unlock()
		if !ok || !inv.Active() {
			code, reason := 487, "Request Terminated"
			switch {
			case ok && inv.State == invite.Accepted:
				code, reason = 200, "OK"
			case ok && inv.State == invite.Declined:
				code, reason = 603, "Decline"
			case ok && inv.State == invite.Failed:
				code, reason = 480, "Temporarily Unavailable: "+inv.Reason
			}
			b.notify(referrer, code, reason, true)
			return
		}
		select {
		case <-referrer.sess.Context().Done():
			return
		case <-tick.C:
		}
	}
}
