package cloudsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Applier is what the Syncer needs from the appliance: the configuration
// it serves, and ways to apply a new one through the cluster.
type Applier interface {
	// CurrentRevision is the revision the cluster serves (0 when empty).
	CurrentRevision(ctx context.Context) (int64, error)
	// CurrentSnapshot is the configuration the cluster serves (nil when
	// empty). The Syncer does not modify it.
	CurrentSnapshot(ctx context.Context) (*account.Snapshot, error)
	// Apply validates snap and proposes it through Raft whole, as one
	// entry. A snapshot refused as invalid returns an
	// *account.ValidationError (with every problem); any other error (no
	// leader, no quorum) is retried.
	Apply(ctx context.Context, snap *account.Snapshot) error
	// ApplyChanges validates next, the configuration served at base with
	// ops applied, and proposes ops through Raft as one entry that applies
	// only where base is served: an edit of one object costs the cluster
	// that object, not the account. Errors as Apply's; ErrStale when the
	// cluster no longer serves base.
	ApplyChanges(ctx context.Context, base int64, ops []protocol.Op, next *account.Snapshot) error
}

// ErrStale is an Applier's answer to changes whose base the cluster no
// longer serves (a revision applied in between, as by `outpost apply`):
// the Syncer starts again from what is served.
var ErrStale = errors.New("the cluster no longer serves the revision the changes start from")

// maxChangeOps is the most ops the Syncer proposes as changes; past it,
// rewriting the whole configuration is as cheap, and it goes whole.
const maxChangeOps = 1000

// SyncerConfig configures a Syncer. Client and Applier are required.
type SyncerConfig struct {
	Client  *Client
	Applier Applier
	NodeID  string       // sent with acks
	Log     *slog.Logger // default: discard
	// Wait is how long the cloud may hold a changes poll (30 s; at most
	// protocol.MaxWait).
	Wait time.Duration
	// PollInterval is the least time between two polls that found
	// nothing, should the cloud answer 204 at once (1 s).
	PollInterval time.Duration
	Backoff      *Backoff                             // default NewBackoff(nil)
	Now          func() time.Time                     // default time.Now
	After        func(time.Duration) <-chan time.Time // default time.After
}

// SyncStatus is what the Syncer knows, for /api/v1/status and the mode
// machine.
type SyncStatus struct {
	Revision      int64 // the revision the cluster serves, as last seen
	CloudRevision int64 // the cloud's, from its last answer
	// CaughtUp: the cloud's last answer had nothing past the last
	// revision the appliance took (applied, or rejected: see Rejected).
	CaughtUp    bool
	LastSyncAt  time.Time // last successful exchange with the cloud
	LastError   string    // last failure; "" after a success
	LastErrorAt time.Time
	// Rejected is the last revision the appliance refused, until one
	// applies.
	Rejected *Rejection
}

// Rejection is a revision the appliance refused, with the problems.
type Rejection struct {
	Revision int64
	Problems []protocol.Problem
}

// Syncer is the leader's pull loop (docs/sync-protocol.md): it long-polls
// the cloud's changes, applies them to the document the cluster serves
// (protocol.Apply), proposes the result through the Applier, and acks it
// applied or rejected. When the cloud no longer has the history (410) or
// is behind (409), it fetches the whole snapshot instead. A push (Wake)
// makes it poll at once. Failures are retried with backoff and shown in
// Status; nothing is applied from a failed or partial answer.
type Syncer struct {
	cfg  SyncerConfig
	log  *slog.Logger
	loop *loop // paced by PollInterval; Wake kicks it

	// Loop state, owned by Run's goroutine.
	base    *account.Snapshot // the cloud's snapshot at baseRev (applied or rejected); never modified
	baseRev int64
	// opaque: the cloud's document at baseRev could not be decoded (it was
	// rejected), so base is nil and changes cannot build on it: the next
	// revision is fetched whole.
	opaque     bool
	applied    int64  // the cluster's revision when base was taken or applied
	loaded     bool   // base reflects applied
	etag       string // ETag of base when it came whole from the cloud
	pendingAck *protocol.Ack
	skipPace   bool // a wake-up came: poll again at once
	// confirm is the revision the cluster served when this Syncer started,
	// until the first poll answers (0 then). Whoever applied it (another
	// leader, since dead) may not have acked it: it is acked applied if the
	// cloud answers that it is at that revision. That first poll does not
	// wait, so the ack (and CaughtUp) come at once.
	confirm int64

	mu     sync.Mutex
	status SyncStatus
}

