package node

import (
	"context"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
)

// every runs f now and then every d until ctx ends or f returns true.
func every(ctx context.Context, d time.Duration, f func() (done bool)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if f() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// joinLoop asks the members named in raft.join to add this node, until one
// of them does or the node has Raft history (it was added another way).
func (n *Node) joinLoop(ctx context.Context) {
	if len(n.cfg.Raft.Join) == 0 {
		return
	}
	attempt := 0
	every(ctx, time.Second, func() bool {
		if n.cluster.HasHistory() {
			return true
		}
		attempt++
		for _, addr := range n.cfg.Raft.Join {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := web.NewClient(addr, n.token).Join(rctx, n.cfg.NodeID, n.cluster.RaftAddr())
			cancel()
			if err == nil {
				n.log.Info("joined cluster", "via", addr)
				return true
			}
			if attempt == 1 || attempt%10 == 0 {
				n.log.Warn("join attempt failed; retrying", "via", addr, "attempt", attempt, "error", err)
			}
		}
		return false
	})
}

// self is this node's member record.
func (n *Node) self() store.Member {
	return store.Member{
		ID:       n.cfg.NodeID,
		RaftAddr: n.cluster.RaftAddr(),
		HTTPAddr: n.httpAdvertise,
		SIPAddr:  n.sipAdvertise,
		Site:     n.cfg.Site,
	}
}

// announceLoop keeps this node's member record (addresses, site) current in
// the replicated store, so others can forward to it and list its site.
// It checks often until the record is current, then every few seconds.
func (n *Node) announceLoop(ctx context.Context) {
	var next time.Time
	every(ctx, 200*time.Millisecond, func() bool {
		if time.Now().Before(next) {
			return false
		}
		if err := n.announce(ctx); err != nil {
			n.log.Debug("announce pending", "error", err)
			return false
		}
		next = time.Now().Add(5 * time.Second)
		return false
	})
}

func (n *Node) announce(ctx context.Context) error {
	me := n.self()
	members, err := n.store.Reader().Members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.ID == me.ID && m.RaftAddr == me.RaftAddr && m.HTTPAddr == me.HTTPAddr && m.SIPAddr == me.SIPAddr && m.Site == me.Site {
			return nil // current
		}
	}
	if !n.inConfiguration() {
		return fmt.Errorf("not a voter yet")
	}
	me.UpdatedAt = time.Now().UTC()
	cmd, err := cluster.EncodeMember(me)
	if err != nil {
		return err
	}
	return n.onLeader(ctx, n.cluster.Apply, func(ctx context.Context, c *web.Client) error {
		return c.Announce(ctx, me)
	}, cmd)
}

func (n *Node) inConfiguration() bool {
	ms, err := n.cluster.Members()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.ID == n.cfg.NodeID {
			return true
		}
	}
	return false
}

// bootstrapSnapshotLoop applies bootstrap_snapshot once, on the leader, when
// the cluster holds no revision yet.
func (n *Node) bootstrapSnapshotLoop(ctx context.Context) {
	if n.bootstrapDoc == nil {
		return
	}
	every(ctx, 200*time.Millisecond, func() bool {
		rev, err := n.store.Reader().Revision(ctx)
		if err != nil || rev > 0 {
			return err == nil
		}
		if !n.cluster.IsLeader() {
			return false
		}
		res, err := n.cluster.Apply(ctx, cluster.EncodeSnapshot(n.bootstrapDoc))
		switch {
		case err != nil:
			n.log.Warn("apply bootstrap snapshot; retrying", "error", err)
			return false
		case res.Err != nil:
			n.log.Info("bootstrap snapshot not applied", "reason", res.Err)
			return true
		}
		n.log.Info("bootstrap snapshot applied", "revision", res.Revision)
		return true
	})
}
