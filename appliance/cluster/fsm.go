package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// ApplyResult is what the FSM answers for one command, returned to the
// proposer through raft's ApplyFuture.
type ApplyResult struct {
	Revision int64         // the config revision after the command
	Err      error         // why the command changed nothing
	Batch    []ApplyResult // for CmdBatch: one result per inner command
}

// ErrStaleRevision is an ApplyResult.Err: a snapshot whose revision is not
// greater than the one the cluster holds.
var ErrStaleRevision = errors.New("stale revision")

// ErrMalformedCommand is an ApplyResult.Err: a known command whose payload
// does not decode. It changes nothing; unlike an unknown command type (a
// newer binary's), it does not halt the FSM.
var ErrMalformedCommand = errors.New("malformed command")

// ErrHalted is returned while the FSM refuses to apply: it met a command it
// does not know and must be upgraded before it can go on.
var ErrHalted = errors.New("fsm halted")

// FSM is a thin adapter from Raft's log to the store: every batch of entries
// is one SQLite transaction, every entry one savepoint within it. Entries at or
// below the store's applied index are skipped, so a restarted node replays
// only what it has not applied (raft runs with NoSnapshotRestoreOnStart).
type FSM struct {
	store *store.Store
	log   *slog.Logger

	applied  atomic.Uint64
	revision atomic.Int64 // the store's config revision, kept in step by the FSM
	// generation counts changes to what readers may cache from the config
	// plane (a revision, the mode, a restore); presence commands leave it.
	generation atomic.Uint64
	configHit  bool // set while applying a batch that changes the config plane
	// rotations counts commits that may have changed sdg_rotations (a
	// put_rotation applied, a restore, a rolled-back batch), so the node
	// re-reads them only then.
	rotations   atomic.Uint64
	rotationHit bool // set while applying a batch with a put_rotation
	// vmApplied is the voicemail messages the batch being applied wrote,
	// for vmHook after the commit (fsm_voicemail.go).
	vmApplied []store.VoicemailMessage
	vmMu      sync.Mutex
	vmHook    func([]store.VoicemailMessage)
	halted    atomic.Pointer[error]
	stalled   atomic.Pointer[error] // the disk is full: a batch waits for space
	closing   chan struct{}
	closeOnce sync.Once
}

var _ raft.BatchingFSM = (*FSM)(nil)

// NewFSM wraps an open store.
func NewFSM(st *store.Store, log *slog.Logger) (*FSM, error) {
	idx, err := st.AppliedIndex()
	if err != nil {
		return nil, fmt.Errorf("read applied index: %w", err)
	}
	f := &FSM{store: st, log: log, closing: make(chan struct{})}
	f.applied.Store(idx)
	if err := f.loadRevision(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FSM) loadRevision() error {
	rev, err := f.store.Reader().Revision(context.Background())
	if err != nil {
		return fmt.Errorf("read revision: %w", err)
	}
	f.revision.Store(rev)
	f.generation.Add(1)
	f.rotations.Add(1)
	return nil
}

// ConfigGeneration changes whenever the configuration or the mode may have
// changed, so readers can cache what they read from the config plane until
// it moves. It may move without a change (a rolled-back batch).
func (f *FSM) ConfigGeneration() uint64 { return f.generation.Load() }

// RotationsGeneration changes whenever rotating groups' state
// (store.Reader.Rotations) may have changed: after a commit in which a
// put_rotation applied, a restore or a rolled-back batch. It may move
// without a change (a late, older rotation the store kept out).
func (f *FSM) RotationsGeneration() uint64 { return f.rotations.Load() }

// AppliedIndex is the last Raft index the store holds.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Halted reports why the FSM stopped applying, or nil.
func (f *FSM) Halted() error {
	if p := f.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// Apply applies one entry.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in one transaction.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	if err := f.Halted(); err != nil {
		for i := range results {
			results[i] = ApplyResult{Err: err}
		}
		return results
	}
	last, err := f.write(logs, results)
	for attempt := 1; store.IsFull(err); attempt++ {
		// The disk is full: the batch rolled back and nothing is lost.
		// Raft's log has the entries, so wait for space and apply them
		// again, in order, instead of halting for good; meanwhile this
		// node applies nothing and says why (Stalled).
		f.configHit, f.rotationHit = false, false
		f.vmApplied = nil
		_ = f.loadRevision()
		stalled := err // a copy: err changes as the batch is tried again
		f.stalled.Store(&stalled)
		if attempt == 1 || attempt%60 == 0 {
			f.log.Error("store is full: applying waits for disk space", "raft_index", logs[0].Index, "attempts", attempt, "error", err)
		}
		select {
		case <-f.closing:
			err = fmt.Errorf("stopped while waiting for disk space (%v)", err)
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
			last, err = f.write(logs, results)
		}
	}
	if f.stalled.Swap(nil) != nil && err == nil {
		f.log.Info("store has space again: applying resumed", "raft_index", logs[0].Index)
	}
	if err != nil {
		f.halt(err)
		f.configHit, f.rotationHit = false, false
		f.voicemailCommitted(false)
		_ = f.loadRevision() // the batch rolled back
		for i := range results {
			results[i] = ApplyResult{Err: f.Halted()}
		}
		return results
	}
	f.applied.Store(last)
	if f.configHit { // after the commit, so a reader never caches the old state as new
		f.configHit = false
		f.generation.Add(1)
	}
	if f.rotationHit {
		f.rotationHit = false
		f.rotations.Add(1)
	}
	f.voicemailCommitted(true)
	return results
}