// NewSyncer checks cfg and fills its defaults.
func NewSyncer(cfg SyncerConfig) (*Syncer, error) {
	if cfg.Client == nil || cfg.Applier == nil {
		return nil, errors.New("new syncer: a client and an applier are required")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	cfg.Wait = min(cfg.Wait, protocol.MaxWait)
	l := newLoop(loopConfig{Log: cfg.Log, Interval: cfg.PollInterval, Backoff: cfg.Backoff, Now: cfg.Now, After: cfg.After},
		time.Second, "component", "cloudsync")
	return &Syncer{cfg: cfg, log: l.log, loop: l}, nil
}

// Wake makes the loop poll now (a push came): it cuts short a backoff
// wait or a long poll in progress. It never blocks.
func (s *Syncer) Wake() { s.loop.Kick() }

// Status is a copy of what the Syncer knows.
func (s *Syncer) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.Rejected != nil {
		r := *st.Rejected
		st.Rejected = &r
	}
	return st
}

// errWoken ends a long poll cut short by Wake.
var errWoken = errors.New("woken")

// Run syncs until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	s.log.Info("sync loop started", "cloud", s.cfg.Client.BaseURL())
	defer s.log.Info("sync loop stopped")
	for ctx.Err() == nil {
		s.skipPace = false
		idle, err := s.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var d time.Duration
			if Retryable(err) && !errors.Is(err, ErrAhead) {
				d = s.loop.backoff.Next()
			} else {
				d = s.loop.backoff.Slowest()
			}
			level := slog.LevelWarn
			if s.failed(err) {
				level = slog.LevelDebug // the same failure again
			}
			s.log.Log(ctx, level, "sync failed; retrying", "error", err, "retry_in", d.Round(time.Millisecond))
			s.loop.pause(ctx, d)
			continue
		}
		s.loop.backoff.Reset()
		if idle && !s.skipPace {
			s.loop.pause(ctx, s.loop.interval)
		}
	}
}

// step is one round: an ack owed, then one poll and what it brings. idle
// says the cloud had nothing new.
func (s *Syncer) step(ctx context.Context) (idle bool, err error) {
	if err := s.flushAck(ctx); err != nil {
		return false, err
	}
	cur, err := s.cfg.Applier.CurrentRevision(ctx)
	if err != nil {
		return false, fmt.Errorf("read the current revision: %w", err)
	}
	if !s.loaded || cur != s.applied {
		snap, err := s.cfg.Applier.CurrentSnapshot(ctx)
		if err != nil {
			return false, fmt.Errorf("read the current snapshot: %w", err)
		}
		if !s.loaded && snap != nil {
			s.confirm = cur
		}
		s.base, s.baseRev, s.applied, s.etag, s.loaded, s.opaque = snap, cur, cur, "", true, false
		s.setRevision(cur)
	}
	if s.base == nil && !s.opaque { // nothing served yet: start from the whole snapshot
		return s.fullSnapshot(ctx, false)
	}

	ch, cloudRev, err := s.poll(ctx)
	switch {
	case errors.Is(err, errWoken):
		s.skipPace = true
		return false, nil
	case errors.Is(err, ErrTooFarBehind):
		s.log.Info("too far behind the cloud's history; fetching the full snapshot", "since", s.baseRev)
		return s.fullSnapshot(ctx, false)
	case errors.Is(err, ErrAhead):
		s.log.Warn("ahead of the cloud; fetching its snapshot", "since", s.baseRev)
		return s.fullSnapshot(ctx, true)
	case err != nil:
		return false, err
	}
	s.succeeded(cloudRev)
	if ch == nil || len(ch.Revisions) == 0 {
		return true, s.confirmServed(ctx, cloudRev)
	}
	s.confirm = 0 // what comes is acked
	if s.opaque {
		return s.fullSnapshot(ctx, false)
	}
	next := s.base
	var ops []protocol.Op
	for _, r := range ch.Revisions {
		if next, err = protocol.ApplySnapshot(next, r.Ops); err != nil {
			s.log.Warn("changes do not apply to the snapshot held; fetching the full snapshot", "revision", r.Revision, "error", err)
			return s.fullSnapshot(ctx, false)
		}
		ops = append(ops, r.Ops...)
	}
	next.Revision = ch.To
	return false, s.propose(ctx, next, ops, "")
}

