package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// ErrNotFound is returned (wrapped) by lookups that find nothing.
var ErrNotFound = errors.New("not found")

// busyTimeoutMS bounds how long a connection waits for a lock held by another
// connection (a checkpoint, a restore) before failing with SQLITE_BUSY.
const busyTimeoutMS = 5000

// readConns is the size of the read-only connection pool.
const readConns = 4

// writerCacheKiB is the writer connection's page cache. SQLite's default
// (2 MiB) is smaller than a 10,000-user account with its bindings, and a
// group commit of bindings touches pages all over local_bindings and its
// indexes: with the default it spends more time re-reading pages than
// writing them.
const writerCacheKiB = 64 << 10

// Store is one node's database: the config plane and the presence plane's
// bindings.
type Store struct {
	path   string
	log    *slog.Logger
	wdb    *sql.DB // the only writer: one connection
	reader *Reader

	mu     sync.Mutex           // serialises every write (Write, PutLocalBindings...) and Restore on wdb
	wstmts map[string]*sql.Stmt // prepared on wdb, used under mu
	closed bool
}

// Open opens (creating it and its directory if needed) the database at path,
// brings its schema up to date and returns the store. It refuses a database
// whose schema is newer than this binary knows (ErrSchemaTooNew).
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store")
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

	wdb, err := openWriter(abs, true)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	ctx := context.Background()
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if mode != "wal" {
		wdb.Close()
		return nil, fmt.Errorf("open store %s: journal mode is %q, want wal (is the file system local?)", abs, mode)
	}
	from, to, err := migrate(ctx, wdb)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if from != to {
		log.Info("schema migrated", "path", abs, "from_version", from, "to_version", to)
	}

	rdb, err := openReaderDB(abs)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	reader, err := newReader(ctx, rdb)
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	wstmts, err := prepareWrites(ctx, wdb)
	if err != nil {
		reader.close()
		wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	log.Debug("store opened", "path", abs, "schema_version", to)
	return &Store{path: abs, log: log, wdb: wdb, reader: reader, wstmts: wstmts}, nil
}

// fileDSN builds a go-sqlite3 URI for path with the given parameters.
func fileDSN(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

// openWriter opens a single-connection handle whose transactions begin with
// BEGIN IMMEDIATE. wal puts the database in WAL mode with synchronous=NORMAL;
// it is false for scratch copies (backup and restore temp files).
func openWriter(path string, wal bool) (*sql.DB, error) {
	params := url.Values{}
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	params.Set("_foreign_keys", "on")
	params.Set("_txlock", "immediate")
	params.Set("_cache_size", strconv.Itoa(-writerCacheKiB))
	if wal {
		params.Set("_journal_mode", "WAL")
		params.Set("_synchronous", "NORMAL")
	}
	db, err := sql.Open("sqlite3", fileDSN(path, params))
	if err != nil {
		return nil, err
	}
	return pool(db, 1)
}

// openReaderDB opens the read-only pool: mode=ro and query_only, so nothing
// issued through it can change the database.
func openReaderDB(path string) (*sql.DB, error) {
	params := url.Values{}
	params.Set("mode", "ro")
	params.Set("_query_only", "true")
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	db, err := sql.Open("sqlite3", fileDSN(path, params))
	if err != nil {
		return nil, err
	}
	return pool(db, readConns)
}

// pool keeps exactly conns connections open for good and checks one works.
func pool(db *sql.DB, conns int) (*sql.DB, error) {
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

// Close closes the read pool, then the writer (which checkpoints the WAL).
// Readers obtained from the store fail afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, st := range s.wstmts {
		_ = st.Close()
	}
	rerr := s.reader.close()
	werr := s.wdb.Close()
	if err := errors.Join(rerr, werr); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path is the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Reader is the store's read-only query handle, safe for concurrent use.
func (s *Store) Reader() *Reader { return s.reader }

// AppliedIndex is the last Raft index recorded with Tx.SetAppliedIndex, 0
// when none.
func (s *Store) AppliedIndex() (uint64, error) {
	n, err := metaInt(context.Background(), s.reader.db, metaAppliedIndex)
	if err != nil {
		return 0, fmt.Errorf("applied index: %w", err)
	}
	return uint64(n), nil
}

// SizeBytes is the database's size on disk: page_count*page_size plus the
// WAL file.
func (s *Store) SizeBytes() (int64, error) {
	ctx := context.Background()
	var pages, pageSize int64
	if err := s.reader.db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	if err := s.reader.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return 0, fmt.Errorf("database size: %w", err)
	}
	size := pages * pageSize
	fi, err := os.Stat(s.path + "-wal")
	switch {
	case err == nil:
		size += fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("database size: %w", err)
	}
	return size, nil
}
