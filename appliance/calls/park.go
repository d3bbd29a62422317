package calls

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Call park. A party of a connected call transfers the other to the park
// code (REFER to *68): the call is parked on the next free slot of the
// parker's site (1..Slots), the parked party hears music on hold, and the
// final NOTIFY of the transfer names the slot ("SIP/2.0 200 Parked on slot
// 3"); the parker's leg is then released. Dialling the retrieve code and
// the slot (*883) from any phone of the site connects the caller with the
// parked party; an empty slot is answered and told so. Dialling the park
// code itself is attended park (both in parkattended.go). A call nobody
// retrieves within Timeout rings the parker's phones back for RingFor;
// unanswered, it goes back to its slot and rings back again after another
// Timeout; after
// MaxRingbacks unanswered ring-backs the parked party hears "not available",
// "goodbye" and is hung up. Parking is hot state: in memory on the node
// holding the call; slots are per site across the cluster, the nodes
// asking each other (parkpeers.go).

// ParkConfig configures call park (config calls.park_*).
type ParkConfig struct {
	Code         string        // the park code, "*68"
	RetrieveCode string        // followed by the slot, "*88"
	Slots        int           // slots 1..Slots per site
	Timeout      time.Duration // a parked call rings the parker back after it
	RingFor      time.Duration // how long a ring-back rings
	MaxRingbacks int           // unanswered ring-backs before the call ends
}

// DefaultPark is call park's default configuration.
var DefaultPark = ParkConfig{Code: "*68", RetrieveCode: "*88", Slots: 10, Timeout: 60 * time.Second,
	RingFor: 30 * time.Second, MaxRingbacks: 3}

// SetPark configures call park (DefaultPark until called). The node's
// configuration validates it (config calls.park_*).
func (b *B2BUA) SetPark(cfg ParkConfig) { b.park().configure(cfg) }

// park is the node's park lot, made on first use.
func (b *B2BUA) park() *parkLot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parks == nil {
		b.parks = newParkLot(DefaultPark)
		b.parks.ringback = b.ringback
		b.parks.expire = b.parkExpired
	}
	return b.parks
}

// features are the feature codes of the node.
func (b *B2BUA) features() []FeatureCode {
	cfg := b.park().config()
	return []FeatureCode{{Code: cfg.Code, Name: FeaturePark}, {Code: cfg.RetrieveCode, Name: FeatureRetrieve, Arg: true},
		{Code: VoicemailCode, Name: FeatureVoicemail}}
}

// isParkCode reports whether a REFER's target is the park code.
func (b *B2BUA) isParkCode(dialled string) bool {
	d, ok := resolveFeature(normalizeDialString(dialled), b.features())
	return ok && d.ID == FeaturePark
}

// parkRefer parks the transferee of c, the transferor having REFERred it
// to the park code (answered 202 already; c.begin done by the caller).
func (b *B2BUA) parkRefer(c *call, transferor *party) {
	defer c.done()
	b.notify(transferor, 100, "Trying", false)
	pk := b.newParked(c, transferor)
	slot, err := b.park().take(pk, heldElsewhere(b.peerSlots(pk.site)))
	if err != nil {
		b.notify(transferor, 486, "Busy Here: "+err.Error(), true)
		return
	}
	if !b.parkOn(c, pk) {
		b.notify(transferor, 487, "Request Terminated: the call ended", true)
		return
	}
	b.notify(transferor, 200, fmt.Sprintf("Parked on slot %d", slot), true)
	b.hangUp(transferor)
}

// newParked is the other party of c as parker parks it (on no slot yet).
func (b *B2BUA) newParked(c *call, parker *party) *parked {
	p := c.other(parker)
	site := parker.user.Site
	if site == "" {
		site = p.user.Site
	}
	pk := &parked{site: site, p: p, parker: parker.user, since: b.now().UTC(), ctx: p.sess.Context()}
	pk.rec = &store.CallRecord{ID: newRecordID(), CallID: p.callID, Caller: p.user.SIP.Username, CallerName: p.user.Name,
		Dialled: b.park().config().Code, Destination: DestFeature, Start: pk.since, Node: b.nodeID, Site: site, Route: "park"}
	if pk.rec.Caller == "" {
		pk.rec.Caller = p.user.Extension
	}
	return pk
}