// poll long-polls the changes since the base; Wake cuts it short
// (errWoken).
func (s *Syncer) poll(ctx context.Context) (*protocol.Changes, int64, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	woken := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		select {
		case <-s.loop.kick:
			cancel()
			woken <- true
		case <-done:
			woken <- false
		}
	}()
	wait := s.cfg.Wait
	if s.confirm > 0 {
		wait = 0
	}
	ch, rev, err := s.cfg.Client.Changes(pctx, s.baseRev, wait)
	close(done)
	if <-woken {
		if err != nil && ctx.Err() == nil {
			return nil, 0, errWoken
		}
		s.skipPace = true // woken as the answer came: poll again at once
	}
	return ch, rev, err
}

// confirmServed acks the revision served at the start applied if the cloud
// is at it (nothing newer came).
func (s *Syncer) confirmServed(ctx context.Context, cloudRev int64) error {
	rev := s.confirm
	s.confirm = 0
	if rev == 0 || cloudRev != rev || s.baseRev != rev || s.pendingAck != nil {
		return nil
	}
	s.pendingAck = &protocol.Ack{Revision: rev, Status: protocol.AckApplied, NodeID: s.cfg.NodeID}
	return s.flushAck(ctx)
}

// fullSnapshot fetches the cloud's whole snapshot and applies it. ahead:
// the appliance was ahead of the cloud, so only a newer snapshot applies.
// idle says there was nothing to apply (the loop then paces its next poll).
func (s *Syncer) fullSnapshot(ctx context.Context, ahead bool) (idle bool, err error) {
	ans, err := s.cfg.Client.Snapshot(ctx, s.etag)
	if err != nil {
		return false, err
	}
	if ans.NotModified {
		s.succeeded(s.baseRev)
		return true, nil
	}
	if !isJSONObject(ans.Doc) {
		return false, fmt.Errorf("fetch snapshot: %w: not a JSON object", ErrMalformedAnswer)
	}
	s.succeeded(ans.Revision)
	if s.applied > 0 && (ans.Revision < s.applied || ahead && ans.Revision == s.applied) {
		return false, fmt.Errorf("%w: the cloud is at revision %d, this appliance at %d (was the cloud restored from a backup?): not applied; apply a newer snapshot in the cloud, or this one with `outpost apply`", ErrAhead, ans.Revision, s.applied)
	}
	snap, err := account.DecodeBytes(ans.Doc)
	if err != nil {
		// A document the snapshot model cannot hold: rejected like an
		// invalid one, and nothing can build on it.
		s.base, s.baseRev, s.etag, s.opaque = nil, ans.Revision, ans.ETag, true
		s.rejected(ans.Revision, []protocol.Problem{{Path: "", Message: err.Error()}}, err)
		return false, s.flushAck(ctx)
	}
	snap.Revision = ans.Revision
	if s.applied > 0 && ans.Revision == s.applied {
		// The cloud's snapshot is the revision served: nothing to apply.
		s.base, s.baseRev, s.etag, s.opaque = snap, ans.Revision, ans.ETag, false
		return true, nil
	}
	return false, s.propose(ctx, snap, nil, ans.ETag)
}

