package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Keys of the meta table.
const (
	metaRevision     = "revision"
	metaAppliedIndex = "applied_index"
	metaMode         = "mode"
	metaModeSince    = "mode_since"
)

// The node's modes (shared/DESIGN.md, "Modes").
const (
	ModeNormal        = "normal"
	ModeSurvivability = "survivability"
	ModeRecovering    = "recovering"
)

// Member is one cluster node as the FSM last recorded it.
type Member struct {
	ID        string    `json:"id"`
	RaftAddr  string    `json:"raft_addr"`
	HTTPAddr  string    `json:"http_addr"`
	SIPAddr   string    `json:"sip_addr"`
	Site      string    `json:"site"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tx is the FSM's write transaction. It is valid only inside the function
// passed to Store.Write and must not be used from several goroutines.
type Tx struct {
	ctx   context.Context
	tx    *sql.Tx
	store *Store
	sp    int // savepoints opened so far, for unique names
}

// Small, frequent writes run through statements prepared once at Open on
// the writer connection (preparing costs more than running them). They are
// prepared up front because the writer has one connection: inside a
// transaction there is none left to prepare on.
const (
	upsertMemberSQL = `INSERT INTO members (id, raft_addr, http_addr, sip_addr, site, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET raft_addr = excluded.raft_addr, http_addr = excluded.http_addr,
			sip_addr = excluded.sip_addr, site = excluded.site, updated_at = excluded.updated_at`
	removeMemberSQL = `DELETE FROM members WHERE id = ?`
	setMetaSQL      = `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
)

var preparedWrites = append([]string{upsertMemberSQL, removeMemberSQL, setMetaSQL}, bindingWrites...)

func prepareWrites(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(preparedWrites))
	for _, q := range preparedWrites {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, p := range out {
				p.Close()
			}
			return nil, fmt.Errorf("prepare write statement: %w", err)
		}
		out[q] = st
	}
	return out, nil
}

// exec runs one of the prepared writes in the transaction.
func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	st, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(tx.ctx, args...)
}

// stmt is one of the prepared writes bound to the transaction, for a caller
// that runs it many times (a batch of bindings).
func (tx *Tx) stmt(query string) (*sql.Stmt, error) {
	st, ok := tx.store.wstmts[query]
	if !ok {
		return nil, fmt.Errorf("statement not prepared: %.40s", query)
	}
	return tx.tx.StmtContext(tx.ctx, st), nil
}

// Write runs fn in one write transaction (BEGIN IMMEDIATE): it commits when
// fn returns nil and rolls back, returning fn's error unchanged, otherwise.
// A panic in fn rolls back and is re-raised. Writes are serialised; fn must
// not call Write, Restore, PutLocalBindings or PruneLocalBindings: they
// would wait for it forever.
func (s *Store) Write(fn func(tx *Tx) error) error {
	return s.write("write", fn)
}

// write is Write for the store's own writers too (the local-first tables):
// every transaction on the writer connection runs here, under mu. what
// prefixes the store's own errors.
func (s *Store) write(what string, fn func(tx *Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: store is closed", what)
	}
	ctx := context.Background()
	sqlTx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	committed := false
	defer func() {
		if !committed {
			if rerr := sqlTx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				s.log.Error("rollback failed", "err", rerr)
			}
		}
	}()
	if err := fn(&Tx{ctx: ctx, tx: sqlTx, store: s}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	committed = true
	return nil
}

// Savepoint runs fn as a nested atomic unit: if fn returns an error (or
// panics) everything it changed is undone and the enclosing transaction
// carries on as before. The FSM runs each Raft command of a batch in one.
func (tx *Tx) Savepoint(fn func() error) (err error) {
	tx.sp++
	name := fmt.Sprintf("sp_%d", tx.sp)
	if _, err := tx.tx.ExecContext(tx.ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// fn failed or panicked: undo its changes, then drop the savepoint.
		_, rerr := tx.tx.ExecContext(tx.ctx, "ROLLBACK TO "+name)
		if rerr == nil {
			_, rerr = tx.tx.ExecContext(tx.ctx, "RELEASE "+name)
		}
		if rerr != nil && err != nil {
			err = errors.Join(err, fmt.Errorf("roll back savepoint: %w", rerr))
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	if _, err := tx.tx.ExecContext(tx.ctx, "RELEASE "+name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	done = true
	return nil
}

// SetAppliedIndex records the last Raft index applied.
func (tx *Tx) SetAppliedIndex(i uint64) error {
	if i > math.MaxInt64 {
		return fmt.Errorf("set applied index: %d does not fit in a signed 64-bit integer", i)
	}
	if err := tx.setMeta(metaAppliedIndex, int64(i)); err != nil {
		return fmt.Errorf("set applied index: %w", err)
	}
	return nil
}

// Revision is the current config revision, 0 when none has been applied.
func (tx *Tx) Revision() (int64, error) {
	n, err := metaInt(tx.ctx, tx.tx, metaRevision)
	if err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	return n, nil
}

// UpsertMember records a cluster member, replacing any with the same ID.
func (tx *Tx) UpsertMember(m Member) error {
	if m.ID == "" {
		return errors.New("upsert member: empty id")
	}
	_, err := tx.exec(upsertMemberSQL, m.ID, m.RaftAddr, m.HTTPAddr, m.SIPAddr, m.Site, formatTime(m.UpdatedAt))
	if err != nil {
		return fmt.Errorf("upsert member %s: %w", m.ID, err)
	}
	return nil
}

// RemoveMember forgets a cluster member; removing an unknown one is not an
// error.
func (tx *Tx) RemoveMember(id string) error {
	if _, err := tx.exec(removeMemberSQL, id); err != nil {
		return fmt.Errorf("remove member %s: %w", id, err)
	}
	return nil
}

// SetMode records the node mode ("normal", "survivability" or "recovering")
// and when it was entered.
func (tx *Tx) SetMode(mode string, since time.Time) error {
	switch mode {
	case ModeNormal, ModeSurvivability, ModeRecovering:
	default:
		return fmt.Errorf("set mode: unknown mode %q (want %s, %s or %s)", mode, ModeNormal, ModeSurvivability, ModeRecovering)
	}
	if err := tx.setMeta(metaMode, mode); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	if err := tx.setMeta(metaModeSince, formatTime(since)); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	return nil
}

func (tx *Tx) setMeta(key string, value any) error {
	_, err := tx.exec(setMetaSQL, key, value)
	return err
}

// querier is what both *sql.DB and *sql.Tx offer for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// metaInt reads an integer meta value, 0 when absent.
func metaInt(ctx context.Context, q querier, key string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// formatTime is how times are stored: RFC 3339 in UTC, nanosecond precision.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}