// parkOn takes c apart for pk, which is on its slot (parking): the
// parked party hears the park's music and the call becomes retrievable.
// False, pk settled ended, when c ended meanwhile.
func (b *B2BUA) parkOn(c *call, pk *parked) bool {
	lot := b.park()
	b.mu.Lock()
	if b.calls[pk.p.id] != c {
		b.mu.Unlock()
		lot.settle(pk, parkEnded)
		return false
	}
	b.forgetLocked(c) // stops any music on hold: the park's own starts below
	b.finish(c.rec, 200, DispTransferred)
	b.mu.Unlock()
	b.startParkMusic(pk)
	lot.publish(pk)
	context.AfterFunc(pk.ctx, func() { b.unpark(pk, "the parked party hung up") })
	b.log.Info("call parked", "call_id", pk.p.callID, "site", pk.site, "slot", pk.slot, "by", pk.parker.SIP.Username)
	return true
}

// startParkMusic plays music to the parked party (state parking).
func (b *B2BUA) startParkMusic(pk *parked) {
	heard, _ := pk.p.lastSDP()
	m, err := b.openMusic(pk.p, heard, nil)
	if err != nil {
		b.log.Warn("park: no music for the parked party", "call_id", pk.p.callID, "error", err)
		return
	}
	if !pk.setMusic(m) {
		m.stop()
		return
	}
	if pk.p.media == nil {
		if err := b.pointAtMusic(pk.p, m, "sendonly"); err != nil {
			b.log.Warn("park: re-INVITE the parked party", "call_id", pk.p.callID, "error", err)
		}
	}
}

// unpark ends a parked call that nobody will take (the parked party hung
// up): off its slot, no more music or ring-back.
func (b *B2BUA) unpark(pk *parked, why string) {
	if !b.park().settle(pk, parkEnded) {
		return
	}
	if m := pk.takeMusic(); m != nil {
		m.stop()
	}
	b.finish(pk.rec, 200, DispAnswered)
	b.log.Info("parked call ended", "call_id", pk.p.callID, "slot", pk.slot, "why", why)
}

// ringback rings the parker's phones for a call nobody retrieved, until
// ctx ends (the lot's RingFor, a retrieval, the parked party's hang-up);
// the parker answering takes the call.
func (b *B2BUA) ringback(ctx context.Context, pk *parked) {
	_, rings := pk.current()
	b.log.Info("parked call rings back", "call_id", pk.p.callID, "slot", pk.slot, "parker", pk.parker.SIP.Username, "ringback", rings)
	rec := &store.CallRecord{ID: newRecordID(), CallID: pk.p.callID, Caller: pk.rec.Caller, CallerName: pk.p.user.Name,
		Dialled: pk.parker.Extension, Start: b.now().UTC(), Node: b.nodeID, Site: pk.site, Route: "park:ringback"}
	rt, refusal := b.routeToUser(ctx, pk.parker.ID, rec)
	if refusal != nil { // counts as unanswered: the parker may register by the next ring-back
		b.log.Info("park: the parker cannot be rung back", "call_id", pk.p.callID, "status", refusal.code)
		return
	}
	rt.rec = rec
	offer := sendRecv(first(pk.p.lastSDP()))
	var side *media
	if pk.p.media != nil {
		side = &media{sess: pk.p.media.sess, side: 1 - pk.p.media.side}
		offer = (&party{media: side}).told(offer)
	}
	winner, _, _ := b.fork(ctx, offer, pk.p.user, rt, func(*sip.Response) {})
	if winner == nil {
		return
	}
	_ = winner.Ack(context.Background())
	if !b.park().settle(pk, parkAnswered) { // retrieved or hung up meanwhile
		_ = winner.Bye(context.Background())
		b.finish(rec, 487, DispCancelled)
		return
	}
	target := placedParty(winner, rt.callee)
	if side != nil {
		target.media = side
		target.heard(winner.InviteResponse.Body())
	}
	b.takeParked(pk, target, rec, first(target.lastSDP()))
}