// isJSONObject reports whether doc is one JSON object (a snapshot at all,
// rather than garbage from a proxy).
func isJSONObject(doc []byte) bool {
	trimmed := bytes.TrimSpace(doc)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}

// propose applies next (at next.Revision) through the Applier and acks the
// outcome: as changes (ops, from the revision served) when it builds on
// the revision served and ops are few, else whole. A refused snapshot
// becomes the base all the same (the next revisions build on it) while the
// cluster keeps serving the last good one.
func (s *Syncer) propose(ctx context.Context, next *account.Snapshot, ops []protocol.Op, etag string) error {
	rev := next.Revision
	var err error
	if ops != nil && s.baseRev == s.applied && len(ops) <= maxChangeOps {
		err = s.cfg.Applier.ApplyChanges(ctx, s.applied, ops, next)
	} else {
		err = s.cfg.Applier.Apply(ctx, next)
	}
	var ve *account.ValidationError
	switch {
	case err == nil:
		s.base, s.baseRev, s.applied, s.etag, s.opaque = next, rev, rev, etag, false
		s.log.Info("revision applied", "revision", rev, "ops", len(ops))
		s.mu.Lock()
		s.status.Revision, s.status.Rejected = rev, nil
		s.status.CaughtUp = s.status.CloudRevision <= rev
		s.mu.Unlock()
		s.pendingAck = &protocol.Ack{Revision: rev, Status: protocol.AckApplied, NodeID: s.cfg.NodeID}
	case errors.As(err, &ve):
		s.base, s.baseRev, s.etag, s.opaque = next, rev, etag, false
		problems := make([]protocol.Problem, len(ve.Problems))
		for i, p := range ve.Problems {
			problems[i] = protocol.Problem{Path: p.Path, Message: p.Message}
		}
		s.rejected(rev, problems, err)
	case errors.Is(err, ErrStale):
		s.loaded = false // start again from what the cluster serves
		return fmt.Errorf("apply revision %d: %w", rev, err)
	default:
		return fmt.Errorf("apply revision %d: %w", rev, err)
	}
	return s.flushAck(ctx)
}

// rejected records a revision refused (the cluster serving the last good
// one) and owes the cloud its ack.
func (s *Syncer) rejected(rev int64, problems []protocol.Problem, err error) {
	s.log.Warn("revision rejected; serving the last good one", "revision", rev, "serving", s.applied, "problems", len(problems), "error", err)
	s.mu.Lock()
	s.status.Rejected = &Rejection{Revision: rev, Problems: problems}
	s.status.CaughtUp = s.status.CloudRevision <= rev
	s.mu.Unlock()
	s.pendingAck = &protocol.Ack{Revision: rev, Status: protocol.AckRejected, Problems: problems, NodeID: s.cfg.NodeID}
}

// flushAck sends the ack owed, if any. A retryable failure keeps it owed,
// and so does the end of ctx (the loop stops; the next leader's syncer
// acks the revision served, see confirm); a refusal (4xx) drops it, as
// retrying will not help.
func (s *Syncer) flushAck(ctx context.Context) error {
	if s.pendingAck == nil {
		return nil
	}
	err := s.cfg.Client.Ack(ctx, *s.pendingAck)
	if err != nil && (Retryable(err) || ctx.Err() != nil) {
		return err
	}
	if err != nil {
		s.failed(err)
		s.log.Error("ack refused; dropped", "revision", s.pendingAck.Revision, "error", err)
	}
	s.pendingAck = nil
	return nil
}

func (s *Syncer) setRevision(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Revision = rev
}

// succeeded records an answer from the cloud at cloudRev.
func (s *Syncer) succeeded(cloudRev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.LastSyncAt = s.loop.now()
	s.status.LastError = ""
	s.status.CloudRevision = cloudRev
	s.status.CaughtUp = cloudRev <= s.baseRev
}

// failed records a failure, and says whether it is the same as the last.
func (s *Syncer) failed(err error) (again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	again = s.status.LastError == msg
	s.status.LastError = msg
	s.status.LastErrorAt = s.loop.now()
	s.status.CaughtUp = false
	return again
}
