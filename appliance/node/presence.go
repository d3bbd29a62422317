package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
)

// Sharing of the local-first planes: the registrar records bindings, and
// the B2BUA call records, on this node at once, with or without quorum; a
// sharer then proposes them to the cluster, so every node can route to
// every phone and no record is lost when a node dies.
// shareMargin applies while catching up from the store: rows are re-read
// this much older than the newest shared, since rows stamped just before
// another may commit just after it.
const (
	shareEvery  = 250 * time.Millisecond
	shareChunk  = 1000
	shareMargin = 5 * time.Second
	// maxShareQueue bounds the queue; past it the sharer reads the store.
	maxShareQueue = 200_000
)

// sharer holds what was persisted locally and the cluster has not taken
// yet. Normally it shares exactly that; after a failure (no quorum, a
// partition), after a restart, or when too much piled up, it catches up
// from the store instead: everything changed since the last success.
type sharer[T any] struct {
	what    string
	id      func(T) string
	version func(T) time.Time
	since   func(ctx context.Context, t time.Time) ([]T, error) // local rows newer than t
	encode  func([]T) ([]byte, error)                           // the Raft command

	mu       sync.Mutex
	queue    []T
	catchUp  bool
	mark     time.Time            // newest version shared while catching up
	shared   map[string]time.Time // id -> version shared, within the margin
	failures int
}

func newBindingSharer(st *store.Store) *sharer[store.Binding] {
	return &sharer[store.Binding]{
		what:    "registrations",
		id:      func(b store.Binding) string { return b.ID },
		version: func(b store.Binding) time.Time { return b.UpdatedAt },
		since:   st.Reader().LocalBindingsSince,
		encode:  cluster.EncodeBindings,
		catchUp: true, shared: map[string]time.Time{},
	}
}

func newRecordSharer(st *store.Store) *sharer[store.CallRecord] {
	return &sharer[store.CallRecord]{
		what:    "call records",
		id:      func(r store.CallRecord) string { return r.ID },
		version: func(r store.CallRecord) time.Time { return r.End },
		since:   st.Reader().LocalCallRecordsSince,
		encode:  cluster.EncodeCallRecords,
		catchUp: true, shared: map[string]time.Time{},
	}
}

// persisted is called with every batch committed locally.
func (s *sharer[T]) persisted(rows []T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catchUp {
		return // the catch-up read will find them
	}
	if len(s.queue)+len(rows) > maxShareQueue {
		s.queue, s.catchUp = nil, true
		return
	}
	s.queue = append(s.queue, rows...)
}

// run shares until ctx ends; propose sends one encoded command.
func (s *sharer[T]) run(ctx context.Context, log *slog.Logger, propose func(context.Context, []byte) error) {
	every(ctx, shareEvery, func() bool {
		err := s.once(ctx, propose)
		switch {
		case err == nil:
			if s.failures > 0 {
				log.Info(s.what+" shared with the cluster again", "after_failures", s.failures)
			}
			s.failures = 0
		case ctx.Err() != nil:
		default:
			s.failures++
			if s.failures == 1 || s.failures%40 == 0 {
				log.Warn("cannot share "+s.what+" with the cluster yet; keeping them locally", "failures", s.failures, "error", err)
			}
		}
		return false
	})
}

func (s *sharer[T]) fail() {
	s.mu.Lock()
	s.catchUp, s.queue = true, nil
	s.mu.Unlock()
}

func (s *sharer[T]) once(ctx context.Context, propose func(context.Context, []byte) error) error {
	s.mu.Lock()
	catchUp, queue := s.catchUp, s.queue
	s.queue = nil
	// Catching up: queue new batches from now on, then read the store; a
	// batch committed in between is in both, which costs a duplicate only.
	s.catchUp = false
	s.mu.Unlock()
	rows := queue
	if catchUp {
		since := s.mark
		if !since.IsZero() {
			since = since.Add(-shareMargin)
		}
		all, err := s.since(ctx, since)
		if err != nil {
			s.fail()
			return err
		}
		rows = rows[:0]
		for _, r := range all {
			if v, ok := s.shared[s.id(r)]; !ok || s.version(r).After(v) {
				rows = append(rows, r)
			}
		}
	}
	for start := 0; start < len(rows); start += shareChunk {
		chunk := rows[start:min(start+shareChunk, len(rows))]
		cmd, err := s.encode(chunk)
		if err == nil {
			err = propose(ctx, cmd)
		}
		if err != nil {
			s.fail()
			return err
		}
		if catchUp {
			for _, r := range chunk {
				s.shared[s.id(r)] = s.version(r)
				if s.version(r).After(s.mark) {
					s.mark = s.version(r)
				}
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

// propose proposes a presence-plane command on the leader, directly (in a
// batch) or through its API.
func (n *Node) propose(ctx context.Context, cmd []byte) error {
	return n.onLeader(ctx, n.cluster.ApplyBatched, func(ctx context.Context, c *web.Client) error {
		return c.ApplyShared(ctx, cmd)
	}, cmd)
}

// onLeader applies cmd with apply when this node leads, else has remote ask
// the leader's API to.
func (n *Node) onLeader(ctx context.Context, apply func(context.Context, []byte) (cluster.ApplyResult, error),
	remote func(context.Context, *web.Client) error, cmd []byte) error {
	if n.cluster.IsLeader() {
		res, err := apply(ctx, cmd)
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
	return remote(rctx, c)
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

// Expired registrations are kept a while after they lapse (a tombstone
// must outlive any stale copy of the binding it removed, and those expire
// no later than it), then pruned: each node its own rows, the leader the
// replicated table through Raft, with one cut-off for every node. Call
// records are not pruned here: they stay until the cloud has them.
const (
	pruneEvery     = 5 * time.Minute
	pruneRetention = time.Hour
)

// pruneLoop prunes expired registrations until ctx ends.
func (n *Node) pruneLoop(ctx context.Context) {
	every(ctx, pruneEvery, func() bool {
		if err := n.prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			n.log.Warn("cannot prune expired registrations", "error", err)
		}
		return false
	})
}

// prune deletes registrations that expired before now-pruneRetention.
func (n *Node) prune(ctx context.Context, now time.Time) error {
	before := now.Add(-pruneRetention).UTC()
	local, err := n.store.PruneLocalBindings(before)
	if err != nil {
		return err
	}
	if local > 0 {
		n.log.Debug("pruned expired registrations", "count", local)
	}
	if !n.cluster.IsLeader() {
		return nil
	}
	cmd, err := cluster.Encode(cluster.CmdPruneBindings, cluster.PruneBindings{Before: before})
	if err != nil {
		return err
	}
	res, err := n.cluster.ApplyBatched(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("prune replicated registrations: %w", err)
	}
	return nil
}