// parkExpired ends a parked call whose ring-backs went unanswered: the
// parked party hears "not available", "goodbye" and is hung up.
func (b *B2BUA) parkExpired(pk *parked) {
	_, rings := pk.current()
	b.log.Info("parked call not retrieved; hanging up", "call_id", pk.p.callID, "slot", pk.slot, "ringbacks", rings)
	if m := pk.takeMusic(); m != nil {
		m.leg.Stop()
		_ = m.leg.Play(pk.ctx, "not-available", "goodbye")
		m.stop()
	}
	b.finish(pk.rec, 200, DispNoAnswer)
	b.hangUp(pk.p)
}

func first(a, _ []byte) []byte { return a }

// takeParked connects the parked call pk (settled retrieved or answered:
// off its slot) with party to, whose description is sdp: the music
// stops; a direct parked phone is re-INVITEd toward to. rec is the
// call's record (nil when another node carries it and records it).
func (b *B2BUA) takeParked(pk *parked, to *party, rec *store.CallRecord, sdp []byte) bool {
	if m := pk.takeMusic(); m != nil {
		m.stop()
	}
	if pk.p.media == nil {
		if err := b.reinvite(pk.p, sdp); err != nil {
			b.log.Warn("park: the parked party did not take the call", "call_id", pk.p.callID, "error", err)
			b.hangUp(to)
			b.hangUp(pk.p)
			b.finish(rec, 500, DispFailed)
			return false
		}
	}
	if rec != nil { // nil: another node's leg, that node records the call
		rec.Answer, rec.Status = b.now().UTC(), 200
		rec.Callee = to.user.SIP.Username
	}
	b.finish(pk.rec, 200, DispTransferred)
	b.connect(pk.p, to, rec)
	b.log.Info("parked call taken", "call_id", pk.p.callID, "slot", pk.slot, "by", to.user.SIP.Username)
	return true
}

// retrieve answers a call to the retrieve code and slot: connected with
// the call parked there (on this node, else on the member holding it), or
// told there is none (parkEmpty).
func (b *B2BUA) retrieve(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord, slotDigits string) {
	slot, err := strconv.Atoi(slotDigits)
	var pk *parked
	if err == nil {
		pk = b.park().claim(caller.Site, slot)
		if pk == nil {
			if holder, ok := parkedElsewhere(b.peerSlots(caller.Site), slot); ok {
				b.retrieveElsewhere(req, tx, caller, rec, slot, holder)
				return
			}
		}
	}
	if pk == nil {
		b.parkEmpty(req, tx, rec, slotDigits)
		return
	}
	b.takeRetrieved(req, tx, pk, caller, rec)
}

// takeRetrieved answers req, the retriever's INVITE (caller's, or another
// node's carrying it: rec nil), connected with pk (settled retrieved).
func (b *B2BUA) takeRetrieved(req *sip.Request, tx sip.ServerTransaction, pk *parked, caller account.User, rec *store.CallRecord) {
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		if m := pk.takeMusic(); m != nil {
			m.stop()
		}
		b.hangUp(pk.p)
		b.finish(pk.rec, 500, DispFailed)
		return
	}
	from := answeredParty(ds, caller)
	answer := sendRecv(first(pk.p.lastSDP()))
	if pk.p.media != nil { // the parked party keeps its relay session; the caller takes the other side
		from.media = &media{sess: pk.p.media.sess, side: 1 - pk.p.media.side}
		from.heard(req.Body())
	}
	if !b.takeParked(pk, from, rec, req.Body()) {
		return
	}
	if pk.p.media == nil {
		answer, _ = pk.p.lastSDP()
	}
	if err := ds.Respond(200, "OK", from.told(answer), sip.NewHeader("Content-Type", sdpType)); err != nil {
		b.log.Warn("park: answer the retriever", "error", err)
	}
}

// ParkedStatus is a call parked on this node (GET /api/v1/calls shows
// it with state "parked").
func (b *B2BUA) parkedStatus() []CallStatus {
	var out []CallStatus
	for _, pk := range b.park().all() {
		out = append(out, CallStatus{ID: pk.rec.ID, CallID: pk.p.callID, Caller: pk.rec.Caller, Dialled: pk.rec.Dialled,
			State: "parked", Route: pk.rec.Route, Start: pk.since, Anchored: pk.p.media != nil,
			Site: pk.site, Slot: pk.slot, ParkedBy: pk.parker.SIP.Username})
	}
	return out
}