// write applies the batch in one transaction, filling results, and
// returns the applied index it committed.
func (f *FSM) write(logs []*raft.Log, results []any) (last uint64, err error) {
	last = f.applied.Load()
	err = f.store.Write(func(tx *store.Tx) error {
		for i, l := range logs {
			if l.Index <= f.applied.Load() {
				results[i] = ApplyResult{Err: nil}
				continue
			}
			if l.Type == raft.LogCommand {
				res, err := f.applyOne(tx, l.Index, l.Data, true)
				if err != nil {
					return err // halts the whole batch: nothing is applied
				}
				results[i] = res
			}
			last = l.Index
		}
		return tx.SetAppliedIndex(last)
	})
	return last, err
}

// Stalled reports why the FSM waits (the disk is full), or nil.
func (f *FSM) Stalled() error {
	if p := f.stalled.Load(); p != nil {
		return fmt.Errorf("store cannot write, applying waits: %w", *p)
	}
	return nil
}

// Close stops a wait for disk space (ApplyBatch then halts): Raft's
// shutdown waits for the FSM.
func (f *FSM) Close() { f.closeOnce.Do(func() { close(f.closing) }) }

// handler applies one command's payload. Handlers must be deterministic.
type handler func(f *FSM, tx *store.Tx, index uint64, payload []byte) (ApplyResult, error)

// handlers is the dispatch table of the config plane's commands (filled in
// init: CmdBatch's handler dispatches through the table itself).
var handlers map[CommandType]handler

func init() { handlers = commandHandlers() }

func commandHandlers() map[CommandType]handler {
	return map[CommandType]handler{
		CmdApplySnapshot: (*FSM).applySnapshot,
		CmdApplyChanges:  (*FSM).applyChanges,
		CmdUpsertMember: jsonHandler(func(tx *store.Tx, m store.Member) error {
			return tx.UpsertMember(m)
		}),
		CmdRemoveMember: jsonHandler(func(tx *store.Tx, m RemoveMember) error {
			return tx.RemoveMember(m.ID)
		}),
		CmdSetMode: jsonHandler(func(tx *store.Tx, m ModeChange) error {
			return tx.SetMode(m.Mode, m.Since)
		}).changesConfig(),
		CmdPutBindings: jsonHandler(func(tx *store.Tx, m PutBindings) error {
			return tx.PutBindings(m.Bindings)
		}),
		CmdPruneBindings: jsonHandler(func(tx *store.Tx, m PruneBindings) error {
			return tx.PruneBindings(m.Before)
		}),
		CmdPutCallRecords: jsonHandler(func(tx *store.Tx, m PutCallRecords) error {
			return tx.PutCallRecords(m.Records)
		}),
		CmdMarkUploaded: jsonHandler(func(tx *store.Tx, m MarkUploaded) error {
			return tx.MarkCallRecordsUploaded(m.IDs, m.At)
		}),
		CmdPutELINs: jsonHandler(func(tx *store.Tx, m PutELINs) error {
			return tx.PutELINMappings(m.Mappings)
		}),
		CmdPutVoicemail: (*FSM).putVoicemail,
		CmdPutRotation: jsonHandler(func(tx *store.Tx, r store.Rotation) error {
			return tx.PutRotation(r)
		}).changesRotations(),
		CmdSetCloudCreds: jsonHandler(func(tx *store.Tx, c store.CloudCredentials) error {
			_, err := tx.SetCloudCredentials(c)
			return err
		}),
		CmdSetSDGOverride: (*FSM).setSDGOverride,
		CmdBatch:          (*FSM).applyBatch,
	}
}

// changesConfig marks a handler whose success changes what readers cache.
func (h handler) changesConfig() handler {
	return func(f *FSM, tx *store.Tx, index uint64, payload []byte) (ApplyResult, error) {
		res, err := h(f, tx, index, payload)
		if err == nil && res.Err == nil {
			f.configHit = true
		}
		return res, err
	}
}

