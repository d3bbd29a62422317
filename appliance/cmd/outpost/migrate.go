package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/config"
)

// livezTimeout bounds how long `outpost migrate` waits for a running node
// to answer before it concludes there is none.
const livezTimeout = 2 * time.Second

// migrate checks or applies the store's schema migrations (docs/upgrade.md):
//
//	outpost migrate --check [--config F] [--temp-dir DIR]
//	outpost migrate [--config F] [--force]
//
// --check works on a copy of the store and changes nothing, so it runs
// beside a live node: the package's postinst runs the new binary's check
// before it switches /usr/bin/outpost to it. Without --check the store is
// migrated in place, as `outpost serve` would at its start; no node may
// have it open meanwhile.
func migrate(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("migrate")
	check := f.Bool("check", false, "check that this binary can open and migrate the store, on a copy; change nothing")
	tempDir := f.String("temp-dir", "", "where --check puts its copy of the store (default: the system's temporary directory)")
	force := f.Bool("force", false, "migrate in place even though a node answers on http.listen")
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
	if !*force {
		if err := refuseRunningNode(ctx, cfg); err != nil {
			return err
		}
	}
	from, to, err := store.MigrateFile(ctx, path)
	keepOwner(path)
	switch {
	case errors.Is(err, store.ErrNoStore):
		fmt.Fprintf(stdout, "no store at %s: nothing to migrate\n", path)
		return nil
	case err != nil:
		return fmt.Errorf("migrate %s: %w", path, err)
	case from == to:
		fmt.Fprintf(stdout, "store %s: schema version %d, up to date\n", path, to)
	default:
		fmt.Fprintf(stdout, "store %s: migrated from schema version %d to %d\n", path, from, to)
	}
	return nil
}

// checkMigration prints what opening the store would do and fails when
// this binary could not open it.
func checkMigration(ctx context.Context, path, tempDir string, stdout io.Writer) error {
	from, to, err := store.CheckMigration(ctx, path, tempDir)
	keepOwner(path)
	switch {
	case errors.Is(err, store.ErrNoStore):
		fmt.Fprintf(stdout, "no store at %s: nothing to migrate\n", path)
		return nil
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	case from == to:
		fmt.Fprintf(stdout, "store %s: schema version %d, up to date: ok\n", path, to)
	default:
		fmt.Fprintf(stdout, "store %s: schema version %d, this binary migrates it to %d: ok\n", path, from, to)
	}
	return nil
}

// refuseRunningNode fails when a node answers /livez on the configured
// HTTP listener: migrating its store under it would break it.
func refuseRunningNode(ctx context.Context, cfg config.Config) error {
	url := "http://" + localAddr(cfg.HTTP.Listen) + "/livez"
	ctx, cancel := context.WithTimeout(ctx, livezTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil // nothing listening: no node
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return fmt.Errorf("a node is running (%s answers): stop it first (systemctl stop outpost), "+
		"or check without changing anything with `outpost migrate --check`; --force skips this test", url)
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
