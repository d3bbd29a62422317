package calls

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Attended park: what a phone's park key does in "feature access code"
// style (docs/sip.md, "Call park"). The phone holds its call and dials the
// park code as a call of its own; the node answers it with its IVR
// endpoint, reserves the next free slot of the caller's site
// (parklot.go) and says "Parked on slot N". The phone then completes an
// attended transfer, either way round:
//
//   - REFER in the held call with Refer-To <park code?Replaces=the call to
//     the park code> (RFC 5589 §7), or
//   - REFER in the call to the park code with Refer-To <…?Replaces=the
//     held call> (what some phones send to the transfer target),
//
// and the held party takes the reserved slot, hearing music on hold; the
// node hangs up both of the phone's calls. Hanging up the call to the park
// code instead gives the slot up (the held call stays held); so does
// waiting parkReserveFor, after which the node hangs it up. Every slot
// taken: "Sorry, every park slot is in use", and the node hangs up.

// attendedPark answers a call to the park code and announces the slot
// reserved for the call the caller then transfers to it.
func (b *B2BUA) attendedPark(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord) {
	lot := b.park()
	ds, iv := b.featureIVR(req, tx, rec, 403,
		"Forbidden: this node cannot announce a park slot; park a call by transferring it to "+lot.config().Code)
	if ds == nil {
		return
	}
	log := b.log.With("call_id", req.CallID().Value(), "by", caller.SIP.Username)
	rec.Route = "park:attended"
	r, err := lot.reserve(caller.Site, ds.ID, caller, heldElsewhere(b.peerSlots(caller.Site)), func(r *reservation) {
		log.Info("park: the reserved slot was not used; hanging up", "site", r.site, "slot", r.slot)
		b.hangUpFeature(ds)
	})
	if err != nil {
		log.Info("park: every slot is in use", "site", caller.Site)
		b.sayAndHangUp(ds, iv, "park-full")
		b.finish(rec, 200, DispAnswered)
		return
	}
	context.AfterFunc(ds.Context(), func() {
		disp := DispAnswered
		switch lot.release(r) {
		case resUsed:
			disp = DispTransferred
		case resReleased:
			log.Info("park: the caller hung up; the slot is free again", "site", r.site, "slot", r.slot)
		}
		b.finish(rec, 200, disp)
	})
	log.Info("park: slot reserved", "site", r.site, "slot", r.slot)
	_ = iv.leg.Play(ds.Context(), append([]string{"park-parked"}, slotPrompts(r.slot)...)...)
}

// slotPrompts say a slot's number: num-N up to twenty, else digit by
// digit.
func slotPrompts(slot int) []string {
	if slot <= 20 {
		return []string{numberPrompt(slot)}
	}
	var out []string
	for _, d := range fmt.Sprint(slot) {
		out = append(out, numberPrompt(int(d-'0')))
	}
	return out
}

// parkEmpty tells a caller of the retrieve code that no call is parked
// on the slot, and hangs up (404 when the node cannot answer it).
func (b *B2BUA) parkEmpty(req *sip.Request, tx sip.ServerTransaction, rec *store.CallRecord, slot string) {
	ds, iv := b.featureIVR(req, tx, rec, 404, "Not Found: no call parked on slot "+slot)
	if ds == nil {
		return
	}
	rec.Route = "park:empty"
	b.sayAndHangUp(ds, iv, "park-empty")
	b.finish(rec, 200, DispAnswered)
}

// featureIVR starts the dialog of a call to a feature code and answers it
// with the node's IVR endpoint. Nil when it cannot: the caller is then
// refused with code and reason and rec is finished.
func (b *B2BUA) featureIVR(req *sip.Request, tx sip.ServerTransaction, rec *store.CallRecord, code int, reason string) (*sipgo.DialogServerSession, *ivrCall) {
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return nil, nil
	}
	_ = ds.Respond(100, "Trying", nil)
	iv, err := b.answerForIVR(ds, req, &route{hops: maxForwards})
	if err != nil {
		b.log.Info("feature code: cannot answer", "call_id", req.CallID().Value(), "dialled", rec.Dialled, "error", err)
		_ = ds.Respond(code, reason, nil)
		b.finish(rec, code, DispRefused)
		return nil, nil
	}
	rec.Answer, rec.Status = b.now().UTC(), 200
	return ds, iv
}

