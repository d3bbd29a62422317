package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Rotating groups' state (issue 6): the member who answered each group's
// last call, so the next call starts after them on whichever node takes
// it, and after a change of leader. The B2BUA asks for it on every call to
// a rotating group, so it is served from memory. What this node's calls
// decide goes into memory at once and to the cluster as put_rotation
// commands, proposed in the background through the leader; what the other
// nodes decide comes back from the replicated table sdg_rotations, read
// again whenever the FSM has applied a rotation. Memory and the table keep
// a group's newest rotation alike (store.Rotation.Newer), so the order
// they learn rotations in does not matter.
const (
	// rotationPoll is how often the FSM's rotations generation is looked
	// at: the most a node lags behind a rotation the cluster applied.
	rotationPoll = 50 * time.Millisecond
	// rotationRetry is the first wait before proposing again what failed
	// (no leader, no quorum), doubling up to rotationRetryMax.
	rotationRetry    = time.Second
	rotationRetryMax = 30 * time.Second
	// rotationTimeout bounds one proposal.
	rotationTimeout = 10 * time.Second
)

// rotations implements calls.Rotations for the node.
type rotations struct {
	log     *slog.Logger
	read    func(context.Context) ([]store.Rotation, error) // the replicated table
	gen     func() uint64                                   // moves when the table may have changed
	propose func(context.Context, []byte) error             // a shared command, to the leader
	now     func() time.Time

	mu      sync.RWMutex
	last    map[string]store.Rotation // by group: the newest known
	pending map[string]store.Rotation // by group: to propose
	kick    chan struct{}

	// Used by Run's goroutines only.
	seen     uint64 // the generation last read
	loaded   bool   // the table was read once
	failures int    // proposals failed in a row
}

var _ calls.Rotations = (*rotations)(nil)

// newRotations builds the node's rotations on its store and cluster,
// loaded with what the store holds; Run keeps them shared and current.
// Call it once the cluster is open (after cluster.Open in start).
func newRotations(n *Node) *rotations {
	return newRotationsWith(n.store.Reader().Rotations, n.cluster.FSM().RotationsGeneration, n.propose,
		n.log.With("component", "rotations"))
}

func newRotationsWith(read func(context.Context) ([]store.Rotation, error), gen func() uint64,
	propose func(context.Context, []byte) error, log *slog.Logger) *rotations {
	r := &rotations{
		log: log, read: read, gen: gen, propose: propose, now: time.Now,
		last: map[string]store.Rotation{}, pending: map[string]store.Rotation{}, kick: make(chan struct{}, 1),
	}
	r.refresh(context.Background())
	return r
}

// LastAnswered is the member who answered group's last call as this node
// knows it, "" when none did.
func (r *rotations) LastAnswered(group string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.last[group].Member
}

// Rotated records that member answered group's last call: in memory at
// once, and for Run to propose to the cluster. It never blocks on the
// cluster. The rotation is stamped now, or just after the rotation known
// for the group if that is later (another node's clock ahead of this
// one's), so it supersedes everything this node has seen.
func (r *rotations) Rotated(group, member string) {
	if group == "" || member == "" {
		r.log.Warn("ignoring a rotation without group or member", "group", group, "member", member)
		return
	}
	r.mu.Lock()
	at := r.now().UTC().Truncate(time.Millisecond)
	if old, ok := r.last[group]; ok && !at.After(old.At) {
		at = old.At.Add(time.Millisecond)
	}
	rot := store.Rotation{Group: group, Member: member, At: at}
	r.last[group] = rot
	r.pending[group] = rot
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run proposes the rotations this node records and follows those the
// cluster applies, until ctx ends. Rotations not proposed by then are
// dropped: memory is lost with the process, and the cluster keeps the
// last one it took.
func (r *rotations) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, rotationPoll, func() bool {
			r.refresh(ctx)
			return false
		})
	}()
	r.share(ctx)
	wg.Wait()
}

// refresh reads the replicated rotations when the FSM applied one since
// the last read, and keeps the newer of each group's.
func (r *rotations) refresh(ctx context.Context) {
	g := r.gen()
	if r.loaded && g == r.seen {
		return
	}
	rs, err := r.read(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("cannot read the cluster's rotations; serving what this node knows", "error", err)
		}
		return
	}
	r.mu.Lock()
	for _, s := range rs {
		if old, ok := r.last[s.Group]; !ok || s.Newer(old) {
			r.last[s.Group] = s
		}
	}
	r.mu.Unlock()
	r.seen, r.loaded = g, true
}

// share proposes pending rotations whenever Rotated adds one, and again
// after a failure, with a growing wait, until ctx ends.
func (r *rotations) share(ctx context.Context) {
	var retry <-chan time.Time
	wait := rotationRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-retry:
		}
		retry = nil
		if err := r.proposePending(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failures++
			if r.failures == 1 || r.failures%20 == 0 {
				r.log.Warn("cannot share rotations with the cluster yet; this node keeps serving its own",
					"failures", r.failures, "retry_in", wait, "error", err)
			}
			retry = time.After(wait)
			wait = min(2*wait, rotationRetryMax)
			continue
		}
		if r.failures > 0 {
			r.log.Info("rotations shared with the cluster again", "after_failures", r.failures)
		}
		r.failures, wait = 0, rotationRetry
	}
}

// proposePending proposes each group's pending rotation, one command
// each, the groups' latest only. A rotation superseded meanwhile (a newer
// one known from the cluster) is dropped. At the first failure it puts
// back what it did not propose, unless newer ones took their place, and
// returns the error.
func (r *rotations) proposePending(ctx context.Context) error {
	r.mu.Lock()
	batch := make([]store.Rotation, 0, len(r.pending))
	for group, p := range r.pending {
		if r.last[group].Newer(p) {
			continue // another node's is newer: nothing to say
		}
		batch = append(batch, p)
	}
	clear(r.pending)
	r.mu.Unlock()

	for i, p := range batch {
		cmd, err := cluster.EncodeRotation(p)
		if err != nil { // Rotated checks what it needs: a bug
			r.log.Error("dropping a rotation that does not encode", "group", p.Group, "member", p.Member, "error", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, rotationTimeout)
		err = r.propose(pctx, cmd)
		cancel()
		if err != nil {
			r.requeue(batch[i:])
			return fmt.Errorf("propose the rotation of %s: %w", p.Group, err)
		}
	}
	return nil
}

// requeue puts rotations back to propose, unless a newer one for their
// group is pending already.
func (r *rotations) requeue(rs []store.Rotation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range rs {
		if q, ok := r.pending[p.Group]; !ok || p.Newer(q) {
			r.pending[p.Group] = p
		}
	}
}
