package calls

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/sbc"
)

// fromTrunk finds the trunk an INVITE came from, by its source address: a
// trunk's host, resolved, and over UDP its port too (SBCs send from the
// port they listen on; over TCP and TLS the source port is the
// connection's own). Only trunks are trusted without digest
// authentication: every other source is a phone and must authenticate.
func (b *B2BUA) fromTrunk(ctx context.Context, req *sip.Request) (account.Trunk, bool) {
	t := b.trunksSet()
	td, ok := b.dir.(TrunkDirectory)
	if t == nil || !ok {
		return account.Trunk{}, false
	}
	src, ok := remoteAddr(req)
	if !ok {
		return account.Trunk{}, false
	}
	udp := strings.EqualFold(req.Transport(), "UDP")
	for _, te := range b.trunkEndpoints(ctx, t, td) {
		for _, ep := range te.eps {
			if ep.IP.Unmap() == src.Addr().Unmap() && (!udp || int(src.Port()) == ep.Port) {
				return te.trunk, true
			}
		}
	}
	return account.Trunk{}, false
}

// trunkEndpoint is a trunk and the addresses its host resolves to.
type trunkEndpoint struct {
	trunk account.Trunk
	eps   []sbc.Endpoint
}

// trunkAddrTTL is how long the trunks' addresses are reused for telling
// calls from the PSTN from phones' (every INVITE asks).
const trunkAddrTTL = time.Second

// trunkEndpoints is every trunk with its addresses, read and resolved at
// most once per trunkAddrTTL.
func (b *B2BUA) trunkEndpoints(ctx context.Context, t *Trunks, td TrunkDirectory) []trunkEndpoint {
	b.trunkAddrs.Lock()
	defer b.trunkAddrs.Unlock()
	now := b.now()
	if now.Sub(b.trunkAddrs.at) < trunkAddrTTL {
		return b.trunkAddrs.list
	}
	trunks, err := td.Trunks(ctx)
	if err != nil {
		return b.trunkAddrs.list
	}
	list := make([]trunkEndpoint, 0, len(trunks))
	for _, trunk := range trunks {
		if eps, err := t.Resolver.Resolve(ctx, sbc.TargetOf(trunk)); err == nil {
			list = append(list, trunkEndpoint{trunk, eps})
		}
	}
	b.trunkAddrs.list, b.trunkAddrs.at = list, now
	return list
}

// onTrunkInvite takes a call from the PSTN: the number called routes as
// on a phone of the trunk's site (a user's DID rings that user), except
// that an ELIN an emergency call went out with in the last 2 hours rings
// the user who made it. The call is anchored in the relay, and counts
// against the trunk's max_channels.
func (b *B2BUA) onTrunkInvite(req *sip.Request, tx sip.ServerTransaction, trunk account.Trunk, hops int) {
	t := b.trunksSet()
	ctx := context.Background()
	called := req.Recipient.User
	if to := req.To(); called == "" && to != nil {
		called = to.Address.User
	}
	callerNum, callerName := "", ""
	if from := req.From(); from != nil {
		callerNum, callerName = from.Address.User, from.DisplayName
	}
	if callerName == "" {
		callerName = callerNum
	}
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: req.CallID().Value(), Caller: callerNum, CallerName: callerName,
		Dialled: called, Start: time.Now().UTC(), Node: b.nodeID, Site: trunk.Site,
	}
	log := b.log.With("call_id", req.CallID().Value(), "trunk", trunk.ID)
	rt, refusal := b.routeFromTrunk(ctx, t, trunk, called, rec)
	if refusal != nil {
		log.Info("call from the PSTN refused", "called", called, "status", refusal.code)
		respond(tx, req, refusal.code, refusal.reason)
		b.finish(rec, refusal.code, refusal.disposition)
		return
	}
	if wantsSDES(trunk) {
		if _, err := sdpCryptos(req.Body()); err != nil {
			log.Warn("call from an SRTP trunk refused", "error", err)
			respond(tx, req, 488, "Not Acceptable Here: this trunk must offer SRTP (RTP/SAVP with a=crypto)")
			b.finish(rec, 488, DispRefused)
			return
		}
	}
	trunkDone, ok := t.Channels.AcquireTrunk(trunk, false)
	if !ok {
		respond(tx, req, 503, "Service Unavailable: the trunk's channels are all in use")
		b.finish(rec, 503, DispFailed)
		return
	}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		trunkDone()
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return
	}
	onTimeout, bind := b.mediaTimeout()
	ms, err := t.Anchor.Allocate(req.CallID().Value(), onTimeout)
	if err != nil {
		trunkDone()
		log.Error("media relay", "error", err)
		_ = ds.Respond(503, "Service Unavailable: no media port", nil)
		b.finish(rec, 503, DispFailed)
		return
	}
	bind(ms)
	if wantsSDES(trunk) {
		// Answer the SBC's key with one of the relay's, of the suite it
		// chose, and key the relay before anything can be sent.
		rt.srtp = &sdes{}
		if err := (&media{sess: ms, side: 1, srtp: rt.srtp}).key(req.Body()); err != nil {
			ms.Close()
			trunkDone()
			log.Error("srtp toward the trunk", "error", err)
			_ = ds.Respond(500, "Server Internal Error", nil)
			b.finish(rec, 500, DispFailed)
			return
		}
	}
	context.AfterFunc(ds.Context(), func() { ms.Close(); trunkDone() })
	_ = ds.Respond(100, "Trying", nil)
	rt.hops, rt.media, rt.codecs = hops, ms, trunk.Codecs
	caller := account.User{Name: callerName, Extension: callerNum, SIP: account.SIPCredentials{Username: callerNum}}
	b.ring(ds, req, caller, rt, rec)
}

// routeFromTrunk is where a call from a trunk goes: the user an ELIN is
// held for, else the number's route as dialled at the trunk's site, which
// must stay inside the account (a PSTN call is never sent back out).
func (b *B2BUA) routeFromTrunk(ctx context.Context, t *Trunks, trunk account.Trunk, called string, rec *store.CallRecord) (route, *refusal) {
	number := called
	if !strings.HasPrefix(number, "+") {
		if d := Resolve(Dial{CallerSite: trunk.Site, Digits: called}, storePlan{ctx, b.dir}); d.Number != "" {
			number = d.Number
		}
	}
	if t.ELINs != nil {
		m, held, err := t.ELINs.Lookup(ctx, number, b.now())
		if err == nil && held {
			rec.Destination = DestUser
			return b.routeToUser(ctx, m.UserID, rec)
		}
	}
	dest := Resolve(Dial{CallerSite: trunk.Site, Digits: called}, storePlan{ctx, b.dir})
	if dest.Kind == DestExternal || dest.Kind == DestEmergency {
		rec.Destination = dest.Kind
		return route{}, &refusal{404, "Not Found: no such number in this account", DispRefused}
	}
	return b.route(ctx, trunk.Site, called, rec)
}
