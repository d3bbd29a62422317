package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
)

// Sharing of the presence plane: the registrar records bindings in
// local_bindings at once, with or without quorum; shareLoop then proposes
// them to the cluster, so every node can route to every phone.
const (
	shareEvery = 250 * time.Millisecond
	shareChunk = 1000
	// shareMargin re-reads rows this much older than the newest shared one:
	// requests stamped just before another may commit just after it.
	shareMargin = 5 * time.Second
)

// sharer remembers what it shared, so the margin costs no duplicate entries.
type sharer struct {
	mark   time.Time            // newest UpdatedAt shared
	shared map[string]time.Time // id -> version shared, within the margin
}

// shareLoop shares changed local bindings until ctx ends. A failure (no
// quorum, a partition) keeps the mark where it was, so the node catches up
// by itself once the cluster answers again.
func (n *Node) shareLoop(ctx context.Context) {
	s := &sharer{shared: map[string]time.Time{}}
	failures := 0
	every(ctx, shareEvery, func() bool {
		err := n.shareOnce(ctx, s)
		switch {
		case err == nil:
			if failures > 0 {
				n.log.Info("registrations shared with the cluster again", "after_failures", failures)
			}
			failures = 0
		case ctx.Err() != nil:
		default:
			failures++
			if failures == 1 || failures%40 == 0 {
				n.log.Warn("cannot share registrations with the cluster yet; keeping them locally", "failures", failures, "error", err)
			}
		}
		return false
	})
}

func (n *Node) shareOnce(ctx context.Context, s *sharer) error {
	since := s.mark
	if !since.IsZero() {
		since = since.Add(-shareMargin)
	}
	rows, err := n.store.Reader().LocalBindingsSince(ctx, since)
	if err != nil {
		return err
	}
	var fresh []store.Binding
	for _, b := range rows {
		if v, ok := s.shared[b.ID]; !ok || b.UpdatedAt.After(v) {
			fresh = append(fresh, b)
		}
	}
	for start := 0; start < len(fresh); start += shareChunk {
		chunk := fresh[start:min(start+shareChunk, len(fresh))]
		if err := n.share(ctx, chunk); err != nil {
			return err
		}
		for _, b := range chunk {
			s.shared[b.ID] = b.UpdatedAt
			if b.UpdatedAt.After(s.mark) {
				s.mark = b.UpdatedAt
			}
		}
	}
	for id, v := range s.shared {
		if v.Before(s.mark.Add(-shareMargin)) {
			delete(s.shared, id)
		}
	}
	return nil
}

// share proposes bindings on the leader, directly or through its API.
func (n *Node) share(ctx context.Context, bs []store.Binding) error {
	cmd, err := cluster.EncodeBindings(bs)
	if err != nil {
		return err
	}
	if n.cluster.IsLeader() {
		res, err := n.cluster.ApplyBatched(ctx, cmd)
		if err == nil {
			err = res.Err
		}
		return err
	}
	c, err := n.leaderClient(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.ApplyShared(rctx, cmd)
}

// errNoLeaderAddr means the leader is unknown or has not announced its
// HTTP address yet.
var errNoLeaderAddr = errors.New("no leader with a known HTTP address")

// leaderClient talks to the leader's API.
func (n *Node) leaderClient(ctx context.Context) (*web.Client, error) {
	id, _ := n.cluster.Leader()
	if id == "" {
		return nil, errNoLeaderAddr
	}
	members, err := n.store.Reader().Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.ID == id && m.HTTPAddr != "" {
			return web.NewClient(m.HTTPAddr, n.token), nil
		}
	}
	return nil, fmt.Errorf("%w: leader %s", errNoLeaderAddr, id)
}
