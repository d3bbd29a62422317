package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A node is killed -9 and the last write of one of its files is torn, as
// a power cut in the middle of a write leaves it (the process being dead,
// the test cuts the file's tail): the SQLite store's WAL loses its last
// bytes, the Raft log's last batch is half zeros. Restarted, the node
// must either start, recover what the tear took from the cluster, and
// lose nothing the majority had committed (a revision, a registration
// shared), or refuse to start with a one-line reason. Then every
// acknowledged write is on every node.
func TestChaosTornWrite(t *testing.T) {
	began := time.Now()
	doc := demoSnapshot(t)
	c := newChaosCluster(t, doc, nil)
	ctx := context.Background()
	rev := int64(1)
	want := map[string]string{}
	users := []string{"alice", "bob", "carol", "dave"}
	var figures []string
	for round, tc := range []struct {
		name   string
		leader bool // tear the leader's file (else a follower's)
		tear   func(t *testing.T, n *node) string
	}{
		{"the store's WAL loses its last 3,000 bytes", false, tearSQLiteWAL},
		{"the Raft log's last batch is half zeros", true, tearRaftLog},
		{"both, on one node", false, func(t *testing.T, n *node) string {
			return tearSQLiteWAL(t, n) + "; " + tearRaftLog(t, n)
		}},
	} {
		leader := c.leader(c.nodes, 30*time.Second)
		victim := others(c.nodes, leader)[round%2]
		if tc.leader {
			victim = leader
		}
		// Acknowledged writes the victim holds: a revision and a
		// registration made on it, both committed by the majority.
		rev++
		if got, err := victim.client().ApplySnapshot(ctx, withRevision(t, doc, rev, func(m map[string]any) {
			m["account"].(map[string]any)["name"] = fmt.Sprintf("Acme Corp (revision %d)", rev)
		})); err != nil || got != rev {
			t.Fatalf("round %d: apply revision %d: %d %v", round+1, rev, got, err)
		}
		user := users[round]
		p := newChaosPhone(t, c.host(victim), victim, user)
		p.register(20 * time.Second)
		want[user] = p.contact()
		for _, n := range c.nodes {
			eventually(t, 20*time.Second, fmt.Sprintf("round %d: %s holds revision %d and %s's registration", round+1, n.id, rev, user),
				func(ctx context.Context) error {
					st, err := n.status(ctx)
					if err == nil && st.Revision != rev {
						err = fmt.Errorf("revision %d", st.Revision)
					}
					if err == nil {
						err = checkBindings(ctx, n, want)
					}
					return err
				})
		}

		victim.kill()
		what := tc.tear(t, victim)
		started, out := tryStart(t, victim, 60*time.Second)
		if !started {
			// A refusal must be one clear line; the node is then rebuilt
			// as the runbook says (cluster.md, section 10): its data moved
			// aside, it rejoins and the cluster refills it.
			line := strings.TrimSpace(out)
			if line == "" || strings.Count(line, "\n") > 0 && !strings.Contains(line, "outpost:") {
				t.Errorf("round %d (%s): %s refused to start without a clear reason:\n%s", round+1, tc.name, victim.id, out)
			}
			figures = append(figures, fmt.Sprintf("%s: %s refused to start: %q", tc.name, victim.id, lastLine(line)))
			t.Logf("FIGURES torn last write: %s", strings.Join(figures, "; "))
			t.Skipf("round %d: %s refused to start after the tear (%s): %s; rebuilding it is not automated here", round+1, victim.id, what, lastLine(line))
		}
		restarted := time.Now()
		victim.restart()
		var took time.Duration
		eventually(t, 60*time.Second, fmt.Sprintf("round %d: every node holds revision %d and every registration", round+1, rev), func(ctx context.Context) error {
			var errs []error
			for _, n := range c.nodes {
				st, err := n.status(ctx)
				if err != nil {
					return err
				}
				if st.Revision != rev || !st.Ready {
					errs = append(errs, fmt.Errorf("%s: revision %d ready %v (%s)", n.id, st.Revision, st.Ready, st.NotReadyReason))
					continue
				}
				errs = append(errs, checkBindings(ctx, n, want))
			}
			took = time.Since(restarted)
			return errors.Join(errs...)
		})
		waitRevision(t, c.nodes, rev)
		f := fmt.Sprintf("%s (%s, %s): restarted and whole again in %v", tc.name, victim.id, what, took.Round(time.Millisecond))
		t.Logf("round %d: %s", round+1, f)
		figures = append(figures, f)
	}
	t.Logf("FIGURES torn last write: %s; acknowledged writes lost 0", strings.Join(figures, "; "))
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// tearSQLiteWAL cuts the last 3,000 bytes of a stopped node's SQLite WAL
// (the end of its last transaction, torn).
func tearSQLiteWAL(t *testing.T, n *node) string {
	t.Helper()
	path := filepath.Join(n.dir, "data", "outpost.db-wal")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s's store WAL: %v", n.id, err)
	}
	before := storeAppliedIndex(t, n)
	cut := min(int64(3000), fi.Size())
	if err := os.Truncate(path, fi.Size()-cut); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("outpost.db-wal %d -> %d bytes, the store's applied Raft index %d -> %d", fi.Size(), fi.Size()-cut,
		before, storeAppliedIndex(t, n))
}

// storeAppliedIndex is the Raft index a stopped node's store has applied,
// read from a copy of its database and WAL (SQLite recovers the WAL on the
// copy, not on the node's files).
func storeAppliedIndex(t *testing.T, n *node) int64 {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"outpost.db", "outpost.db-wal"} {
		data, err := os.ReadFile(filepath.Join(n.dir, "data", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite3", filepath.Join(dir, "outpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var idx int64
	if err := db.QueryRow(`SELECT value FROM meta WHERE key = 'applied_index'`).Scan(&idx); err != nil {
		t.Fatalf("read the applied index of %s's store: %v", n.id, err)
	}
	return idx
}

// tearRaftLog zeroes the last 64 written bytes of a stopped node's Raft
// log (raft-wal preallocates its segment files, so the written end is the
// last non-zero byte of the newest segment): its last batch and commit
// frame, half written.
func tearRaftLog(t *testing.T, n *node) string {
	t.Helper()
	dir := filepath.Join(n.dir, "data", "raft", "wal")
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%s's raft log segments: %v %v", n.id, segs, err)
	}
	slices.Sort(segs)
	path := segs[len(segs)-1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	start := max(0, end-64)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, end-start), int64(start)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s: bytes %d..%d zeroed", filepath.Base(path), start, end)
}

// tryStart starts the node's command as the harness would and reports
// whether it came up (it is then stopped with SIGTERM, for the harness to
// start it again) or exited, with what it said.
func tryStart(t *testing.T, n *node, within time.Duration) (bool, string) {
	t.Helper()
	args := []string{outpostBin, "serve", "--config", n.cfgPath}
	if n.netns != "" {
		args = append([]string{"ip", "netns", "exec", n.netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(cleanEnv(), n.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	deadline := time.After(within)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				return false, out.String()
			}
			if !strings.HasPrefix(line, "time=") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				out.WriteString(line + "\n")
			}
			if strings.Contains(line, `msg="node started"`) {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				for range lines {
				}
				_ = cmd.Wait()
				return true, out.String()
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%s neither started nor exited within %v:\n%s", n.id, within, out.String())
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
