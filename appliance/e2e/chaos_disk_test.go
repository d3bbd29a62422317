package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the integrity check of a node's store
)

// chaosDiskMiB is the size of the full node's data directory: the Raft
// log's first segment (64 MiB, preallocated by raft-wal) and room for the
// store.
const chaosDiskMiB = 96

// mountTmpfs mounts a tmpfs of sizeMiB on a new directory under the test's
// temporary directory, unmounted when the test ends (after the nodes'
// clean-ups, which are registered later).
func mountTmpfs(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", sizeMiB), "outpost-chaos", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (the full-disk test needs root): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// A process of the test may hold it a moment longer.
			if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
				t.Errorf("umount %s: %v: %s; %v: %s", dir, err, out, err2, out2)
			}
		}
	})
	return dir
}

// fillDisk writes a ballast file in dir until the file system is full, and
// returns its path and size.
func fillDisk(t *testing.T, dir string) (string, int64) {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			n, err := f.Write(buf)
			size += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return path, size
}

// A follower's data directory is a small tmpfs, filled up while the
// cluster runs: the others apply a new revision, and phones register and
// call on the full node. It says why it is not ready (the alarm: /readyz,
// the status, the fsm metrics), keeps serving its phones from memory, and
// corrupts nothing; once the space returns it applies what it missed,
// shares its phones and its call record, and is ready again, without a
// restart.
func TestChaosDiskFull(t *testing.T) { chaosDiskFull(t, false) }

// The same with the leader's disk full. A leader whose FSM waits for space
// would hold up every write of the cluster (an apply answers once the
// leader applied it) while its heartbeats keep an election away: it hands
// the leadership over, and the others go on.
func TestChaosDiskFullLeader(t *testing.T) { chaosDiskFull(t, true) }

