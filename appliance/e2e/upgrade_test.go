package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A rolling upgrade of a 3-node cluster, as the package's maintainer
// scripts do it on each node (docs/upgrade.md): stop the node, check the
// store with `outpost migrate --check` (on a copy), migrate it in place
// with `outpost migrate`, start it again. Followers first, the leader
// last. Each node rejoins its cluster with the revision it had, the
// cluster keeps applying revisions with a node down, and `migrate`
// refuses to touch the store of a node that is running.
func TestRollingUpgrade(t *testing.T) {
	nodes := formCluster(t)
	ctx := context.Background()
	tokenFile := writeFile(t, "token", []byte(testToken))
	demo := demoSnapshot(t)
	if out, stderr, code := cli(t, "apply", "--server", nodes[0].httpAddr, "--token-file", tokenFile, writeFile(t, "rev1.json", demo)); code != 0 {
		t.Fatalf("apply revision 1: exit %d, %q %q", code, out, stderr)
	}
	waitRevision(t, nodes, 1)

	// migrate in place refuses while the node answers.
	if _, stderr, code := cli(t, "migrate", "--config", nodes[0].cfgPath); code == 0 || !strings.Contains(stderr, "running") {
		t.Errorf("outpost migrate on a running node: exit %d, stderr %q; want a refusal saying it runs", code, stderr)
	}

	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	order := append(others(nodes, leader), leader)
	rev := int64(1)
	for _, n := range order {
		if err := n.stop(); err != nil {
			t.Fatalf("stop %s: %v\n%s", n.id, err, n.log())
		}
		out, stderr, code := cli(t, "migrate", "--check", "--config", n.cfgPath)
		if code != 0 {
			t.Fatalf("%s: migrate --check: exit %d, %q %q", n.id, code, out, stderr)
		}
		if out, stderr, code = cli(t, "migrate", "--config", n.cfgPath); code != 0 {
			t.Fatalf("%s: migrate: exit %d, %q %q", n.id, code, out, stderr)
		}
		// The two others go on while it is down.
		rest := others(nodes, n)
		rev++
		next := withRevision(t, demo, rev, func(m map[string]any) {
			m["account"].(map[string]any)["name"] = fmt.Sprintf("Acme Corp (rev %d)", rev)
		})
		eventually(t, 30*time.Second, fmt.Sprintf("revision %d applied with %s down", rev, n.id), func(ctx context.Context) error {
			out, stderr, code := cli(t, "apply", "--server", rest[0].httpAddr, "--token-file", tokenFile, writeFile(t, fmt.Sprintf("rev%d.json", rev), next))
			if code != 0 {
				return fmt.Errorf("exit %d, %q %q", code, out, stderr)
			}
			return nil
		})
		want := waitRevision(t, rest, rev)
		n.restart()
		if got := waitRevision(t, nodes, rev); !bytes.Equal(got, want) {
			t.Fatalf("%s serves a different revision %d after its upgrade", n.id, rev)
		}
		eventually(t, 60*time.Second, n.id+" back in its cluster", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err == nil && (!st.Ready || !st.Quorum || len(st.Members) != 3) {
				err = fmt.Errorf("ready=%v quorum=%v members=%d", st.Ready, st.Quorum, len(st.Members))
			}
			return err
		})
	}
}