// changesRotations marks a handler whose success may change the rotations.
func (h handler) changesRotations() handler {
	return func(f *FSM, tx *store.Tx, index uint64, payload []byte) (ApplyResult, error) {
		res, err := h(f, tx, index, payload)
		if err == nil && res.Err == nil {
			f.rotationHit = true
		}
		return res, err
	}
}

// jsonHandler is a handler for a small command: a JSON payload and one write,
// atomic by itself.
func jsonHandler[T any](apply func(tx *store.Tx, payload T) error) handler {
	return func(f *FSM, tx *store.Tx, _ uint64, payload []byte) (ApplyResult, error) {
		var v T
		if err := json.Unmarshal(payload, &v); err != nil {
			// Every node runs this decoder on the same bytes and agrees:
			// the command's answer, not a reason to halt.
			return ApplyResult{Revision: f.revision.Load(), Err: fmt.Errorf("%w: decode %T: %v", ErrMalformedCommand, v, err)}, nil
		}
		if err := apply(tx, v); refused(err) {
			return ApplyResult{Revision: f.revision.Load(), Err: err}, nil
		} else if err != nil {
			return ApplyResult{}, err
		}
		return ApplyResult{Revision: f.revision.Load()}, nil
	}
}

// refused reports whether a store error is about the command's content
// (every node refuses it alike, so it is the command's answer) rather than
// the store failing (which halts the FSM). Such a command must change
// nothing before the store refuses it.
func refused(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalidBinding) ||
		errors.Is(err, store.ErrInvalidCallRecord) || errors.Is(err, account.ErrBadChange) ||
		errors.Is(err, store.ErrInvalidCredentials) || errors.Is(err, store.ErrInvalidELIN) ||
		errors.Is(err, store.ErrInvalidRotation) || errors.Is(err, store.ErrInvalidOverride) ||
		errors.Is(err, store.ErrUnknownSDG) || errors.Is(err, store.ErrInvalidVoicemail)
}

// applyOne applies one entry. A command refused for its content (a stale
// revision, a conflict) is an ApplyResult.Err and changes nothing; an entry
// the node cannot understand, or a store failure, is the returned error,
// which halts the FSM. outer is false inside a CmdBatch, which cannot nest.
func (f *FSM) applyOne(tx *store.Tx, index uint64, data []byte, outer bool) (ApplyResult, error) {
	t, payload, err := splitCommand(data)
	h, known := handlers[t]
	switch {
	case err == nil && !known && t&IgnorableFlag == 0:
		err = fmt.Errorf("%w: type %d", ErrUnknownCommand, uint8(t))
	case err == nil && t == CmdBatch && !outer:
		err = fmt.Errorf("%w: a batch inside a batch", ErrUnknownCommand)
	}
	if err != nil || !known {
		if t&IgnorableFlag != 0 {
			f.log.Warn("skipping ignorable raft command", "raft_index", index, "command", uint8(t), "error", err)
			return ApplyResult{Revision: f.revision.Load()}, nil
		}
		return ApplyResult{}, fmt.Errorf("raft index %d: %w", index, err)
	}
	res, err := h(f, tx, index, payload)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("raft index %d: apply %s: %w", index, t, err)
	}
	return res, nil
}

// applyBatch applies the commands of a CmdBatch in order, each answered on
// its own.
func (f *FSM) applyBatch(tx *store.Tx, index uint64, payload []byte) (ApplyResult, error) {
	entries, err := decodeBatch(payload)
	if err != nil {
		return ApplyResult{}, err
	}
	out := ApplyResult{Batch: make([]ApplyResult, len(entries))}
	for i, e := range entries {
		if out.Batch[i], err = f.applyOne(tx, index, e, false); err != nil {
			return ApplyResult{}, err
		}
	}
	out.Revision = f.revision.Load()
	return out, nil
}

// applySnapshot replaces the configuration with a whole revision. The
// proposer validated the document; here only what depends on the order of
// the log is checked again: the revision must still be newer.
// ReplaceConfig is atomic by itself, so no savepoint is needed here.
func (f *FSM) applySnapshot(tx *store.Tx, _ uint64, doc []byte) (ApplyResult, error) {
	cur := f.revision.Load()
	snap, err := account.DecodeBytes(doc)
	if err != nil {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: %w", ErrMalformedCommand, err)}, nil
	}
	if snap.Revision <= cur {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: revision %d is not greater than the current revision %d", ErrStaleRevision, snap.Revision, cur)}, nil
	}
	touched, err := tx.OverriddenSDGsChangedBy(snap)
	if err != nil {
		return ApplyResult{}, err
	}
	if err := tx.ReplaceConfig(snap, doc); refused(err) {
		return ApplyResult{Revision: cur, Err: err}, nil
	} else if err != nil {
		return ApplyResult{}, err
	}
	if err := f.supersedeOverrides(tx, snap.Revision, touched); err != nil {
		return ApplyResult{}, err
	}
	f.revision.Store(snap.Revision)
	f.configHit = true
	return ApplyResult{Revision: snap.Revision}, nil
}

