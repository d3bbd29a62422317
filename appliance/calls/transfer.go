package calls

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Transfers (RFC 3515 REFER, RFC 5589 call control). A party of a
// connected call — the transferor — asks Outpost to connect the other
// party — the transferee — elsewhere:
//
//   - Blind: Refer-To names what to dial. Outpost rings it as a call from
//     the transferee, offering the transferee's last session description
//     (off hold), and when it answers re-INVITEs the transferee with the
//     answer. If nobody answers, the original call goes on.
//   - Attended (Replaces, RFC 3891): the transferor has a second call, to
//     the target, and Refer-To names that dialog. Outpost joins the two
//     far parties with a re-INVITE without offer to the transferee and the
//     transferee's fresh offer to the target, then hangs up the
//     transferor's second dialog.
//
// The transferor learns the outcome from NOTIFYs carrying a sipfrag
// (100 Trying, 180 Ringing, then the final status); it hangs up its own
// dialog after success, and Outpost does so itself after transferorGrace.
// Calls on both nodes of a node-to-node call transfer alike: each node
// joins its own parties.

// transferorGrace is how long a transferor may keep its dialog after a
// successful transfer before Outpost hangs it up.
const transferorGrace = 10 * time.Second

// OnRefer handles a transfer request from a party of a connected call.
func (b *B2BUA) OnRefer(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	if to := req.To(); to == nil || !to.Params.Has("tag") {
		respond(tx, req, 403, "Forbidden: REFER outside a call is not accepted")
		return
	}
	if cf, id := b.confOfRequest(req); cf != nil {
		b.onConfRefer(cf, id, req, tx)
		return
	}
	c, transferor := b.match(req)
	if c == nil && b.referInPark(req, tx) {
		return
	}
	if c == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	rt := req.ReferTo()
	if rt == nil || (rt.Address.Scheme != "sip" && rt.Address.Scheme != "sips") || rt.Address.User == "" {
		respond(tx, req, 400, "Bad Request: Refer-To must be a SIP URI with a user part")
		return
	}
	if _, ok := rt.Address.Headers.Get("Replaces"); !ok && b.isParkCode(rt.Address.User) {
		if !c.begin(transferor) {
			respond(tx, req, 491, "Request Pending: a transfer is already under way")
			return
		}
		respond(tx, req, 202, "Accepted")
		go b.parkRefer(c, transferor)
		return
	}
	var replaced *call
	var replacedParty *party
	if raw, ok := rt.Address.Headers.Get("Replaces"); ok {
		if r := b.parkReplacing(raw); r != nil { // attended park (parkattended.go)
			b.referToPark(req, tx, c, transferor, r, transferor)
			return
		}
		rc, rp, code, reason := b.replaces(raw, transferor)
		if code != 0 {
			respond(tx, req, code, reason)
			return
		}
		if rc == c {
			respond(tx, req, 400, "Bad Request: a call cannot replace itself")
			return
		}
		if c.other(transferor).media != nil && rc.other(rp).media != nil {
			// Each far party holds a relay session of its own; joining
			// them would need the two sessions bridged.
			respond(tx, req, 403, "Forbidden: two calls to or from the PSTN cannot be joined")
			return
		}
		replaced, replacedParty = rc, rp
	}
	if !c.begin(transferor) {
		respond(tx, req, 491, "Request Pending: a transfer is already under way")
		return
	}
	if replaced != nil && !replaced.begin(replacedParty) {
		c.done()
		respond(tx, req, 491, "Request Pending: a transfer is already under way")
		return
	}
	respond(tx, req, 202, "Accepted")
	go func() {
		b.notify(transferor, 100, "Trying", false)
		var code int
		var reason string
		if replaced == nil {
			code, reason = b.blind(c, transferor, rt.Address.User, func(code int, reason string) {
				b.notify(transferor, code, reason, false)
			})
		} else {
			code, reason = b.attended(c, transferor, replaced, replacedParty)
			replaced.done()
		}
		c.done()
		b.notify(transferor, code, reason, true)
		if code == 200 {
			b.log.Info("call transferred", "call_id", req.CallID().Value(), "by", transferor.user.SIP.Username,
				"attended", replaced != nil)
			time.AfterFunc(transferorGrace, func() { b.hangUp(transferor) })
			return
		}
		b.log.Info("transfer failed", "call_id", req.CallID().Value(), "by", transferor.user.SIP.Username, "status", code)
		c.mu.Lock()
		gone := c.leftEarly
		c.mu.Unlock()
		if gone && b.end(c, DispAnswered) {
			// The transferor hung up during a transfer that failed: the
			// transferee has nobody left to talk to.
			b.hangUp(c.other(transferor))
		}
	}()
}

