package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// testNode is one in-process member on loopback.
type testNode struct {
	c  *Cluster
	st *store.Store
}

// startCluster runs n members in this process, each with its own store and
// Raft directory, and waits until all n are voters under one leader.
func startCluster(t testing.TB, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		st, err := store.Open(filepath.Join(dir, "outpost.db"), discardLog())
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(Config{
			NodeID:            fmt.Sprintf("n%d", i+1),
			RaftDir:           filepath.Join(dir, "raft"),
			Listener:          ln,
			Bootstrap:         i == 0,
			HeartbeatTimeout:  500 * time.Millisecond,
			ElectionTimeout:   500 * time.Millisecond,
			SnapshotThreshold: 8192,
			Store:             st,
			Log:               discardLog(),
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{c: c, st: st}
		t.Cleanup(func() {
			_ = c.Shutdown()
			_ = st.Close()
		})
	}
	waitFor(t, 10*time.Second, "first leader", func() error {
		if !nodes[0].c.IsLeader() {
			return errors.New("n1 not leader yet")
		}
		return nil
	})
	for _, nd := range nodes[1:] {
		if err := nodes[0].c.AddVoter(nd.c.NodeID(), nd.c.RaftAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		waitFor(t, 10*time.Second, nd.c.NodeID()+" sees all members", func() error {
			ms, err := nd.c.Members()
			if err == nil && (len(ms) != n || !nd.c.HasQuorum()) {
				err = fmt.Errorf("%d members, quorum %v", len(ms), nd.c.HasQuorum())
			}
			return err
		})
	}
	return nodes
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, within, err)
}

func leader(t testing.TB, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	waitFor(t, 10*time.Second, "a leader", func() error {
		for _, n := range nodes {
			if n.c.IsLeader() {
				l = n
				return nil
			}
		}
		return errors.New("no leader")
	})
	return l
}

func TestClusterReplicatesAndTransfersLeadership(t *testing.T) {
	nodes := startCluster(t, 3)
	l := leader(t, nodes)
	ctx := t.Context()
	for _, n := range nodes {
		if n != l {
			if _, err := n.c.Apply(ctx, EncodeSnapshot(demoDoc(t, 1))); !errors.Is(err, ErrNotLeader) {
				t.Errorf("apply on follower %s: %v, want ErrNotLeader", n.c.NodeID(), err)
			}
		}
	}
	res, err := l.c.Apply(ctx, EncodeSnapshot(demoDoc(t, 1)))
	if err != nil || res.Err != nil || res.Revision != 1 {
		t.Fatalf("apply on leader: %+v %v", res, err)
	}
	m, _ := EncodeMember(store.Member{ID: "x", RaftAddr: "a:1", HTTPAddr: "a:2", Site: "hq"})
	if res, err := l.c.ApplyBatched(ctx, m); err != nil || res.Err != nil {
		t.Fatalf("batched apply: %+v %v", res, err)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.c.NodeID()+" at revision 1", func() error {
			rev, err := n.st.Reader().Revision(ctx)
			ms, _ := n.st.Reader().Members(ctx)
			if err == nil && (rev != 1 || len(ms) != 1) {
				err = fmt.Errorf("revision %d, %d members", rev, len(ms))
			}
			return err
		})
	}

	// A graceful shutdown of the leader hands leadership over at once.
	stopped := time.Now()
	if err := l.c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != l {
			rest = append(rest, n)
		}
	}
	next := leader(t, rest)
	t.Logf("leadership moved to %s in %s", next.c.NodeID(), time.Since(stopped).Round(time.Millisecond))
	if res, err := next.c.Apply(ctx, EncodeSnapshot(demoDoc(t, 2))); err != nil || res.Revision != 2 {
		t.Fatalf("apply after transfer: %+v %v", res, err)
	}
}

// benchmarkApply drives 256 concurrent proposers of ~200-byte commands at
// the leader of a 3-node loopback cluster and reports commands per second.
func benchmarkApply(b *testing.B, apply func(c *Cluster, ctx context.Context, cmd []byte) (ApplyResult, error)) {
	nodes := startCluster(b, 3)
	l := leader(b, nodes)
	ctx := context.Background()
	var seq atomic.Int64
	const proposers = 256
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	per := b.N/proposers + 1
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				n := seq.Add(1)
				cmd, _ := EncodeMember(store.Member{
					ID: fmt.Sprintf("bench-%04d", n%1000), RaftAddr: fmt.Sprintf("10.0.%d.%d:7000", n%250, n%200),
					HTTPAddr: "10.0.0.1:8080", SIPAddr: "10.0.0.1:5060", Site: "hq", UpdatedAt: time.Unix(n, 0).UTC(),
				})
				if res, err := apply(l.c, ctx, cmd); err != nil || res.Err != nil {
					if failed.Add(1) == 1 {
						b.Logf("first failure: %v %v", err, res.Err)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d commands failed", f)
	}
	b.ReportMetric(float64(per*proposers)/elapsed.Seconds(), "commands/s")
}

func BenchmarkRaftApplySmall(b *testing.B) {
	benchmarkApply(b, (*Cluster).Apply)
}

func BenchmarkRaftApplyBatched(b *testing.B) {
	benchmarkApply(b, (*Cluster).ApplyBatched)
}
