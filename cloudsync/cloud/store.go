package cloud

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Errors of the store, checked with errors.Is.
var (
	// ErrNotFound: no such appliance, object or record.
	ErrNotFound = errors.New("not found")
	// ErrGone: a changes request older than the history kept.
	ErrGone = errors.New("revision older than the history kept")
	// ErrAhead: a changes request past the current revision.
	ErrAhead = errors.New("revision ahead of the cloud")
	// ErrPairingRefused: a pairing code that is unknown, used or expired.
	ErrPairingRefused = errors.New("pairing code unknown, used or expired")
	// ErrUnauthorized: an appliance name and secret that do not match.
	ErrUnauthorized = errors.New("unknown appliance or wrong secret")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// DefaultHistory is how many revisions' ops the store keeps for changes
// requests when Options.History is zero.
const DefaultHistory = 10_000

// DefaultKeyRetention is how long the store keeps a journal batch's
// idempotency key when Options.KeyRetention is zero: a batch sent again
// within it gets its first answer again.
const DefaultKeyRetention = 24 * time.Hour

// minDeltaBudget is the least a changes answer may carry before the store
// prefers to send the appliance to the full snapshot (ErrGone): a delta
// bigger than both this and the snapshot itself is never worth it.
const minDeltaBudget = 8 << 20

const busyTimeoutMS = 5000

// Options configure a store.
type Options struct {
	Log *slog.Logger
	// History is how many revisions' ops are kept (DefaultHistory when 0).
	History int
	// KeyRetention is how long journal idempotency keys are kept
	// (DefaultKeyRetention when 0); PruneIdempotencyKeys forgets older ones.
	KeyRetention time.Duration
}

// Store is outpost-cloud's database: the snapshot and its revisions, the
// pairing codes, the appliances and their journals. It is safe for
// concurrent use. It is clock-free: every method that records a time takes
// it.
type Store struct {
	path    string
	log     *slog.Logger
	wdb     *sql.DB // the only writer: one connection, BEGIN IMMEDIATE
	rdb     *sql.DB // read-only pool
	history int
	// keyRetention is Options.KeyRetention, defaulted.
	keyRetention time.Duration
	// deltaBudget is minDeltaBudget; tests lower it.
	deltaBudget int

	// wmu serialises revisions (and Close): an update reads the current
	// document, builds the next and commits it under wmu, while mu, held
	// only briefly, guards the fields below for readers and watchers.
	wmu     sync.Mutex
	mu      sync.Mutex
	rev     int64
	doc     []byte        // the current document, never modified in place
	changed chan struct{} // closed, and replaced, when a revision commits
	closed  bool
}

// Open opens (creating it if needed) the database at path and brings its
// schema up to date.
func Open(path string, o Options) (*Store, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "cloud_store")
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open store: create directory: %w", err)
	}
	s := &Store{path: abs, log: log, history: o.History, deltaBudget: minDeltaBudget, changed: make(chan struct{})}
	if s.history <= 0 {
		s.history = DefaultHistory
	}
	if s.keyRetention = o.KeyRetention; s.keyRetention <= 0 {
		s.keyRetention = DefaultKeyRetention
	}
	if err := s.open(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return s, nil
}

func (s *Store) open() error {
	ctx := context.Background()
	params := url.Values{}
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	params.Set("_txlock", "immediate")
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "NORMAL")
	wdb, err := openDB(s.path, params, 1)
	if err != nil {
		return err
	}
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		wdb.Close()
		return err
	}
	if mode != "wal" {
		wdb.Close()
		return fmt.Errorf("journal mode is %q, want wal (is the file system local?)", mode)
	}
	from, to, err := migrate(ctx, wdb)
	if err != nil {
		wdb.Close()
		return err
	}
	if from != to {
		s.log.Info("schema migrated", "path", s.path, "from_version", from, "to_version", to)
	}
	params = url.Values{}
	params.Set("mode", "ro")
	params.Set("_query_only", "true")
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	rdb, err := openDB(s.path, params, 4)
	if err != nil {
		wdb.Close()
		return err
	}
	var doc string
	err = rdb.QueryRowContext(ctx, `SELECT revision, document FROM snapshot WHERE id = 1`).Scan(&s.rev, &doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		rdb.Close()
		wdb.Close()
		return fmt.Errorf("read snapshot: %w", err)
	default:
		s.doc = []byte(doc)
	}
	s.wdb, s.rdb = wdb, rdb
	return nil
}