// begin marks a transfer by p under way on c, unless one is.
func (c *call) begin(p *party) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transferor != nil {
		return false
	}
	c.transferor, c.leftEarly = p, false
	return true
}

// done ends the transfer under way on c.
func (c *call) done() {
	c.mu.Lock()
	c.transferor = nil
	c.mu.Unlock()
}

// replaces finds the call a Replaces value (RFC 3891, URL-encoded in the
// Refer-To) names, and the transferor's party in it; or the status to
// refuse the REFER with.
func (b *B2BUA) replaces(raw string, transferor *party) (*call, *party, int, string) {
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return nil, nil, 400, "Bad Request: malformed Replaces"
	}
	return b.replacesDialog(v, transferor)
}

// replacesDialog is replaces for a Replaces header's value (an INVITE's,
// not URL-encoded).
func (b *B2BUA) replacesDialog(v string, transferor *party) (*call, *party, int, string) {
	callID, toTag, fromTag, ok := parseReplaces(v)
	if !ok {
		return nil, nil, 400, "Bad Request: Replaces needs a Call-ID, to-tag and from-tag"
	}
	id, ok := b.dialogs.byTags(callID, toTag, fromTag)
	if !ok {
		return nil, nil, 481, "Call/Transaction Does Not Exist: no such call to replace on this node"
	}
	c, p := b.lookup(id)
	if c == nil {
		return nil, nil, 481, "Call/Transaction Does Not Exist: the call to replace is not connected"
	}
	if u, v := transferor.user.SIP.Username, p.user.SIP.Username; u != "" && v != "" && u != v {
		return nil, nil, 403, "Forbidden: the call to replace is not the transferor's"
	}
	return c, p, 0, ""
}

// parseReplaces reads a Replaces header's value (RFC 3891 §6.1:
// callid *(";" replaces-param)): the Call-ID and the to-tag and from-tag
// parameters (names case-insensitive, the last of a repeated one); ok is
// false when any of the three is missing or empty.
func parseReplaces(v string) (callID, toTag, fromTag string, ok bool) {
	parts := strings.Split(v, ";")
	callID, tags := strings.TrimSpace(parts[0]), map[string]string{}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		tags[strings.ToLower(k)] = val
	}
	toTag, fromTag = tags["to-tag"], tags["from-tag"]
	return callID, toTag, fromTag, callID != "" && toTag != "" && fromTag != ""
}

// blind rings what the transferor dialled for the transferee and, when it
// answers, connects the two. It returns the status for the transferor.
func (b *B2BUA) blind(c *call, transferor *party, dialled string, onRinging func(code int, reason string)) (int, string) {
	transferee := c.other(transferor)
	site := transferor.user.Site
	if transferee.user.Site != "" {
		site = transferee.user.Site
	}
	ctx := transferee.sess.Context() // the transferee hanging up stops the ringing
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: transferee.callID, Caller: transferee.user.SIP.Username, CallerName: transferee.user.Name,
		Dialled: dialled, Start: time.Now().UTC(), Node: b.nodeID, Site: site,
	}
	if transferee.user.SIP.Username == "" {
		rec.Caller = transferee.user.Extension
	}
	rt, refused := b.route(ctx, site, dialled, rec)
	if refused == nil && rt.feature != nil {
		refused = &refusal{404, "Not Found: a feature code is not a transfer target", DispRefused}
	}
	if refused != nil {
		b.finish(rec, refused.code, refused.disposition)
		return refused.code, refused.reason
	}
	heard, _ := transferee.lastSDP()
	offer := sendRecv(heard)
	// An anchored call (to or from the PSTN): the target takes the
	// transferor's side of the relay and is offered the relay's address;
	// the SBC keeps sending to the relay and sees no new address.
	var side *media
	if transferor.media != nil {
		side = transferor.media.handOver()
		offer = (&party{media: side}).told(offer)
	}
	var ringing sync.Once
	winner, _, status := b.fork(ctx, offer, transferee.user, rt, func(res *sip.Response) {
		if onRinging != nil {
			ringing.Do(func() { onRinging(res.StatusCode, res.Reason) })
		}
	})
	if winner == nil {
		disp := map[int]string{486: DispBusy, 487: DispCancelled}[status]
		if disp == "" {
			disp = DispNoAnswer
		}
		b.finish(rec, status, disp)
		return status, statusReasons[status]
	}
	if err := winner.Ack(context.Background()); err != nil {
		b.log.Warn("ack transfer target", "error", err)
	}
	target := placedParty(winner, rt.callee)
	if side != nil {
		target.media = side
		target.heard(winner.InviteResponse.Body()) // the relay now sends to the target
	}
	rctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	answer, _ := target.lastSDP()
	c.stopMusic() // a held transferee stops hearing music as it joins the target
	res, err := b.offer(rctx, transferee, sip.INVITE, answer, sdpType)
	if err != nil || !res.IsSuccess() {
		_ = winner.Bye(rctx)
		b.finish(rec, 500, DispFailed)
		return 500, "Server Internal Error: the transferee did not take the new call"
	}
	b.ack(transferee, nil)
	rec.Answer, rec.Status = time.Now().UTC(), 200
	if !b.swap(c, transferee, target, rec, nil) {
		_ = winner.Bye(rctx)
		b.finish(rec, 487, DispCancelled)
		return 487, "Request Terminated: the transferee hung up"
	}
	return 200, "OK"
}

