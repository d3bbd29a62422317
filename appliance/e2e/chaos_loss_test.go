package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// chaosLossPct is the share of packets each host drops, at random, of
// what the other hosts send it: every link between nodes loses that much in
// each direction.
const chaosLossPct = 20

// Every link between the three nodes loses 10 % of its packets each way
// (nftables numgen; no netem here, so no delay or reordering). Raft over
// TCP and SIP over UDP retransmit: the cluster keeps its leader, applies
// every revision a client sends, shares registrations, and a phone
// registers and calls across the lossy links (its UDP REGISTER and INVITE
// sent to a node in another namespace).
func TestChaosLossyLinks(t *testing.T) {
	began := time.Now()
	// Raft's timeouts as a node has them by default (1 s), not the e2e
	// nodes' faster 500 ms.
	c := newChaosCluster(t, demoSnapshot(t), func(_ string, o *nodeOpts) {
		o.env = append(o.env, "OUTPOST_RAFT_HEARTBEAT_TIMEOUT=1s", "OUTPOST_RAFT_ELECTION_TIMEOUT=1s")
	})
	leader := c.leader(c.nodes, 30*time.Second)
	n1, n3 := c.nodes[0], c.nodes[2]
	for _, h := range c.lab.hosts {
		var peers []string
		for _, o := range c.lab.hosts {
			if o != h {
				peers = append(peers, o.ip)
			}
		}
		h.lose(chaosLossPct, peers...)
	}
	lossy := time.Now()

	// Revisions, each through a follower (forwarded to the leader).
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	const revisions = 10
	var took []time.Duration
	retries := 0
	for rev := int64(2); rev < 2+revisions; rev++ {
		doc := withRevision(t, demoSnapshot(t), rev, func(m map[string]any) {
			m["account"].(map[string]any)["name"] = fmt.Sprintf("Acme Corp (revision %d over lossy links)", rev)
		})
		// A client retries what did not answer 200 (a 503 says the
		// leadership changed while applying; a lost answer says nothing).
		// A retry that finds the revision applied (400: not newer) ends
		// it: the first try went through.
		start := time.Now()
		for try := 0; ; try++ {
			actx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			got, err := follower.client().ApplySnapshot(actx, doc)
			cancel()
			if err == nil && got == rev {
				break
			}
			if st, serr := follower.status(context.Background()); serr == nil && st.Revision >= rev {
				break
			}
			if try == 5 || time.Since(start) > 60*time.Second {
				t.Fatalf("apply revision %d over lossy links: %d %v (%d tries)", rev, got, err, try+1)
			}
			retries++
		}
		took = append(took, time.Since(start))
	}
	last := int64(1 + revisions)
	waitRevision(t, c.nodes, last)

	// Phones: alice in n1's namespace registers on n3 across a lossy link;
	// bob on n1 itself. alice calls bob.
	alice := newChaosPhone(t, c.host(n1), n3, "alice")
	bob := newChaosPhone(t, c.host(n1), n1, "bob")
	regStart := time.Now()
	alice.register(30 * time.Second)
	aliceReg := time.Since(regStart)
	bob.register(30 * time.Second)
	want := map[string]string{"alice": alice.contact(), "bob": bob.contact()}
	var shared time.Duration
	eventually(t, 30*time.Second, "every node sees alice and bob", func(ctx context.Context) error {
		var errs []error
		for _, n := range c.nodes {
			errs = append(errs, checkBindings(ctx, n, want))
		}
		shared = time.Since(regStart)
		return errors.Join(errs...)
	})
	var callID string
	var callTook time.Duration
	callTries := 0
	err := poll(60*time.Second, func(context.Context) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		id, err := alice.call(ctx, "1002", 200*time.Millisecond)
		callID, callTook = id, time.Since(start)
		if err != nil {
			callTries++
		}
		return err
	})
	if err != nil {
		t.Fatalf("alice (on n3, across the lossy link) calls bob: %v", err)
	}
	eventually(t, 30*time.Second, "the call record on every node", func(ctx context.Context) error {
		var errs []error
		for _, n := range c.nodes {
			errs = append(errs, checkRecords(ctx, n, []string{callID}))
		}
		return errors.Join(errs...)
	})
	final := c.leader(c.nodes, 30*time.Second)
	lossFor := time.Since(lossy)
	c.lab.heal()

	slices.Sort(took)
	t.Logf("FIGURES lossy links (%d %% each way between nodes, %v): leader %s before and %s after (kept: %v); "+
		"%d revisions applied through a follower, each acknowledged (%d tries answered 503 and retried): p50 %v, max %v; "+
		"alice registered across a lossy link in %v, both phones on every node %v after; a call across it connected and ended in %v (with 0.2 s talk; %d failed tries before); call record on every node; lost 0",
		chaosLossPct, lossFor.Round(time.Millisecond), leader.id, final.id, final == leader,
		revisions, retries, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
		aliceReg.Round(time.Millisecond), shared.Round(time.Millisecond), callTook.Round(time.Millisecond), callTries)
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}
