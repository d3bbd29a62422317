package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/config"
)

// The node's rotations are what the B2BUA asks for.
var _ calls.Rotations = (*rotations)(nil)

// eventually polls cond every 10 ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeCluster is a replicated table and its generation, as the FSM
// keeps them, and the proposals that reach it.
type fakeCluster struct {
	mu       sync.Mutex
	table    map[string]store.Rotation
	gen      atomic.Uint64
	proposed []store.Rotation
	fail     error         // proposals fail with it while set
	block    chan struct{} // proposals wait for it while set
	attempts atomic.Int32  // proposals begun
}

func (c *fakeCluster) apply(r store.Rotation) {
	c.mu.Lock()
	if old, ok := c.table[r.Group]; !ok || r.Newer(old) {
		c.table[r.Group] = r
	}
	c.mu.Unlock()
	c.gen.Add(1)
}

func (c *fakeCluster) read(context.Context) ([]store.Rotation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []store.Rotation
	for _, r := range c.table {
		out = append(out, r)
	}
	return out, nil
}

func (c *fakeCluster) propose(ctx context.Context, cmd []byte) error {
	c.attempts.Add(1)
	c.mu.Lock()
	fail, block := c.fail, c.block
	c.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	if err := cluster.CheckShared(cmd); err != nil {
		return err
	}
	r, err := decodeRotation(cmd)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.proposed = append(c.proposed, r)
	c.mu.Unlock()
	c.apply(r)
	return nil
}

func (c *fakeCluster) proposals() []store.Rotation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]store.Rotation(nil), c.proposed...)
}

func decodeRotation(cmd []byte) (store.Rotation, error) {
	var r store.Rotation
	if len(cmd) < 2 || cluster.CommandType(cmd[0]) != cluster.CmdPutRotation {
		return r, fmt.Errorf("not a put_rotation: % x", cmd[:min(len(cmd), 2)])
	}
	return r, json.Unmarshal(cmd[2:], &r)
}

func newTestRotations(t *testing.T, c *fakeCluster) *rotations {
	t.Helper()
	r := newRotationsWith(c.read, c.gen.Load, c.propose, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func members(rs []store.Rotation) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Member)
	}
	return out
}

// Rotated is served from memory at once and never waits for the cluster:
// while a proposal hangs, further rotations of the group replace each
// other and only the last is proposed after it.
func TestRotationsServeAtOnceAndShareInBackground(t *testing.T) {
	const g = "sdg:sdg-sales/route"
	c := &fakeCluster{table: map[string]store.Rotation{
		"sdg:sdg-desk/route": {Group: "sdg:sdg-desk/route", Member: "u-fay", At: time.Now().Add(-time.Hour)},
	}}
	r := newTestRotations(t, c)
	if got := r.LastAnswered("sdg:sdg-desk/route"); got != "u-fay" {
		t.Errorf("what the store held at start: %q, want u-fay", got)
	}
	if got := r.LastAnswered(g); got != "" {
		t.Errorf("a group never rotated: %q, want \"\"", got)
	}
	r.Rotated(g, "u-bob")
	if got := r.LastAnswered(g); got != "u-bob" {
		t.Fatalf("right after Rotated: %q, want u-bob", got)
	}
	eventually(t, 5*time.Second, "u-bob proposed", func() bool { return len(c.proposals()) == 1 })

	block := make(chan struct{})
	c.mu.Lock()
	c.block = block
	c.mu.Unlock()
	r.Rotated(g, "u-carol")
	eventually(t, 5*time.Second, "the share loop hanging on u-carol", func() bool { return c.attempts.Load() == 2 })
	returned := make(chan struct{})
	go func() {
		for _, m := range []string{"u-dave", "u-erin"} {
			r.Rotated(g, m)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Fatal("Rotated waited for a hanging proposal")
	}
	if got := r.LastAnswered(g); got != "u-erin" {
		t.Errorf("while proposals hang: %q, want u-erin", got)
	}
	c.mu.Lock()
	c.block = nil
	c.mu.Unlock()
	close(block)
	eventually(t, 5*time.Second, "u-erin proposed", func() bool {
		p := c.proposals()
		return len(p) > 0 && p[len(p)-1].Member == "u-erin"
	})
	if got, want := members(c.proposals()), []string{"u-bob", "u-carol", "u-erin"}; !slices.Equal(got, want) {
		t.Errorf("proposed %v, want %v (dave's replaced by erin's before it went)", got, want)
	}
	p := c.proposals()
	for i := 1; i < len(p); i++ {
		if !p[i].At.After(p[i-1].At) {
			t.Errorf("rotation %d at %v, not after %v", i, p[i].At, p[i-1].At)
		}
	}
}

// A proposal that fails is proposed again later; meanwhile the node
// serves its own rotation.
func TestRotationsRetryFailedProposals(t *testing.T) {
	const g = "sdg:sdg-sales/route"
	c := &fakeCluster{table: map[string]store.Rotation{}, fail: errors.New("no leader")}
	r := newTestRotations(t, c)
	r.Rotated(g, "u-bob")
	eventually(t, 5*time.Second, "a proposal tried", func() bool { return c.attempts.Load() > 0 })
	if got := r.LastAnswered(g); got != "u-bob" || len(c.proposals()) != 0 {
		t.Fatalf("while failing: serving %q, proposed %v; want u-bob, nothing", got, c.proposals())
	}
	c.mu.Lock()
	c.fail = nil
	c.mu.Unlock()
	eventually(t, 3*rotationRetry+time.Second, "the failed rotation proposed again", func() bool {
		return slices.Equal(members(c.proposals()), []string{"u-bob"})
	})
}

// What other nodes decide reaches memory when the generation moves; an
// older rotation does not move a group back; a rotation this node makes
// after another node's, stamped ahead of this node's clock, still wins.
func TestRotationsFollowTheCluster(t *testing.T) {
	const g, g2 = "sdg:sdg-sales/route", "sdg:sdg-desk/route"
	c := &fakeCluster{table: map[string]store.Rotation{}}
	r := newTestRotations(t, c)
	r.Rotated(g, "u-bob")
	eventually(t, 5*time.Second, "u-bob proposed", func() bool { return len(c.proposals()) == 1 })

	ahead := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond) // another node's clock
	c.apply(store.Rotation{Group: g, Member: "u-zed", At: ahead})
	eventually(t, 5*time.Second, "another node's rotation served", func() bool { return r.LastAnswered(g) == "u-zed" })

	c.mu.Lock()
	c.table[g] = store.Rotation{Group: g, Member: "u-old", At: ahead.Add(-time.Minute)} // as a restore could
	c.table[g2] = store.Rotation{Group: g2, Member: "u-fay", At: ahead}
	c.mu.Unlock()
	c.gen.Add(1)
	eventually(t, 5*time.Second, "u-fay served", func() bool { return r.LastAnswered(g2) == "u-fay" })
	if got := r.LastAnswered(g); got != "u-zed" {
		t.Errorf("an older rotation moved the group back to %q", got)
	}

	r.Rotated(g, "u-amy")
	eventually(t, 5*time.Second, "u-amy stored, after u-zed", func() bool {
		rs, _ := c.read(context.Background())
		for _, s := range rs {
			if s.Group == g {
				return s.Member == "u-amy" && s.At.After(ahead)
			}
		}
		return false
	})
	if got := r.LastAnswered(g); got != "u-amy" {
		t.Errorf("after this node's rotation: %q, want u-amy", got)
	}
}

