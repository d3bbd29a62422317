package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/outpost-voice/outpost/appliance/store"
)

// migrate checks or applies the store's schema migrations (docs/upgrade.md):
//
//	outpost migrate --check [--config F] [--temp-dir DIR]
//	outpost migrate [--config F]
//
// --check works on a copy of the store and changes nothing, so it runs
// beside a live node: the package's postinst runs the new binary's check
// before it switches /usr/bin/outpost to it. Without --check the store is
// migrated in place, as `outpost serve` would at its start, holding the
// data directory's lock (store.LockDir): it is refused while a node runs
// on it, and no node can start on it meanwhile.
func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("migrate")
	check := f.Bool("check", false, "check that this binary can open and migrate the store, on a copy; change nothing")
	tempDir := f.String("temp-dir", "", "where --check puts its copy of the store (default: the system's temporary directory)")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: migrate takes no arguments, got %q", errUsage, pos)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	path := cfg.DBPath()
	if *check {
		return checkMigration(ctx, path, *tempDir, stdout)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "no store at %s: nothing to migrate\n", path)
		return nil
	}
	unlock, err := store.LockDir(cfg.DataDir)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("a node is running on %s: stop it first (systemctl stop outpost), "+
			"or check without changing anything with `outpost migrate --check`", cfg.DataDir)
	} else if err != nil {
		return err
	}
	defer unlock()
	from, to, err := store.MigrateFile(ctx, path)
	return reportMigration(stdout, path, "migrate", from, to, err,
		"up to date", fmt.Sprintf("migrated from schema version %d to %d", from, to))
}

// checkMigration prints what opening the store would do and fails when
// this binary could not open it.
func checkMigration(ctx context.Context, path, tempDir string, stdout io.Writer) error {
	from, to, err := store.CheckMigration(ctx, path, tempDir)
	return reportMigration(stdout, path, "check", from, to, err,
		"up to date: ok", fmt.Sprintf("schema version %d, this binary migrates it to %d: ok", from, to))
}

// reportMigration prints the outcome of a migration or its check (what,
// in the error): upToDate when there was nothing to do, migrated when
// there was.
func reportMigration(stdout io.Writer, path, what string, from, to int, err error, upToDate, migrated string) error {
	keepOwner(path)
	switch {
	case errors.Is(err, store.ErrNoStore):
		fmt.Fprintf(stdout, "no store at %s: nothing to migrate\n", path)
		return nil
	case err != nil:
		return fmt.Errorf("%s %s: %w", what, path, err)
	case from == to:
		fmt.Fprintf(stdout, "store %s: schema version %d, %s\n", path, to, upToDate)
	default:
		fmt.Fprintf(stdout, "store %s: %s\n", path, migrated)
	}
	return nil
}

// keepOwner gives the SQLite files beside the store (its WAL and WAL
// index, left behind only when a connection did not close cleanly) the
// store's owner, so a check or migration run as root cannot lock the
// node's own user out of them. It does nothing unless run as root.
func keepOwner(path string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	owner, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		side, err := os.Lstat(path + suffix)
		if err != nil || !side.Mode().IsRegular() {
			continue
		}
		if st, ok := side.Sys().(*syscall.Stat_t); ok && (st.Uid != owner.Uid || st.Gid != owner.Gid) {
			_ = os.Lchown(path+suffix, int(owner.Uid), int(owner.Gid))
		}
	}
}
