package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
)

// Sharing of the presence plane: the registrar records bindings in
// local_bindings at once, with or without quorum; shareLoop then proposes
// them to the cluster, so every node can route to every phone.
// shareMargin applies while catching up from the store: rows are re-read
// this much older than the newest shared, since requests stamped just before
// another may commit just after it.
const (
	shareEvery  = 250 * time.Millisecond
	shareChunk  = 1000
	shareMargin = 5 * time.Second
)

// sharer holds what the registrar persisted and the cluster has not taken
// yet. Normally it shares exactly that; after a failure (no quorum, a
// partition), after a restart, or when too much piled up, it catches up
// from the store instead: everything changed since the last success.
type sharer struct {
	mu       sync.Mutex
	queue    []store.Binding
	catchUp  bool
	mark     time.Time            // newest UpdatedAt shared while catching up
	shared   map[string]time.Time // id -> version shared, within the margin
	failures int
}

// maxShareQueue bounds the queue; past it the sharer reads the store.
const maxShareQueue = 200_000

func newSharer() *sharer {
	return &sharer{catchUp: true, shared: map[string]time.Time{}}
}

// persisted is called with every batch the registrar committed locally.
func (s *sharer) persisted(bs []store.Binding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catchUp {
		return // the catch-up read will find them
	}
	if len(s.queue)+len(bs) > maxShareQueue {
		s.queue, s.catchUp = nil, true
		return
	}
	s.queue = append(s.queue, bs...)
}

// shareLoop shares what the registrar persisted until ctx ends.
func (n *Node) shareLoop(ctx context.Context) {
	s := n.sharer
	every(ctx, shareEvery, func() bool {
		err := n.shareOnce(ctx, s)
		switch {
		case err == nil:
			if s.failures > 0 {
				n.log.Info("registrations shared with the cluster again", "after_failures", s.failures)
			}
			s.failures = 0
		case ctx.Err() != nil:
		default:
			s.failures++
			if s.failures == 1 || s.failures%40 == 0 {
				n.log.Warn("cannot share registrations with the cluster yet; keeping them locally", "failures", s.failures, "error", err)
			}
		}
		return false
	})
}

func (n *Node) shareOnce(ctx context.Context, s *sharer) error {
	s.mu.Lock()
	catchUp, queue := s.catchUp, s.queue
	s.queue = nil
	s.mu.Unlock()
	if !catchUp {
		if err := n.shareChunks(ctx, queue); err != nil {
			s.mu.Lock()
			s.catchUp, s.queue = true, nil
			s.mu.Unlock()
			return err
		}
		return nil
	}
	// Catching up: queue new batches from now on, then read the store; a
	// batch committed in between is in both, which costs a duplicate only.
	s.mu.Lock()
	s.catchUp = false
	s.mu.Unlock()
	since := s.mark
	if !since.IsZero() {
		since = since.Add(-shareMargin)
	}
	rows, err := n.store.Reader().LocalBindingsSince(ctx, since)
	if err != nil {
		s.mu.Lock()
		s.catchUp, s.queue = true, nil
		s.mu.Unlock()
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
			s.mu.Lock()
			s.catchUp, s.queue = true, nil
			s.mu.Unlock()
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

// shareChunks shares bs in chunks.
func (n *Node) shareChunks(ctx context.Context, bs []store.Binding) error {
	for start := 0; start < len(bs); start += shareChunk {
		if err := n.share(ctx, bs[start:min(start+shareChunk, len(bs))]); err != nil {
			return err
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
