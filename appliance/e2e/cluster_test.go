package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// formCluster starts n1 (bootstrap) and n2, n3 joining through n1, and waits
// until all three see three healthy members with their sites.
func formCluster(t testing.TB) []*node {
	t.Helper()
	return formClusterLogging(t, "")
}

// formClusterLogging is formCluster with the nodes logging at level ("":
// debug; benchmarks use info).
func formClusterLogging(t testing.TB, level string) []*node {
	t.Helper()
	return formClusterWith(t, nodeOpts{logLevel: level})
}

// formClusterWith is formCluster with every node started with base's
// logging and cloud settings.
func formClusterWith(t testing.TB, base nodeOpts) []*node {
	t.Helper()
	opts := func(site string, join ...string) nodeOpts {
		o := base
		o.site, o.join = site, join
		return o
	}
	n1 := startNode(t, "n1", opts("hq"))
	eventually(t, 30*time.Second, "n1 ready", func(ctx context.Context) error {
		st, err := n1.status(ctx)
		if err == nil && !st.Ready {
			err = errors.New(st.NotReadyReason)
		}
		return err
	})
	n2 := startNode(t, "n2", opts("hq", n1.httpAddr))
	n3 := startNode(t, "n3", opts("branch", n1.httpAddr))
	nodes := []*node{n1, n2, n3}
	waitHealthyMembers(t, nodes, 60*time.Second)
	return nodes
}

// waitHealthyMembers waits until every node is ready with quorum and sees
// all of nodes as healthy members with a site.
func waitHealthyMembers(t testing.TB, nodes []*node, within time.Duration) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, within, fmt.Sprintf("%s sees %d healthy members", n.id, len(nodes)), func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if !st.Ready || !st.Quorum || len(st.Members) != len(nodes) {
				return fmt.Errorf("ready=%v quorum=%v members=%d", st.Ready, st.Quorum, len(st.Members))
			}
			for _, m := range st.Members {
				if !m.Healthy || m.Site == "" {
					return fmt.Errorf("member %s healthy=%v site=%q", m.ID, m.Healthy, m.Site)
				}
			}
			return nil
		})
	}
}

func leaderOf(ctx context.Context, nodes []*node) (*node, error) {
	for _, n := range nodes {
		st, err := n.status(ctx)
		if err != nil {
			continue
		}
		for _, m := range nodes {
			if st.Leader == m.id && st.Leader != "" {
				return m, nil
			}
		}
	}
	return nil, errors.New("no leader known")
}

func others(nodes []*node, not *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

// waitRevision waits until every node reports rev and serves the same document.
func waitRevision(t testing.TB, nodes []*node, rev int64) []byte {
	t.Helper()
	var doc []byte
	for _, n := range nodes {
		eventually(t, 30*time.Second, fmt.Sprintf("%s at revision %d", n.id, rev), func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Revision != rev {
				return fmt.Errorf("revision %d", st.Revision)
			}
			got, err := n.client().Snapshot(ctx)
			if err != nil {
				return err
			}
			if doc == nil {
				doc = got
			} else if !bytes.Equal(doc, got) {
				return errors.New("snapshot document differs from the other nodes'")
			}
			return nil
		})
	}
	return doc
}

