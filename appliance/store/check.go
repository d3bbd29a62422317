package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
)

// ErrNoStore marks a database path where there is no database yet: nothing
// to migrate; a node creates the database at its first start.
var ErrNoStore = errors.New("no store database")

// copyAttempts bounds how often CheckMigration copies a database that
// changed while it was being copied without a WAL (a node starting).
const copyAttempts = 3

// CheckMigration reports whether Open would succeed on the database at path
// with this binary's migrations, without changing that database: it copies
// it into a new directory under tmpDir ("" for the system's temporary
// directory), checks the copy's integrity and opens the copy with Open,
// which migrates it, then removes the copy. It returns the schema versions
// before and after. The database may be in use by a running node meanwhile:
// the copy is one consistent snapshot. A missing file is ErrNoStore; a
// database written by a newer binary is ErrSchemaTooNew.
func CheckMigration(ctx context.Context, path, tmpDir string) (from, to int, err error) {
	if err := statStore(path); err != nil {
		return 0, 0, err
	}
	dir, err := os.MkdirTemp(tmpDir, "outpost-migrate-check-")
	if err != nil {
		return 0, 0, fmt.Errorf("create scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	cp := filepath.Join(dir, filepath.Base(path))
	if err := copyStore(ctx, path, cp); err != nil {
		return 0, 0, fmt.Errorf("copy the store: %w", err)
	}
	if from, err = checkCopy(ctx, cp); err != nil {
		return 0, 0, err
	}
	s, err := Open(cp, nil)
	if err != nil {
		return from, 0, fmt.Errorf("open a copy of the store: %w", err)
	}
	if err := s.Close(); err != nil {
		return from, 0, fmt.Errorf("close the copy of the store: %w", err)
	}
	return from, SchemaVersion(), nil
}

// MigrateFile brings the database at path up to this binary's schema in
// place, as Open does, and returns the versions before and after. No node
// may have the database open meanwhile. A missing file is ErrNoStore: it
// creates nothing.
func MigrateFile(ctx context.Context, path string) (from, to int, err error) {
	if err := statStore(path); err != nil {
		return 0, 0, err
	}
	db, err := openWriter(path, true)
	if err != nil {
		return 0, 0, err
	}
	from, _, err = schemaVersion(ctx, db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	s, err := Open(path, nil)
	if err != nil {
		return from, 0, err
	}
	if err := s.Close(); err != nil {
		return from, 0, err
	}
	return from, SchemaVersion(), nil
}

// statStore checks that path is a file that can be a SQLite database: an
// empty file (a fresh database) or one starting with SQLite's header.
func statStore(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s", ErrNoStore, path)
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return errors.New("the store is not a regular file")
	case fi.Size() == 0:
		return nil
	}
	if err := checkHeader(path); err != nil {
		return errors.New("the store is not a SQLite database: it does not start with SQLite's header")
	}
	return nil
}

// copyStore copies the database at src to dst, a new file, as one
// consistent snapshot. With a WAL beside src a node has the database open
// (or stopped without closing it): the copy is made with SQLite's online
// backup API from a read-only connection, which reuses the node's WAL
// index. Without one the main file is the whole database, and a read-only
// connection would leave a WAL and its index behind, owned by whoever ran
// the check: the file is copied byte for byte instead, and copied again if
// it changed meanwhile.
func copyStore(ctx context.Context, src, dst string) error {
	for range copyAttempts {
		if _, err := os.Stat(src + "-wal"); err == nil {
			return onlineCopy(ctx, src, dst)
		}
		before, err := os.Stat(src)
		if err != nil {
			return err
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
		after, err := os.Stat(src)
		if err != nil {
			return err
		}
		_, walErr := os.Stat(src + "-wal")
		if errors.Is(walErr, fs.ErrNotExist) && after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) {
			return nil
		}
	}
	return errors.New("the database kept changing while it was copied; try again")
}

// onlineCopy copies src to dst with the backup API from a read-only
// connection, which sees only committed transactions.
func onlineCopy(ctx context.Context, src, dst string) error {
	params := url.Values{}
	params.Set("mode", "ro")
	params.Set("_query_only", "true")
	params.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	sdb, err := sql.Open("sqlite3", fileDSN(src, params))
	if err != nil {
		return err
	}
	if sdb, err = pool(sdb, 1); err != nil { // pool closes it on failure
		return err
	}
	defer sdb.Close()
	ddb, err := openWriter(dst, false)
	if err != nil {
		return fmt.Errorf("open copy: %w", err)
	}
	err = copyDB(ctx, ddb, sdb)
	if cerr := ddb.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// copyFile copies src to dst, a file it creates (mode 0600).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkCopy checks a copied database before Open migrates it: intact, and
// not newer than this binary. It returns its schema version.
func checkCopy(ctx context.Context, path string) (int, error) {
	db, err := openWriter(path, false)
	if err != nil {
		return 0, fmt.Errorf("store is damaged: %w", err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&result); err != nil {
		return 0, fmt.Errorf("store is damaged: %w", err)
	}
	if result != "ok" {
		return 0, fmt.Errorf("store is damaged: %s", result)
	}
	version, _, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("store is damaged: %w", err)
	}
	if version > SchemaVersion() {
		return version, fmt.Errorf("%w: the store is at version %d, this binary knows up to %d; "+
			"install a version of outpost that knows it, or restore a backup made by this version",
			ErrSchemaTooNew, version, SchemaVersion())
	}
	return version, nil
}
