package node

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/web"
)

// Call park across the cluster (appliance/calls/parkpeers.go): a node
// asks every other healthy member which park slots of a site it holds
// (GET /api/v1/cluster/park/{site}), in parallel, each for at most
// parkAskTimeout; a member that does not answer in time is left out.

// parkAskTimeout is how long a node waits for one member's park slots.
const parkAskTimeout = 300 * time.Millisecond

// parkPeers asks the other healthy members of the cluster which park
// slots of site they hold (calls.ParkPeers).
func (n *Node) parkPeers(ctx context.Context, site string) []calls.PeerSlots {
	members, err := n.store.Reader().Members(ctx)
	if err != nil {
		n.log.Warn("park: read the members", "error", err)
		return nil
	}
	var (
		mu  sync.Mutex
		out []calls.PeerSlots
		wg  sync.WaitGroup
	)
	for _, m := range members {
		if m.ID == n.cfg.NodeID || m.HTTPAddr == "" || !n.health.Healthy(m.ID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, parkAskTimeout)
			defer cancel()
			got, err := web.NewClient(m.HTTPAddr, n.token).ParkSlots(actx, site)
			if err != nil {
				n.log.Info("park: a member did not say which slots it holds; left out", "node_id", m.ID, "error", err)
				return
			}
			ps := calls.PeerSlots{Node: m.ID, SIPAddr: m.SIPAddr}
			for _, s := range got.Slots {
				ps.Slots = append(ps.Slots, calls.HeldSlot{Slot: s.Slot, State: s.State})
			}
			mu.Lock()
			out = append(out, ps)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// parkSlots is the park slots of site this node holds, for the members
// (web.Deps.ParkSlots).
func (n *Node) parkSlots(site string) []web.ParkSlot {
	var out []web.ParkSlot
	for _, h := range n.sip.calls.ParkSlots(site) {
		out = append(out, web.ParkSlot{Slot: h.Slot, State: h.State})
	}
	return out
}
