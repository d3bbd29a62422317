package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCloudPairOneNodeOfThree pairs one follower of a running 3-node
// cluster (`outpost pair --config` of that node): the cluster shares its
// identity through Raft, so every node shows the cloud, the leader (which
// was never paired itself) syncs, and after the leader dies the next one
// syncs too.
func TestCloudPairOneNodeOfThree(t *testing.T) {
	cloud := startCloud(t, demoSnapshot(t))
	nodes := formClusterWith(t, nodeOpts{
		cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n", cloud.url()),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := leader.status(ctx); err != nil || !strings.Contains(st.Cloud.LastError, "not paired") {
		t.Fatalf("an unpaired cluster's cloud status %+v, %v; want it to say it is not paired", st.Cloud, err)
	}
	follower := others(nodes, leader)[0]

	body, err := cloud.admin(ctx, http.MethodPost, "/v1/admin/pairing-codes", []byte(`{"appliance":"acme-hq"}`))
	if err != nil {
		t.Fatal(err)
	}
	var code struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &code); err != nil {
		t.Fatal(err)
	}
	if out, stderr, rc := cliEnv(t, cloud.env, "pair", "--config", follower.cfgPath, "--cloud", cloud.url(), "--code", code.Code); rc != 0 {
		t.Fatalf("outpost pair on %s: exit %d: %s %s", follower.id, rc, out, stderr)
	}
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, nodes, rev, 30*time.Second)
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.id+" shows the cloud", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Cloud.URL != cloud.url() {
				return fmt.Errorf("cloud url %q, want %q", st.Cloud.URL, cloud.url())
			}
			return nil
		})
		_, err := os.Stat(filepath.Join(filepath.Dir(n.cfgPath), "data", "cloud.json"))
		if paired := err == nil; paired != (n == follower) {
			t.Errorf("%s has a credentials file: %v; only %s was paired", n.id, paired, follower.id)
		}
	}

	// The leader dies; the next one, never paired itself, takes an edit.
	leader.kill()
	rest := others(nodes, leader)
	rev = cloud.renameUser(ctx, t, "u-carol", "Carol After Failover")
	waitAllAt(t, rest, rev, 30*time.Second)
	for _, n := range rest {
		if strings.Contains(n.log(), "component=cloud") && strings.Contains(n.log(), "cannot use the cloud identity") {
			t.Errorf("%s could not use the shared identity:\n%s", n.id, n.log())
		}
	}
}
