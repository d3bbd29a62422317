package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// The leader is cut off from the other two (nftables drops every packet
// between its namespace and theirs). The two elect a leader and go on:
// they apply a new revision, register phones and connect a call. The cut
// node keeps serving its last configuration, says it has no quorum,
// refuses writes, and still registers its phones and connects a call
// between them. After the heal every node holds every registration and
// every call record of both sides exactly once, and the same revision.
func TestChaosPartition(t *testing.T) {
	began := time.Now()
	c := newChaosCluster(t, demoSnapshot(t), nil)
	ctx := context.Background()
	old := c.leader(c.nodes, 30*time.Second)
	majority := others(c.nodes, old)
	t.Logf("cluster formed in %v; leader %s", time.Since(began).Round(time.Millisecond), old.id)

	// Before the cut: carol on a node of the majority, seen everywhere.
	carol := newChaosPhone(t, c.host(majority[0]), majority[0], "carol")
	carol.register(20 * time.Second)
	want := map[string]string{"carol": carol.contact()}
	for _, n := range c.nodes {
		eventually(t, 20*time.Second, n.id+" sees carol", func(ctx context.Context) error { return checkBindings(ctx, n, want) })
	}

	// The cut.
	c.lab.isolate(c.host(old))
	cut := time.Now()
	leader, took := c.waitLeaderChange(majority, old, cut, 30*time.Second)
	t.Logf("new leader %s %v after the cut", leader.id, took.Round(time.Millisecond))
	var noQuorum time.Duration
	eventually(t, 30*time.Second, old.id+" says it has no quorum", func(ctx context.Context) error {
		st, err := old.status(ctx)
		if err != nil {
			return err
		}
		if st.Quorum || st.Leader != "" {
			return fmt.Errorf("quorum=%v leader=%q", st.Quorum, st.Leader)
		}
		noQuorum = time.Since(cut)
		return nil
	})
	t.Logf("%s reports quorum=false %v after the cut", old.id, noQuorum.Round(time.Millisecond))

	// The majority goes on: a new revision, phones, a call across its two
	// nodes.
	rev2 := withRevision(t, demoSnapshot(t), 2, func(m map[string]any) {
		m["account"].(map[string]any)["name"] = "Acme Corp (written by the majority)"
	})
	if rev, err := majority[1].client().ApplySnapshot(ctx, rev2); err != nil || rev != 2 {
		t.Fatalf("apply revision 2 on the majority: %d %v", rev, err)
	}
	doc2 := waitRevision(t, majority, 2)
	dave := newChaosPhone(t, c.host(majority[0]), majority[0], "dave")
	erin := newChaosPhone(t, c.host(majority[1]), majority[1], "erin")
	dave.register(20 * time.Second)
	erin.register(20 * time.Second)
	for _, n := range majority {
		eventually(t, 20*time.Second, n.id+" sees erin", func(ctx context.Context) error {
			return checkBindings(ctx, n, map[string]string{"erin": erin.contact()})
		})
	}
	var calls []string
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	id, err := dave.call(cctx, "2002", 200*time.Millisecond) // erin, on the other node of the majority
	cancel()
	if err != nil {
		t.Fatalf("a call within the majority: %v", err)
	}
	calls = append(calls, id)

	// The cut node: its last configuration, read-only; its phones.
	st, err := old.status(ctx)
	if err != nil || st.Revision != 1 || st.Quorum || st.Ready {
		t.Errorf("%s during the cut: revision %d quorum %v ready %v (%v); want revision 1, no quorum, not ready",
			old.id, st.Revision, st.Quorum, st.Ready, err)
	}
	code, body := post(t, "http://"+old.httpAddr+"/api/v1/snapshot", testToken, withRevision(t, demoSnapshot(t), 3, nil))
	if code != http.StatusServiceUnavailable {
		t.Errorf("a write on the cut node: HTTP %d %s, want 503", code, body)
	}
	alice := newChaosPhone(t, c.host(old), old, "alice")
	bob := newChaosPhone(t, c.host(old), old, "bob")
	served := time.Now()
	alice.register(20 * time.Second)
	bob.register(20 * time.Second)
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	id, err = alice.call(cctx, "1002", 200*time.Millisecond) // bob
	cancel()
	if err != nil {
		t.Fatalf("a call on the cut node: %v\n%s", err, old.log())
	}
	calls = append(calls, id)
	t.Logf("the cut node registered 2 phones and connected a call between them in %v", time.Since(served).Round(time.Millisecond))
	if bob.answeredCalls() != 1 || erin.answeredCalls() != 1 {
		t.Errorf("answered: bob %d, erin %d; want 1 each", bob.answeredCalls(), erin.answeredCalls())
	}
	eventually(t, 10*time.Second, old.id+" counts its phones", func(ctx context.Context) error {
		st, err := old.status(ctx)
		if err == nil && st.Registrations != 3 { // carol (from before) + alice + bob
			err = fmt.Errorf("%d registrations, want 3", st.Registrations)
		}
		return err
	})
	// The majority does not see the minority's phones yet, nor it theirs.
	if err := checkBindings(ctx, leader, map[string]string{"alice": alice.contact()}); err == nil {
		t.Error("the majority sees alice during the cut")
	}
	// The cut lasts 10 s at least: the cut node keeps calling elections
	// meanwhile, each with a higher term.
	if d := 10*time.Second - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	cutFor := time.Since(cut)
	before, err := c.leader(majority, 10*time.Second).status(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The heal. The majority's leader stays (the cut node's pre-votes
	// fail: its log is behind), and the cut node follows it.
	c.lab.heal()
	healed := time.Now()
	want["alice"], want["bob"] = alice.contact(), bob.contact()
	want["dave"], want["erin"] = dave.contact(), erin.contact()
	var converged time.Duration
	eventually(t, 60*time.Second, "every node holds both sides' phones and calls, once, at revision 2", func(ctx context.Context) error {
		var errs []error
		for _, n := range c.nodes {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Revision != 2 || !st.Quorum || st.Leader == "" {
				errs = append(errs, fmt.Errorf("%s: revision %d quorum %v leader %q", n.id, st.Revision, st.Quorum, st.Leader))
				continue
			}
			errs = append(errs, checkBindings(ctx, n, want), checkRecords(ctx, n, calls))
		}
		converged = time.Since(healed)
		return errors.Join(errs...)
	})
	t.Logf("after the heal every node converged in %v", converged.Round(time.Millisecond))
	if d := waitRevision(t, c.nodes, 2); string(d) != string(doc2) {
		t.Error("the healed node serves a revision 2 other than the majority's")
	}
	final := c.leader(c.nodes, 30*time.Second)
	if final.id != before.Leader {
		t.Errorf("the heal moved the leadership from %s to %s", before.Leader, final.id)
	}
	for _, n := range c.nodes {
		if st, err := n.status(ctx); err != nil || st.Registrations != len(want) {
			t.Errorf("%s: %d registrations (%v), want %d", n.id, st.Registrations, err, len(want))
		}
	}
	users := make([]string, 0, len(want))
	for u := range want {
		users = append(users, u)
	}
	slices.Sort(users)
	t.Logf("FIGURES partition: new leader %v after the cut; cut node quorum=false after %v; phones served by the cut node during the cut: 2 registered, 1 call of 1 connected; "+
		"cut for %v; converged %v after the heal (leader %s, the majority's kept: %v); bindings %v once each on every node; call records %d of %d, once each; lost 0",
		took.Round(time.Millisecond), noQuorum.Round(time.Millisecond), cutFor.Round(time.Millisecond), converged.Round(time.Millisecond), final.id, final.id == before.Leader, users, len(calls), len(calls))
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}