// Three nodes: a rotation recorded on a follower is proposed through the
// leader and served by every node; after the leader stops, the survivors
// still serve the last one, a store reopened from scratch on a survivor
// reads it, and rotations go on under the new leader.
func TestRotationsAcrossCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("rotations-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n1, stop1 := startClusterNode(t, "n1", tokenFile)
	n2, stop2 := startClusterNode(t, "n2", tokenFile, n1.HTTPAddr())
	n3, stop3 := startClusterNode(t, "n3", tokenFile, n1.HTTPAddr())
	nodes := []*Node{n1, n2, n3}
	stops := []func(){stop1, stop2, stop3}
	eventually(t, 30*time.Second, "three voters, every member announced and a leader", func() bool {
		for _, n := range nodes {
			ms, err := n.cluster.Members()
			recs, rerr := n.store.Reader().Members(context.Background())
			if id, _ := n.cluster.Leader(); err != nil || rerr != nil || len(ms) != 3 || len(recs) != 3 || id == "" {
				return false
			}
		}
		return true
	})

	rots := make([]*rotations, len(nodes))
	for i, n := range nodes {
		rots[i] = newRotations(n)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); rots[i].Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	leader := func(among []int) int {
		for _, i := range among {
			if nodes[i].cluster.IsLeader() {
				return i
			}
		}
		return -1
	}
	var follower int
	eventually(t, 10*time.Second, "a leader among the nodes", func() bool { return leader([]int{0, 1, 2}) >= 0 })
	lead := leader([]int{0, 1, 2})
	follower = (lead + 1) % 3

	const g = "sdg:sdg-sales/route"
	served := func(among []int, member string) func() bool {
		return func() bool {
			for _, i := range among {
				if rots[i].LastAnswered(g) != member {
					return false
				}
			}
			return true
		}
	}
	rots[follower].Rotated(g, "u-bob")
	eventually(t, 10*time.Second, "u-bob, recorded on a follower, served by every node", served([]int{0, 1, 2}, "u-bob"))
	rots[lead].Rotated(g, "u-carol")
	eventually(t, 10*time.Second, "u-carol, recorded on the leader, served by every node", served([]int{0, 1, 2}, "u-carol"))

	// The leader stops; the others elect another.
	stops[lead]()
	var alive []int
	for i := range nodes {
		if i != lead {
			alive = append(alive, i)
		}
	}
	eventually(t, 20*time.Second, "a new leader among the survivors", func() bool { return leader(alive) >= 0 })
	for _, i := range alive {
		if got, err := nodes[i].store.Reader().Rotation(context.Background(), g); err != nil || got.Member != "u-carol" {
			t.Errorf("%s's store after the leader left: %+v, %v; want u-carol", nodes[i].cfg.NodeID, got, err)
		}
		if got := newRotations(nodes[i]).LastAnswered(g); got != "u-carol" {
			t.Errorf("rotations rebuilt on %s: %q, want u-carol", nodes[i].cfg.NodeID, got)
		}
	}
	newLead := leader(alive)
	other := alive[0]
	if other == newLead {
		other = alive[1]
	}
	rots[other].Rotated(g, "u-dave")
	eventually(t, 10*time.Second, "u-dave served by both survivors", served(alive, "u-dave"))
}

// startClusterNode runs a node until the test ends: the first of a
// cluster when join is empty, else one that joins through join. Nodes of
// a test share tokenFile.
func startClusterNode(t *testing.T, id, tokenFile string, join ...string) (n *Node, stop func()) {
	t.Helper()
	cfg := config.Default()
	cfg.NodeID, cfg.DataDir, cfg.Site = id, t.TempDir(), "hq"
	cfg.HTTP.AdminTokenFile = tokenFile
	cfg.Raft.Join = join
	n, _, stop = runNode(t, cfg)
	return n, stop
}