func withRevision(t testing.TB, doc []byte, rev int64, mutate func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["revision"] = rev
	if mutate != nil {
		mutate(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestThreeNodeCluster(t *testing.T) {
	nodes := formCluster(t)
	ctx := context.Background()
	demo := demoSnapshot(t)
	tokenFile := writeFile(t, "token", []byte(testToken))

	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	follower := others(nodes, leader)[0]

	// Apply on a follower through the real CLI: forwarded to the leader.
	out, stderr, code := cli(t, "apply", "--server", follower.httpAddr, "--token-file", tokenFile, writeFile(t, "rev1.json", demo))
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("outpost apply on follower %s: exit %d, stdout %q, stderr %q", follower.id, code, out, stderr)
	}
	doc1 := waitRevision(t, nodes, 1)
	var got map[string]any
	if err := json.Unmarshal(doc1, &got); err != nil || len(got["users"].([]any)) != 5 {
		t.Fatalf("replicated snapshot: %v users, err %v", len(got["users"].([]any)), err)
	}

	// A bad snapshot is refused on every node and changes nothing.
	t.Run("bad snapshots refused everywhere", func(t *testing.T) {
		bad := map[string][]byte{
			"dangling and loop": withRevision(t, demo, 5, func(m map[string]any) {
				sdgs := m["sdgs"].([]any)
				op := sdgs[1].(map[string]any)
				op["route"] = map[string]any{"type": "sdg", "id": "sdg-frontdesk"} // frontdesk -> operator -> frontdesk
				m["users"].([]any)[0].(map[string]any)["site"] = "nowhere"
			}),
			"stale revision": withRevision(t, demo, 1, nil),
			"malformed":      []byte(`{"revision": 7, "account": {`),
			"unknown field":  withRevision(t, demo, 6, func(m map[string]any) { m["usres"] = []any{} }),
		}
		for _, n := range nodes {
			for name, body := range bad {
				code, resp := post(t, "http://"+n.httpAddr+"/api/v1/snapshot", testToken, body)
				if code != http.StatusBadRequest {
					t.Errorf("%s %s: HTTP %d, want 400: %s", n.id, name, code, resp)
				}
			}
			code, _ := post(t, "http://"+n.httpAddr+"/api/v1/snapshot", "wrong-token", demo)
			if code != http.StatusUnauthorized {
				t.Errorf("%s wrong token: HTTP %d, want 401", n.id, code)
			}
		}
		code, resp := post(t, "http://"+follower.httpAddr+"/api/v1/snapshot", testToken, bad["dangling and loop"])
		var e struct {
			Details []struct{ Path, Message string }
		}
		_ = json.Unmarshal(resp, &e)
		if code != http.StatusBadRequest || len(e.Details) < 2 {
			t.Errorf("want every problem listed, got HTTP %d: %s", code, resp)
		}
		_, stderr, exit := cli(t, "apply", "--server", follower.httpAddr, "--token-file", tokenFile,
			writeFile(t, "bad.json", bad["dangling and loop"]))
		if exit == 0 || !strings.Contains(stderr, "users[0].site") {
			t.Errorf("outpost apply of a bad snapshot: exit %d, stderr %q", exit, stderr)
		}
		if d := waitRevision(t, nodes, 1); !bytes.Equal(d, doc1) {
			t.Error("a refused snapshot changed the stored document")
		}
	})

	// kill -9 the leader: a new leader within 5 s, nothing lost.
	leader.kill()
	survivors := others(nodes, leader)
	killedAt := time.Now()
	var newLeader *node
	eventually(t, 5*time.Second, "new leader after kill -9", func(ctx context.Context) error {
		l, err := leaderOf(ctx, survivors)
		if err != nil {
			return err
		}
		if l == leader {
			return errors.New("survivors still name the dead leader")
		}
		newLeader = l
		return nil
	})
	t.Logf("new leader %s after %s", newLeader.id, time.Since(killedAt).Round(time.Millisecond))
	if d := waitRevision(t, survivors, 1); !bytes.Equal(d, doc1) {
		t.Fatal("revision 1 changed after the leader died")
	}

	// A new revision applies with two of three.
	rev2 := withRevision(t, demo, 2, func(m map[string]any) {
		m["account"].(map[string]any)["name"] = "Acme Corp (rev 2)"
	})
	out, stderr, code = cli(t, "apply", "--server", survivors[1].httpAddr, "--token-file", tokenFile, writeFile(t, "rev2.json", rev2))
	if code != 0 || strings.TrimSpace(out) != "2" {
		t.Fatalf("apply revision 2: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	doc2 := waitRevision(t, survivors, 2)

	// The dead node restarts on its data and catches up.
	leader.restart()
	if d := waitRevision(t, nodes, 2); !bytes.Equal(d, doc2) {
		t.Fatal("restarted node serves a different revision 2")
	}
	eventually(t, 30*time.Second, "restarted node back in quorum", func(ctx context.Context) error {
		st, err := leader.status(ctx)
		if err == nil && (!st.Quorum || !st.Ready) {
			err = fmt.Errorf("quorum=%v ready=%v", st.Quorum, st.Ready)
		}
		return err
	})

	// status --json through the CLI carries the contract's fields.
	out, stderr, code = cli(t, "status", "--server", leader.httpAddr, "--json")
	if code != 0 {
		t.Fatalf("outpost status --json: exit %d: %s", code, stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"node_id", "site", "mode", "leader", "quorum", "members", "revision",
		"registrations", "active_calls", "trunks", "cloud", "journal_pending"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json lacks %q", k)
		}
	}

	// Graceful stop of the leader: leadership is handed over, exit status 0.
	l, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.stop(); err != nil {
		t.Fatalf("SIGTERM %s: %v\n%s", l.id, err, l.log())
	}
	if !strings.Contains(l.log(), "leadership transferred") || !strings.Contains(l.log(), "stopped cleanly") {
		t.Errorf("%s did not transfer leadership and stop cleanly:\n%s", l.id, l.log())
	}
	eventually(t, 5*time.Second, "leader after graceful stop", func(ctx context.Context) error {
		nl, err := leaderOf(ctx, others(nodes, l))
		if err == nil && nl == l {
			err = errors.New("still the stopped node")
		}
		return err
	})
}

// Members leave through the CLI — the leader itself included — and the
// others stop listing them.
func TestClusterLeave(t *testing.T) {
	nodes := formCluster(t)
	tokenFile := writeFile(t, "token", []byte(testToken))
	l, err := leaderOf(context.Background(), nodes)
	if err != nil {
		t.Fatal(err)
	}
	rest := others(nodes, l)
	out, stderr, code := cli(t, "cluster", "leave", "--server", rest[0].httpAddr, "--token-file", tokenFile, "--id", l.id)
	if code != 0 {
		t.Fatalf("cluster leave of the leader: exit %d: %s %s", code, out, stderr)
	}
	for _, n := range rest {
		eventually(t, 10*time.Second, n.id+" lists two members under a new leader", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err == nil && (len(st.Members) != 2 || st.Leader == "" || st.Leader == l.id) {
				err = fmt.Errorf("%d members, leader %q", len(st.Members), st.Leader)
			}
			return err
		})
	}
	_, stderr, code = cli(t, "cluster", "leave", "--server", rest[0].httpAddr, "--token-file", tokenFile, "--id", "no-such-node")
	if code != 1 || !strings.Contains(stderr, "not a member") {
		t.Errorf("leave of an unknown id: exit %d, stderr %q", code, stderr)
	}
	_, _, code = cli(t, "cluster", "leave", "--server", rest[0].httpAddr, "--token-file", tokenFile)
	if code != 2 {
		t.Errorf("cluster leave without --id: exit %d, want 2", code)
	}
}

// A single node with bootstrap_snapshot serves the demo account at revision 1.
func TestBootstrapSnapshot(t *testing.T) {
	snap := writeFile(t, "demo.json", demoSnapshot(t))
	n := startNode(t, "solo", nodeOpts{bootstrapSnapshot: snap})
	waitRevision(t, []*node{n}, 1)
	resp, err := http.Get("http://" + n.httpAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, path := range []string{"/livez", "/healthz", "/metrics", "/"} {
		resp, err := http.Get("http://" + n.httpAddr + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", path, resp, err)
			continue
		}
		resp.Body.Close()
	}
	if err := n.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	// Restarted, it keeps revision 1 and does not apply the bootstrap again.
	n.restart()
	waitRevision(t, []*node{n}, 1)
}

// A bad configuration or bootstrap snapshot stops the node at start with a
// one-line error and a non-zero exit.
func TestBadStartupInput(t *testing.T) {
	dir := t.TempDir()
	badCfg := writeFile(t, "bad.yaml", []byte("sip:\n  udp: not-an-address\nraft:\n  heartbeat_timeout: fast\n"))
	_, stderr, code := cli(t, "serve", "--config", badCfg)
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("bad config: exit %d, stderr %q (want one line, non-zero)", code, stderr)
	}
	badSnap := writeFile(t, "bad.json", []byte(`{"revision": 1, "account": {"id": "x"}, "users": [{"id": "u", "site": "nowhere"}]}`))
	cfg := writeFile(t, "ok.yaml", []byte(fmt.Sprintf("data_dir: %s\nhttp:\n  listen: 127.0.0.1:0\nraft:\n  listen: 127.0.0.1:0\nbootstrap_snapshot: %s\n", dir, badSnap)))
	_, stderr, code = cli(t, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "users[0].site") {
		t.Errorf("bad bootstrap snapshot: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = cli(t, "frobnicate")
	if code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
}