// statusReasons are the reasons of the statuses fork returns.
var statusReasons = map[int]string{480: "Temporarily Unavailable", 486: "Busy Here", 487: "Request Terminated"}

// attended joins the transferee of c with the far party of the replaced
// call, and hangs up the transferor's party in the replaced call. It
// returns the status for the transferor.
func (b *B2BUA) attended(c *call, transferor *party, replaced *call, replacedParty *party) (int, string) {
	transferee, target := c.other(transferor), replaced.other(replacedParty)
	// A far party anchored in the relay (a PSTN call) keeps its session:
	// the other far party takes the side its near party had.
	switch {
	case transferee.media != nil:
		target.media = transferor.media.handOver()
	case target.media != nil:
		transferee.media = replacedParty.media.handOver()
	}
	c.stopMusic()
	replaced.stopMusic()
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	// A re-INVITE without offer: the transferee offers afresh (off hold).
	res, err := b.offer(ctx, transferee, sip.INVITE, nil, sdpType)
	if err != nil || !res.IsSuccess() || len(res.Body()) == 0 {
		if err == nil && res.IsSuccess() {
			_, sent := transferee.lastSDP()
			b.ack(transferee, sent)
		}
		return 500, "Server Internal Error: the transferee did not offer a session"
	}
	fresh := res.Body()
	res, err = b.offer(ctx, target, sip.INVITE, fresh, sdpType)
	if err != nil || !res.IsSuccess() {
		_, sent := transferee.lastSDP()
		b.ack(transferee, sent) // the transferee keeps the session it had
		return 500, "Server Internal Error: the transfer target did not take the call"
	}
	b.ack(target, nil)
	b.ack(transferee, res.Body())
	now := time.Now().UTC()
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: transferee.callID, Caller: transferee.user.SIP.Username, CallerName: transferee.user.Name,
		Callee: target.user.SIP.Username, Destination: DestUser, Start: now, Answer: now, Status: 200,
		Node: b.nodeID, Site: transferee.user.Site,
	}
	if !b.swap(c, transferee, target, rec, replaced) {
		return 487, "Request Terminated: a party hung up during the transfer"
	}
	b.hangUp(replacedParty)
	return 200, "OK"
}

// swap replaces c (and replaced, for an attended transfer) by a call
// between p1 and p2 recorded by rec; the old calls' records end as
// transferred. It reports false, changing nothing, when one of the calls
// ended meanwhile.
func (b *B2BUA) swap(c *call, p1, p2 *party, rec *store.CallRecord, replaced *call) bool {
	old := []*call{c}
	if replaced != nil {
		old = append(old, replaced)
	}
	b.mu.Lock()
	for _, o := range old {
		if b.calls[o.parties[0].id] != o && b.calls[o.parties[1].id] != o {
			b.mu.Unlock()
			return false
		}
	}
	for _, o := range old {
		b.forgetLocked(o)
		b.finish(o.rec, 200, DispTransferred)
	}
	b.mu.Unlock()
	b.connect(p1, p2, rec)
	b.engConnected(p1.user, p2.user, rec, "")
	return true
}

// hangUp sends BYE on a party's dialog unless it ended already.
func (b *B2BUA) hangUp(p *party) {
	p.answering.Lock()
	//lint:ignore SA2001 a wait, not a critical section: for the 200 being written to end
	p.answering.Unlock()
	if p.sess.Context().Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.sess.Bye(ctx); err != nil {
		b.log.Debug("hang up", "dialog", p.id, "error", err)
	}
}

// notify tells the transferor how its transfer goes (RFC 3515 §2.4.5).
func (b *B2BUA) notify(p *party, code int, reason string, final bool) {
	if p.sess.Context().Err() != nil {
		return // the transferor hung up already
	}
	req := sip.NewRequest(sip.NOTIFY, p.target)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reason)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.sess.Do(ctx, req); err != nil {
		b.log.Debug("notify transferor", "dialog", p.id, "error", err)
	}
}