func chaosDiskFull(t *testing.T, leader bool) {
	began := time.Now()
	// Every node's data directory is a tmpfs of its own for the leader's
	// case (whichever leads is filled); only n3's for the follower's.
	disks := map[string]string{}
	c := newChaosCluster(t, demoSnapshot(t), func(id string, o *nodeOpts) {
		if leader || id == "n3" {
			disks[id] = mountTmpfs(t, chaosDiskMiB)
			o.dataDir = filepath.Join(disks[id], "data")
		}
	})
	ctx := context.Background()
	l := c.leader(c.nodes, 30*time.Second)
	full, role := c.nodes[2], "a follower"
	if leader {
		full, role = l, "the leader"
	} else if l == full {
		t.Fatalf("%s leads; the test fills a follower's disk", full.id)
	}
	var others []*node
	for _, n := range c.nodes {
		if n != full {
			others = append(others, n)
		}
	}
	disk := disks[full.id]
	ballast, size := fillDisk(t, disk)
	filled := time.Now()
	t.Logf("filled %s's data directory (%s): ballast of %d MiB", full.id, role, size>>20)

	var handOff time.Duration
	if leader {
		// Something to apply, so the full leader's FSM stalls; then it
		// hands over, and the apply it was sent ends (applied or refused).
		rev2 := withRevision(t, demoSnapshot(t), 2, func(m map[string]any) {
			m["account"].(map[string]any)["name"] = "Acme Corp (sent to the leader as its disk filled)"
		})
		applied := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			_, err := full.client().ApplySnapshot(ctx, rev2)
			applied <- err
		}()
		defer func() { t.Logf("the apply sent to the full leader ended: %v", <-applied) }()
		_, handOff = c.waitLeaderChange(others, full, filled, 60*time.Second)
		t.Logf("a new leader %v after %s's disk filled", handOff.Round(time.Millisecond), full.id)
	}

	// The others go on.
	rev2 := withRevision(t, demoSnapshot(t), 3, func(m map[string]any) {
		m["account"].(map[string]any)["name"] = "Acme Corp (applied while " + full.id + "'s disk is full)"
	})
	if rev, err := others[0].client().ApplySnapshot(ctx, rev2); err != nil || rev != 3 {
		t.Fatalf("apply revision 3 with %s's disk full: %d %v", role, rev, err)
	}
	doc2 := waitRevision(t, others, 3)

	// The full node: phones register and call there.
	alice := newChaosPhone(t, c.host(full), full, "alice")
	bob := newChaosPhone(t, c.host(full), full, "bob")
	alice.register(20 * time.Second)
	bob.register(20 * time.Second)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	callID, err := alice.call(cctx, "1002", 200*time.Millisecond)
	cancel()
	if err != nil {
		t.Errorf("a call on the node with a full disk: %v", err)
	}

	// Its alarm, and what it says.
	var reason string
	var alarmAfter time.Duration
	eventually(t, 30*time.Second, full.id+" says its store cannot write", func(ctx context.Context) error {
		st, err := full.status(ctx)
		if err != nil {
			return err
		}
		if st.Ready {
			return fmt.Errorf("ready, revision %d", st.Revision)
		}
		reason = st.NotReadyReason
		alarmAfter = time.Since(filled)
		return nil
	})
	m, err := nodeMetrics(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	logs := full.log()
	if m["outpost_raft_fsm_stalled"] != 1 || m["outpost_raft_fsm_halted"] != 0 {
		t.Errorf("%s with a full disk: outpost_raft_fsm_stalled %v, outpost_raft_fsm_halted %v; want 1 and 0 (it waits, it does not halt)",
			full.id, m["outpost_raft_fsm_stalled"], m["outpost_raft_fsm_halted"])
	}
	t.Logf("%s with a full disk: not ready: %q; outpost_raft_fsm_halted %v; log lines: persist bindings %v, persist call records %v",
		full.id, reason, m["outpost_raft_fsm_halted"], strings.Contains(logs, "persist bindings; will retry"),
		strings.Contains(logs, "persist call records; will retry"))
	if !strings.Contains(strings.ToLower(reason), "full") {
		t.Errorf("%s's reason for not being ready does not say the disk is full: %q", full.id, reason)
	}

	// The space returns.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	want := map[string]string{"alice": alice.contact(), "bob": bob.contact()}
	var recovered time.Duration
	eventually(t, 60*time.Second, full.id+" recovers: ready, revision 3, its phones and call shared", func(ctx context.Context) error {
		st, err := full.status(ctx)
		if err != nil {
			return err
		}
		if !st.Ready || st.Revision != 3 {
			return fmt.Errorf("ready %v (%s), revision %d", st.Ready, st.NotReadyReason, st.Revision)
		}
		var errs []error
		for _, n := range c.nodes {
			errs = append(errs, checkBindings(ctx, n, want))
			if callID != "" {
				errs = append(errs, checkRecords(ctx, n, []string{callID}))
			}
		}
		recovered = time.Since(freed)
		return errors.Join(errs...)
	})
	if d := waitRevision(t, c.nodes, 3); !bytes.Equal(d, doc2) {
		t.Errorf("%s serves a revision 3 other than the others'", full.id)
	}

	// Nothing corrupt: stopped, its store passes SQLite's integrity check,
	// and it starts again on it.
	if err := full.stop(); err != nil {
		t.Errorf("stop %s: %v\n%s", full.id, err, full.log())
	}
	if err := integrityCheck(filepath.Join(disk, "data", "outpost.db")); err != nil {
		t.Error(err)
	}
	full.restart()
	waitRevision(t, c.nodes, 3)
	handedOff := ""
	if leader {
		handedOff = fmt.Sprintf("; a new leader %v after it filled", handOff.Round(time.Millisecond))
	}
	t.Logf("FIGURES full disk on %s: not ready %v after the disk filled (%q)%s; the others applied revision 3; "+
		"on the full node 2 phones registered and %d call connected; recovered %v after space returned, without a restart: "+
		"revision 3, phones and call record on every node; integrity check ok; lost 0",
		role, alarmAfter.Round(time.Millisecond), reason, handedOff, b2n(callID != ""), recovered.Round(time.Millisecond))
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

func b2n(b bool) int {
	if b {
		return 1
	}
	return 0
}

// integrityCheck runs SQLite's integrity check on a stopped node's store.
func integrityCheck(path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check of %s: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check of %s: %s", path, res)
	}
	return nil
}
