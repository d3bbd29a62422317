package calls

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
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
// parked party; an empty slot is answered 404. A call nobody retrieves
// within Timeout rings the parker's phones back for RingFor; unanswered,
// it goes back to its slot and rings back again after another Timeout; after
// MaxRingbacks unanswered ring-backs the parked party hears "not available",
// "goodbye" and is hung up. Parking is hot state: in memory on the node
// holding the call; slots are per site and per node (two nodes of a site
// may each have a call on slot 1; a phone retrieves the calls parked on
// the node it is registered to).

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

// ErrParkFull: every slot of the site holds a call.
var ErrParkFull = errors.New("every park slot of the site is in use")

// parked is one parked call.
type parked struct {
	site   string
	slot   int
	p      *party       // the parked party
	parker account.User // who parked it (rung back)
	since  time.Time
	music  *music
	timer  func() bool        // stops the ring-back timer
	ring   context.CancelFunc // ends a ring-back ringing now
	rings  int
	rec    *store.CallRecord
}

// parkLot holds a node's parked calls by site and slot.
type parkLot struct {
	mu    sync.Mutex
	slots map[string]map[int]*parked
	n     int
}

func newParkLot(n int) *parkLot { return &parkLot{slots: map[string]map[int]*parked{}, n: n} }

// take puts pk on the lowest free slot of its site.
func (l *parkLot) take(pk *parked) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	site := l.slots[pk.site]
	if site == nil {
		site = map[int]*parked{}
		l.slots[pk.site] = site
	}
	for s := 1; s <= l.n; s++ {
		if site[s] == nil {
			site[s], pk.slot = pk, s
			return s, nil
		}
	}
	return 0, ErrParkFull
}

// claim takes the call parked on slot of site off it (nil: none).
func (l *parkLot) claim(site string, slot int) *parked {
	l.mu.Lock()
	defer l.mu.Unlock()
	pk := l.slots[site][slot]
	if pk != nil {
		delete(l.slots[site], slot)
	}
	return pk
}

// release takes pk off its slot if it is still there.
func (l *parkLot) release(pk *parked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slots[pk.site][pk.slot] != pk {
		return false
	}
	delete(l.slots[pk.site], pk.slot)
	return true
}

// byDialog finds the call parked with the parked party's dialog id.
func (l *parkLot) byDialog(id string) *parked {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, site := range l.slots {
		for _, pk := range site {
			if pk.p.id == id {
				return pk
			}
		}
	}
	return nil
}

// all lists the parked calls by site and slot.
func (l *parkLot) all() []*parked {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*parked
	for _, site := range l.slots {
		for _, pk := range site {
			out = append(out, pk)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].site != out[j].site {
			return out[i].site < out[j].site
		}
		return out[i].slot < out[j].slot
	})
	return out
}

// SetPark configures call park (DefaultPark until called).
func (b *B2BUA) SetPark(cfg ParkConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parkCfg = cfg
	if b.parks == nil || b.parks.n != cfg.Slots {
		old := b.parks
		b.parks = newParkLot(cfg.Slots)
		if old != nil { // calls parked already keep their slots
			b.parks.slots = old.slots
		}
	}
}

// park is the node's call park configuration and lot.
func (b *B2BUA) park() (ParkConfig, *parkLot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parks == nil {
		b.parkCfg, b.parks = DefaultPark, newParkLot(DefaultPark.Slots)
	}
	return b.parkCfg, b.parks
}

// features are the feature codes of the node.
func (b *B2BUA) features() []FeatureCode {
	cfg, _ := b.park()
	return []FeatureCode{{Code: cfg.Code, Name: FeaturePark}, {Code: cfg.RetrieveCode, Name: FeatureRetrieve, Arg: true}}
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
	cfg, lot := b.park()
	p := c.other(transferor)
	site := transferor.user.Site
	if site == "" {
		site = p.user.Site
	}
	pk := &parked{site: site, p: p, parker: transferor.user, since: b.now().UTC(), timer: func() bool { return false }}
	pk.rec = &store.CallRecord{ID: newRecordID(), CallID: p.callID, Caller: p.user.SIP.Username, CallerName: p.user.Name,
		Dialled: cfg.Code, Destination: DestFeature, Start: pk.since, Node: b.nodeID, Site: site, Route: "park"}
	if pk.rec.Caller == "" {
		pk.rec.Caller = p.user.Extension
	}
	slot, err := lot.take(pk)
	if err != nil {
		b.notify(transferor, 486, "Busy Here: "+err.Error(), true)
		return
	}
	b.mu.Lock()
	if b.calls[p.id] != c {
		b.mu.Unlock()
		lot.release(pk)
		b.notify(transferor, 487, "Request Terminated: the call ended", true)
		return
	}
	b.forgetLocked(c) // stops any music on hold: the park's own starts below
	b.finish(c.rec, 200, DispTransferred)
	b.mu.Unlock()
	b.startParkMusic(pk)
	b.armRingback(pk)
	context.AfterFunc(p.sess.Context(), func() { b.unpark(pk, "the parked party hung up") })
	b.log.Info("call parked", "call_id", p.callID, "site", site, "slot", slot, "by", transferor.user.SIP.Username)
	b.notify(transferor, 200, fmt.Sprintf("Parked on slot %d", slot), true)
	b.hangUp(transferor)
}

// startParkMusic plays music to the parked party.
func (b *B2BUA) startParkMusic(pk *parked) {
	heard, _ := pk.p.lastSDP()
	m, err := b.openMusic(pk.p, heard, nil)
	if err != nil {
		b.log.Warn("park: no music for the parked party", "call_id", pk.p.callID, "error", err)
		return
	}
	pk.music = m
	if pk.p.media == nil {
		if err := b.pointAtMusic(pk.p, m, "sendonly"); err != nil {
			b.log.Warn("park: re-INVITE the parked party", "call_id", pk.p.callID, "error", err)
		}
	}
}

