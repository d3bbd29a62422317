package calls

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Park across the nodes of a cluster. A parked call stays in memory on
// the node holding it (no Raft write per park); the other nodes learn of
// it only by asking (ParkPeers: GET /api/v1/cluster/park/{site} on every
// other healthy member, in parallel, each briefly).
//
//   - A node choosing a slot (a blind park, an attended park's
//     reservation) takes the lowest one that neither it nor any member
//     that answered holds for the site.
//   - A call to the retrieve code for a slot this node holds no call on
//     goes to the member that does: an INVITE to the retrieve code and
//     slot, signed like the node-to-node legs to phones (hop.go), which
//     that node answers by connecting it with the parked party. This node
//     then carries the retriever's call to it, as for a phone whose flow
//     another node holds.
//   - Ring-back stays with the node holding the call: it rings the
//     parker's phones wherever they are registered (routeToUser reaches
//     phones held elsewhere).
//
// A member that does not answer in time (a partition) is left out: two
// sides of a partition may then each park a call on the same slot, and a
// retrieval takes the call parked on its own node first.

// HeldSlot is a park slot a node holds for a site: its call's state
// (parking, parked, ringing) or "reserved" (an attended park's slot).
type HeldSlot struct {
	Slot  int    `json:"slot"`
	State string `json:"state"`
}

// slotReserved is the state of a slot reserved for an attended park.
const slotReserved = "reserved"

// retrievable reports whether the slot holds a call a phone may retrieve.
func (h HeldSlot) retrievable() bool {
	return h.State == parkParked.String() || h.State == parkRinging.String()
}

// PeerSlots is what another member of the cluster holds of a site.
type PeerSlots struct {
	Node    string     // its node ID
	SIPAddr string     // where it takes SIP from the other nodes
	Slots   []HeldSlot // the site's slots it holds
}

// ParkPeers asks the other healthy members of the cluster which slots of
// site they hold; a member that does not answer before ctx ends is left
// out.
type ParkPeers func(ctx context.Context, site string) []PeerSlots

// parkPeersTimeout bounds the whole question to the members (the node
// asks them in parallel, each for less).
const parkPeersTimeout = time.Second

// SetParkPeers makes park site-wide across the cluster (nil, the default:
// this node's slots only).
func (b *B2BUA) SetParkPeers(p ParkPeers) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parkPeers = p
}

// ParkSlots is the slots of site this node holds (GET
// /api/v1/cluster/park/{site}).
func (b *B2BUA) ParkSlots(site string) []HeldSlot { return b.park().slotsOf(site) }

// peerSlots asks the other members about site; nil when there is no one
// to ask. Never called under a lock.
func (b *B2BUA) peerSlots(site string) []PeerSlots {
	b.mu.Lock()
	ask := b.parkPeers
	b.mu.Unlock()
	if ask == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), parkPeersTimeout)
	defer cancel()
	return ask(ctx, site)
}

// heldElsewhere is the set of slots the peers hold.
func heldElsewhere(peers []PeerSlots) map[int]bool {
	out := map[int]bool{}
	for _, p := range peers {
		for _, h := range p.Slots {
			out[h.Slot] = true
		}
	}
	return out
}

// parkedElsewhere is the peer holding a call a phone may retrieve on
// slot (the lowest node ID when, after a partition, several do).
func parkedElsewhere(peers []PeerSlots, slot int) (PeerSlots, bool) {
	peers = append([]PeerSlots(nil), peers...)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Node < peers[j].Node })
	for _, p := range peers {
		if p.SIPAddr == "" {
			continue
		}
		for _, h := range p.Slots {
			if h.Slot == slot && h.retrievable() {
				return p, true
			}
		}
	}
	return PeerSlots{}, false
}

// parkHopPrefix marks a node-to-node INVITE that retrieves a parked
// call: its binding header is "park:<slot> <site>".
const parkHopPrefix = "park:"

// retrieveElsewhere carries a call to the retrieve code and slot to
// holder, the member holding the call parked there.
func (b *B2BUA) retrieveElsewhere(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord,
	slot int, holder PeerSlots) {
	acct, err := b.dir.Account(context.Background())
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return
	}
	hops, _ := hopsLeft(req) // OnInvite refused the INVITE with none left
	code := b.park().config().RetrieveCode + strconv.Itoa(slot)
	rec.Route = "park:remote"
	rt := route{acct: acct, callee: account.User{Name: "Park " + strconv.Itoa(slot), SIP: account.SIPCredentials{Username: code}},
		hops: hops, rec: rec, targets: []target{{via: holder.SIPAddr, binding: store.Binding{
			AOR: parkHopPrefix + strconv.Itoa(slot), ID: caller.Site, Contact: "sip:" + code + "@" + holder.SIPAddr}}}}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		b.finish(rec, 500, DispFailed)
		return
	}
	_ = ds.Respond(100, "Trying", nil)
	b.log.Info("park: the call is parked on another node", "call_id", req.CallID().Value(), "site", caller.Site,
		"slot", slot, "node_id", holder.Node)
	b.ring(ds, req, caller, rt, rec)
}

// onParkHop answers a retrieval another node carries here (its signature
// checked): connected with the call parked on the slot, or 404.
func (b *B2BUA) onParkHop(req *sip.Request, tx sip.ServerTransaction, slotArg, site string) {
	slot, err := strconv.Atoi(slotArg)
	from := req.From()
	if err != nil || from == nil {
		respond(tx, req, 400, "Bad Request: no park slot")
		return
	}
	pk := b.park().claim(site, slot)
	if pk == nil {
		respond(tx, req, 404, "Not Found: no call parked on slot "+slotArg)
		return
	}
	caller := account.User{Name: from.DisplayName, Extension: from.Address.User, Site: site,
		SIP: account.SIPCredentials{Username: from.Address.User}}
	b.takeRetrieved(req, tx, pk, caller, nil)
}