// sayAndHangUp plays names to a caller answered for a feature code, then
// hangs up.
func (b *B2BUA) sayAndHangUp(ds *sipgo.DialogServerSession, iv *ivrCall, names ...string) {
	ctx, cancel := context.WithTimeout(ds.Context(), 15*time.Second)
	_ = iv.leg.Play(ctx, names...)
	cancel()
	b.hangUpFeature(ds)
}

// hangUpFeature ends a call answered for a feature code: its IVR endpoint
// closed, a BYE unless the caller hung up.
func (b *B2BUA) hangUpFeature(ds *sipgo.DialogServerSession) {
	b.takeIVR(ds.ID)
	if ds.Context().Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ds.Bye(ctx)
}

// parkReplacing is the reservation of the call to the park code a
// REFER's Replaces (URL-encoded, from its Refer-To) names; nil when it
// names no such call.
func (b *B2BUA) parkReplacing(raw string) *reservation {
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return nil
	}
	callID, toTag, fromTag, ok := parseReplaces(v)
	if !ok {
		return nil
	}
	id, ok := b.dialogs.byTags(callID, toTag, fromTag)
	if !ok {
		return nil
	}
	return b.park().reservedFor(id)
}

// referInPark takes a REFER sent in a call to the park code whose slot is
// reserved: its Refer-To's Replaces names the caller's held call, whose
// other party is parked. False when the REFER is not in such a call.
func (b *B2BUA) referInPark(req *sip.Request, tx sip.ServerTransaction) bool {
	ds := b.dialogs.matchServer(req)
	if ds == nil {
		return false
	}
	r := b.park().reservedFor(ds.ID)
	if r == nil {
		return false
	}
	rt := req.ReferTo()
	var raw string
	ok := rt != nil
	if ok {
		raw, ok = rt.Address.Headers.Get("Replaces")
	}
	if !ok {
		respond(tx, req, 400, "Bad Request: to park, REFER with Replaces naming the held call")
		return true
	}
	v, err := url.QueryUnescape(raw)
	if err != nil {
		respond(tx, req, 400, "Bad Request: malformed Replaces")
		return true
	}
	announced := answeredParty(ds, r.by)
	c, parker, code, reason := b.replacesDialog(v, announced)
	if code != 0 {
		respond(tx, req, code, reason)
		return true
	}
	b.referToPark(req, tx, c, parker, r, announced)
	return true
}

// referToPark accepts the transfer of the other party of c to the slot
// r reserved, parker being the phone's party in c and notifyTo the dialog
// the REFER came in.
func (b *B2BUA) referToPark(req *sip.Request, tx sip.ServerTransaction, c *call, parker *party, r *reservation, notifyTo *party) {
	if u := parker.user.SIP.Username; u != "" && u != r.by.SIP.Username {
		respond(tx, req, 403, "Forbidden: the park slot was announced to another phone's call")
		return
	}
	if !c.begin(parker) {
		respond(tx, req, 491, "Request Pending: a transfer is already under way")
		return
	}
	respond(tx, req, 202, "Accepted")
	go b.parkReserved(c, parker, r, notifyTo)
}

// parkReserved parks the other party of c on the slot r reserved and
// hangs up both of the parker's calls (c.begin done by the caller).
func (b *B2BUA) parkReserved(c *call, parker *party, r *reservation, notifyTo *party) {
	defer c.done()
	b.notify(notifyTo, 100, "Trying", false)
	pk := b.newParked(c, parker)
	if !b.park().fill(r, pk) {
		b.notify(notifyTo, 487, "Request Terminated: the reserved park slot was given up", true)
		return
	}
	if !b.parkOn(c, pk) {
		b.notify(notifyTo, 487, "Request Terminated: the call ended", true)
		return
	}
	b.notify(notifyTo, 200, fmt.Sprintf("Parked on slot %d", pk.slot), true)
	if ds := b.dialogs.answered(r.dialog); ds != nil {
		b.hangUpFeature(ds)
	}
	b.hangUp(parker)
}
