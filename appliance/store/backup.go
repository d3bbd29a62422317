package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mattn/go-sqlite3"
)

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// Backup writes a consistent copy of the whole database to w. It copies with
// SQLite's online backup API from a read connection (so writes go on
// meanwhile) into a temporary file beside the database, streams that file to
// w and removes it.
func (s *Store) Backup(w io.Writer) error {
	ctx := context.Background()
	tmp, err := s.tempPath("backup")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer removeDBFiles(tmp)

	dst, err := openWriter(tmp, false)
	if err != nil {
		return fmt.Errorf("backup: open temp copy: %w", err)
	}
	err = copyDB(ctx, dst, s.reader.db)
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}

	f, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	return nil
}

// Restore replaces the database's contents with a file Backup produced. The
// file is checked first (a SQLite database, intact, carrying our
// schema_migrations at a version this binary knows; older schemas are
// migrated) and then copied into the live database with the backup API, so
// open Readers stay valid and see the restored state. On any error the live
// database is unchanged.
//
// Everything is replaced except the local-first tables, local_bindings,
// local_call_records, local_elin_mappings and local_voicemail: this node's
// own registrations, calls, ELINs held and voicemail,
// written by this node alone, so the live rows are put into the backup copy
// before it is copied in (under the write lock, so no PutLocalBindings or
// PutLocalCallRecords slips between), and the backup's own local rows,
// another node's when the backup is a Raft snapshot from elsewhere, are
// dropped. Readers see the swap as one step.
func (s *Store) Restore(r io.Reader) error {
	ctx := context.Background()
	tmp, err := s.tempPath("restore")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer removeDBFiles(tmp)

	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: read backup: %w", err)
	}
	if err := checkHeader(tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	src, err := openWriter(tmp, false)
	if err != nil {
		return fmt.Errorf("restore: open backup: %w", err)
	}
	defer src.Close()
	from, to, err := checkBackup(ctx, src, tmp)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("restore: store is closed")
	}
	kept, err := keepLocal(ctx, src, s.path, "local_bindings", bindingColumns)
	if err != nil {
		return fmt.Errorf("restore: keep this node's local bindings: %w", err)
	}
	keptCalls, err := keepLocal(ctx, src, s.path, "local_call_records", callRecordColumns)
	if err != nil {
		return fmt.Errorf("restore: keep this node's local call records: %w", err)
	}
	keptELINs, err := keepLocal(ctx, src, s.path, "local_elin_mappings", elinColumns)
	if err != nil {
		return fmt.Errorf("restore: keep this node's local ELIN mappings: %w", err)
	}
	keptVM, err := keepLocal(ctx, src, s.path, "local_voicemail", voicemailColumns)
	if err != nil {
		return fmt.Errorf("restore: keep this node's local voicemail: %w", err)
	}
	if err := copyDB(ctx, s.wdb, src); err != nil {
		return fmt.Errorf("restore: copy into live database: %w", err)
	}
	s.log.Info("database restored from backup", "path", s.path, "backup_schema_version", from, "schema_version", to,
		"local_bindings_kept", kept, "local_call_records_kept", keptCalls, "local_elin_mappings_kept", keptELINs, "local_voicemail_kept", keptVM)
	return nil
}

// checkHeader rejects a file that cannot be a SQLite database before SQLite
// opens it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteHeader) {
		return errors.New("backup is not a SQLite database")
	}
	return nil
}

// checkBackup verifies an opened backup file: intact, complete, with an
// outpost schema this binary knows. It migrates an older schema in place and
// returns the versions before and after.
func checkBackup(ctx context.Context, db *sql.DB, path string) (from, to int, err error) {
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&result); err != nil {
		return 0, 0, fmt.Errorf("backup is damaged: %w", err)
	}
	if result != "ok" {
		return 0, 0, fmt.Errorf("backup is damaged: %s", result)
	}
	var pages, pageSize int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, 0, fmt.Errorf("backup is damaged: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return 0, 0, fmt.Errorf("backup is damaged: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	if fi.Size() < pages*pageSize {
		return 0, 0, fmt.Errorf("backup is truncated: %d bytes, want %d", fi.Size(), pages*pageSize)
	}
	version, ok, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, 0, fmt.Errorf("backup is damaged: %w", err)
	}
	if !ok || version == 0 {
		return 0, 0, errors.New("backup is a SQLite database but not an outpost store (no schema_migrations)")
	}
	if version > SchemaVersion() {
		return 0, 0, fmt.Errorf("%w: backup is at version %d, this binary knows up to %d",
			ErrSchemaTooNew, version, SchemaVersion())
	}
	from, to, err = migrate(ctx, db)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate backup: %w", err)
	}
	return from, to, nil
}

// copyDB copies src's main database over dst's with the backup API, in one
// step so the copy is a single consistent snapshot of src. It runs on one
// connection of each pool.
func copyDB(ctx context.Context, dst, src *sql.DB) error {
	dconn, err := dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer dconn.Close()
	sconn, err := src.Conn(ctx)
	if err != nil {
		return err
	}
	defer sconn.Close()
	return dconn.Raw(func(d any) error {
		return sconn.Raw(func(s any) error {
			dc, ok1 := d.(*sqlite3.SQLiteConn)
			sc, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("backup: connection is not a go-sqlite3 connection")
			}
			b, err := dc.Backup("main", sc, "main")
			if err != nil {
				return fmt.Errorf("start backup: %w", err)
			}
			done, err := b.Step(-1)
			if err != nil {
				b.Finish()
				return fmt.Errorf("copy pages: %w", err)
			}
			if err := b.Finish(); err != nil {
				return fmt.Errorf("finish backup: %w", err)
			}
			if !done {
				return errors.New("copy pages: database busy, copy incomplete")
			}
			return nil
		})
	})
}

// tempPath creates an empty file beside the database for a backup or restore
// copy, so it is on the same file system, and returns its path.
func (s *Store) tempPath(kind string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+"."+kind+"-*.tmp")
	if err != nil {
		return "", fmt.Errorf("create temp file: %w", err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// removeDBFiles removes a scratch database and any journal SQLite left.
func removeDBFiles(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}