func openDB(path string, params url.Values, conns int) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database. Watchers are woken.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.changed)
	if err := errors.Join(s.rdb.Close(), s.wdb.Close()); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path is the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Current is the current revision and its document; 0 and nil before the
// first revision. The document must not be modified.
func (s *Store) Current() (int64, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.doc
}

// Watch is the current revision and a channel closed when a later one
// commits (or the store closes). Taking both at once loses no wake-up.
func (s *Store) Watch() (int64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.changed
}

// UpdateFunc makes the next document: it gets the next revision number and
// the current document (nil when there is none) and returns the new
// document, whose "revision" must be next. Returning an error changes
// nothing.
type UpdateFunc func(next int64, cur []byte) ([]byte, error)

// Update commits the next revision, made by fn, with the ops that turn the
// current document into it (protocol.Diff). Revisions are serialised: fn
// sees the latest document and no other revision commits meanwhile. An
// error from fn is returned unwrapped.
func (s *Store) Update(ctx context.Context, now time.Time, fn UpdateFunc) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rev, cur, err := s.writable()
	if err != nil {
		return 0, err
	}
	next := rev + 1
	doc, err := fn(next, cur)
	if err != nil {
		return 0, err
	}
	if err := s.commit(ctx, now, next, cur, doc); err != nil {
		return 0, err
	}
	return next, nil
}

// Seed commits doc as revision rev (at least 1) when the store holds no
// revision yet, and reports whether it did.
func (s *Store) Seed(ctx context.Context, now time.Time, rev int64, doc []byte) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur, _, err := s.writable()
	if err != nil {
		return false, err
	}
	if cur != 0 {
		return false, nil
	}
	if rev < 1 {
		return false, fmt.Errorf("seed: revision %d, want at least 1", rev)
	}
	if err := s.commit(ctx, now, rev, nil, doc); err != nil {
		return false, err
	}
	return true, nil
}

// writable is the current revision and document, or ErrClosed. s.wmu is
// held.
func (s *Store) writable() (int64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, ErrClosed
	}
	return s.rev, s.doc, nil
}

// commit writes revision rev (doc, and its ops from old, the current
// document) and wakes the watchers. s.wmu is held.
func (s *Store) commit(ctx context.Context, now time.Time, rev int64, old, doc []byte) error {
	ops, err := diffOps(old, doc)
	if err != nil {
		return fmt.Errorf("revision %d: %w", rev, err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revision %d: begin: %w", rev, err)
	}
	defer tx.Rollback()
	at := now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO revisions (revision, created_ms, ops) VALUES (?, ?, ?)`,
		rev, at, string(ops)); err != nil {
		return fmt.Errorf("revision %d: insert: %w", rev, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO snapshot (id, revision, document, updated_ms) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, document = excluded.document, updated_ms = excluded.updated_ms`,
		rev, string(doc), at); err != nil {
		return fmt.Errorf("revision %d: write snapshot: %w", rev, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM revisions WHERE revision <= ?`, rev-int64(s.history)); err != nil {
		return fmt.Errorf("revision %d: prune history: %w", rev, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revision %d: commit: %w", rev, err)
	}
	s.mu.Lock()
	s.rev, s.doc = rev, doc
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("revision committed", "revision", rev, "ops_bytes", len(ops), "document_bytes", len(doc))
	return nil
}