// applyChanges applies the changes of a CmdApplyChanges, object by object,
// when this node serves their base revision; else (a revision was applied
// in between) they are refused as stale and the proposer starts again from
// what is served. Like applySnapshot it trusts the proposer's validation of
// the result; the store still refuses what its tables cannot hold.
func (f *FSM) applyChanges(tx *store.Tx, _ uint64, payload []byte) (ApplyResult, error) {
	cur := f.revision.Load()
	var p ApplyChanges
	if err := json.Unmarshal(payload, &p); err != nil {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: decode %s: %v", ErrMalformedCommand, CmdApplyChanges, err)}, nil
	}
	if p.Base != cur || p.Revision <= cur {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: changes from revision %d to %d, but this node serves %d", ErrStaleRevision, p.Base, p.Revision, cur)}, nil
	}
	changes, err := protocol.DecodeOps(p.Ops)
	if err != nil {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: %s: %v", ErrMalformedCommand, CmdApplyChanges, err)}, nil
	}
	if err := tx.ApplyChanges(p.Revision, changes); refused(err) {
		return ApplyResult{Revision: cur, Err: err}, nil
	} else if err != nil {
		return ApplyResult{}, err
	}
	if err := f.supersedeOverrides(tx, p.Revision, store.SDGsIn(changes)); err != nil {
		return ApplyResult{}, err
	}
	f.revision.Store(p.Revision)
	f.configHit = true
	return ApplyResult{Revision: p.Revision}, nil
}

// setSDGOverride sets or clears an SDG's emergency override. The
// proposer checked it against the revision it names; here it must still
// be the revision in force (else ErrStaleRevision) and the store checks
// the route again against the state the command lands on.
func (f *FSM) setSDGOverride(tx *store.Tx, _ uint64, payload []byte) (ApplyResult, error) {
	cur := f.revision.Load()
	var o store.SDGOverride
	if err := json.Unmarshal(payload, &o); err != nil {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: decode %s: %v", ErrMalformedCommand, CmdSetSDGOverride, err)}, nil
	}
	if o.Revision != cur {
		return ApplyResult{Revision: cur, Err: fmt.Errorf("%w: override of sdg %s made at revision %d, but this node serves %d", ErrStaleRevision, o.SDGID, o.Revision, cur)}, nil
	}
	if err := tx.SetSDGOverride(o); refused(err) {
		return ApplyResult{Revision: cur, Err: err}, nil
	} else if err != nil {
		return ApplyResult{}, err
	}
	f.configHit = true
	return ApplyResult{Revision: cur}, nil
}

// supersedeOverrides drops the overrides a new config revision supersedes
// (store.Tx.SupersedeSDGOverrides), in the revision's transaction.
func (f *FSM) supersedeOverrides(tx *store.Tx, rev int64, touched map[string]bool) error {
	dropped, err := tx.SupersedeSDGOverrides(rev, touched)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		f.log.Info("sdg overrides superseded by the configuration", "revision", rev, "sdgs", dropped)
	}
	return nil
}

func (f *FSM) halt(err error) {
	err = fmt.Errorf("%w: %w", ErrHalted, err)
	if f.halted.CompareAndSwap(nil, &err) {
		f.log.Error("state machine halted: this node applies nothing more until it is upgraded or repaired", "error", err)
	}
}

// Snapshot captures nothing up front: Persist takes a consistent copy of the
// database with SQLite's backup API while applies go on. The copy holds its
// own applied index, which may be past the snapshot's; entries up to it are
// skipped after a restore, so the result is the same.
// A halted FSM refuses: raft counts the entries it refused as applied, and a
// snapshot would claim them.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Halted(); err != nil {
		return nil, err
	}
	return &fsmSnapshot{store: f.store}, nil
}

// Restore replaces the store's contents with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	idx, err := f.store.AppliedIndex()
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.applied.Store(idx)
	return f.loadRevision()
}

type fsmSnapshot struct{ store *store.Store }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.store.Backup(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// restoreIfBehind brings the store up to the newest Raft snapshot when the
// database is older than it (lost or replaced while the node was down), since
// raft will only replay entries after that snapshot.
func restoreIfBehind(snaps raft.SnapshotStore, f *FSM, log *slog.Logger) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(metas) == 0 || metas[0].Index <= f.AppliedIndex() {
		return nil
	}
	meta, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("open raft snapshot %s: %w", metas[0].ID, err)
	}
	log.Warn("store is behind the newest raft snapshot; restoring it", "applied_index", f.AppliedIndex(), "snapshot_index", meta.Index)
	return f.Restore(rc)
}