func (pk *parked) stopMusic() {
	if pk.music != nil {
		pk.music.stop()
		pk.music = nil
	}
}

// armRingback rings the parker back after the park timeout.
func (b *B2BUA) armRingback(pk *parked) {
	cfg, _ := b.park()
	t := time.AfterFunc(cfg.Timeout, func() { b.ringback(pk) })
	pk.timer = t.Stop
}

// unpark ends a parked call that nobody will take (the parked party hung
// up): off its slot, no more music or ring-back.
func (b *B2BUA) unpark(pk *parked, why string) {
	_, lot := b.park()
	if !lot.release(pk) {
		return
	}
	pk.timer()
	if pk.ring != nil {
		pk.ring()
	}
	pk.stopMusic()
	b.finish(pk.rec, 200, DispAnswered)
	b.log.Info("parked call ended", "call_id", pk.p.callID, "slot", pk.slot, "why", why)
}

// ringback rings the parker's phones for a call nobody retrieved.
func (b *B2BUA) ringback(pk *parked) {
	cfg, lot := b.park()
	ctx, cancel := context.WithTimeout(pk.p.sess.Context(), cfg.RingFor)
	defer cancel()
	pk.ring = cancel
	pk.rings++
	rec := &store.CallRecord{ID: newRecordID(), CallID: pk.p.callID, Caller: pk.rec.Caller, CallerName: pk.p.user.Name,
		Dialled: pk.parker.Extension, Start: b.now().UTC(), Node: b.nodeID, Site: pk.site, Route: "park:ringback"}
	rt, refusal := b.routeToUser(ctx, pk.parker.ID, rec)
	if refusal == nil {
		rt.rec = rec
		offer := sendRecv(first(pk.p.lastSDP()))
		var side *media
		if pk.p.media != nil {
			side = &media{sess: pk.p.media.sess, side: 1 - pk.p.media.side}
			offer = (&party{media: side}).told(offer)
		}
		winner, _, _ := b.fork(ctx, offer, pk.p.user, rt, func(*sip.Response) {})
		if winner != nil {
			if !lot.release(pk) { // retrieved meanwhile
				_ = winner.Ack(context.Background())
				_ = winner.Bye(context.Background())
				return
			}
			_ = winner.Ack(context.Background())
			target := placedParty(winner, rt.callee)
			if side != nil {
				target.media = side
				target.heard(winner.InviteResponse.Body())
			}
			b.takeParked(pk, target, rec, first(target.lastSDP()))
			return
		}
	}
	if pk.p.sess.Context().Err() != nil {
		return
	}
	if pk.rings >= cfg.MaxRingbacks {
		if lot.release(pk) {
			pk.timer()
			b.log.Info("parked call not retrieved; hanging up", "call_id", pk.p.callID, "slot", pk.slot, "ringbacks", pk.rings)
			if pk.music != nil {
				pk.music.leg.Stop()
				_ = pk.music.leg.Play(pk.p.sess.Context(), "not-available", "goodbye")
			}
			pk.stopMusic()
			b.finish(pk.rec, 200, DispNoAnswer)
			b.hangUp(pk.p)
		}
		return
	}
	b.armRingback(pk)
}

func first(a, _ []byte) []byte { return a }

// takeParked connects the parked call pk (off its slot) with party to,
// whose description is sdp: the music stops; a direct parked phone is
// re-INVITEd toward to.
func (b *B2BUA) takeParked(pk *parked, to *party, rec *store.CallRecord, sdp []byte) bool {
	pk.timer()
	pk.stopMusic()
	if pk.p.media == nil {
		if err := b.reinvite(pk.p, sdp); err != nil {
			b.log.Warn("park: the parked party did not take the call", "call_id", pk.p.callID, "error", err)
			b.hangUp(to)
			b.hangUp(pk.p)
			b.finish(rec, 500, DispFailed)
			return false
		}
	}
	rec.Answer, rec.Status = b.now().UTC(), 200
	rec.Callee = to.user.SIP.Username
	b.finish(pk.rec, 200, DispTransferred)
	b.connect(pk.p, to, rec)
	b.log.Info("parked call taken", "call_id", pk.p.callID, "slot", pk.slot, "by", to.user.SIP.Username)
	return true
}

// retrieve answers a call to the retrieve code and slot: connected with
// the call parked there, or 404 when there is none.
func (b *B2BUA) retrieve(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord, slotDigits string) {
	_, lot := b.park()
	slot, err := strconv.Atoi(slotDigits)
	var pk *parked
	if err == nil {
		pk = lot.claim(caller.Site, slot)
	}
	if pk == nil {
		respond(tx, req, 404, fmt.Sprintf("Not Found: no call parked on slot %s", slotDigits))
		b.finish(rec, 404, DispRefused)
		return
	}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return
	}
	if pk.ring != nil {
		pk.ring()
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
	_, lot := b.park()
	var out []CallStatus
	for _, pk := range lot.all() {
		out = append(out, CallStatus{ID: pk.rec.ID, CallID: pk.p.callID, Caller: pk.rec.Caller, Dialled: pk.rec.Dialled,
			State: "parked", Route: pk.rec.Route, Start: pk.since, Anchored: pk.p.media != nil,
			Site: pk.site, Slot: pk.slot, ParkedBy: pk.parker.SIP.Username})
	}
	return out
}
