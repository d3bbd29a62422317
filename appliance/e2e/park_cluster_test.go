package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Call park is site-wide across the nodes of a cluster (two nodes of
// site hq): bob on n1 parks alice (a blind REFER to *68) on slot 1; on
// n2, carol parks bob's desk phone while slot 1 is held on n1 and gets
// slot 2; carol, registered on n2, dials *881 and she and alice hear each
// other (n2 carries her call to n1, which holds alice); bob, on n1, dials
// *882 and takes his desk phone's call back from n2.
func TestParkAcrossNodes(t *testing.T) {
	n1, n2 := startParkCluster(t, "")

	// alice (a desk phone) and bob on n1, in a call; bob parks her.
	first := aliceAndBobOn(t, n1)
	if frag := first.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("bob parks alice on n1: final NOTIFY %q, want slot 1\n%s", frag, n1.log())
	}

	// On n2, carol calls bob's desk phone and parks it: slot 1 is held on
	// n1, so slot 2. (The setup's "alice" is the parked party, its "bob"
	// the parker.)
	second := &parkSetup{n: n2, ctx: first.ctx, aliceHz: 1800, bobHz: 600}
	second.aliceRTP = newRTPPhone(t, "bob's desk phone", "127.0.0.1", g711.PCMU, second.aliceHz)
	second.bobRTP = newRTPPhone(t, "carol", "127.0.0.1", g711.PCMU, second.bobHz)
	second.alice = newDeskPhone(t, n2, "bob", second.aliceRTP)
	carol := newGoPhone(t, n2, "carol", "pw-carol")
	carol.media = second.bobRTP
	second.bob = carol
	second.toAlice = carol.call(first.ctx, t, "1002")
	second.bobRTP.pointAt(second.toAlice.InviteResponse.Body(), "sendrecv")
	checkHearing(t, map[*rtpPhone][2][]float64{second.aliceRTP: {{second.bobHz}, nil}, second.bobRTP: {{second.aliceHz}, nil}})
	if frag := second.park(t); frag != "SIP/2.0 200 Parked on slot 2" {
		t.Fatalf("carol parks bob's desk phone on n2 while slot 1 is held on n1: final NOTIFY %q, want slot 2\n%s", frag, n2.log())
	}
	for _, c := range []struct {
		n    *node
		slot int
	}{{n1, 1}, {n2, 2}} {
		waitCall(t, c.n, 5*time.Second, fmt.Sprintf("slot %d parked on %s", c.slot, c.n.id), "", func(a apiCall) error {
			if a.State != "parked" || a.Slot != c.slot {
				return fmt.Errorf("state %s slot %d", a.State, a.Slot)
			}
			return nil
		})
	}

	// carol, on n2, retrieves slot 1, parked on n1.
	carolRTP := second.bobRTP
	toAlice := carol.call(first.ctx, t, "*881")
	carolRTP.pointAt(toAlice.InviteResponse.Body(), "sendrecv")
	select {
	case dir := <-first.alice.reinv:
		if dir != "sendrecv" {
			t.Fatalf("alice was re-INVITEd %s on retrieval, want sendrecv", dir)
		}
	case <-first.ctx.Done():
		t.Fatalf("alice was not re-INVITEd toward carol\n%s\n%s", n1.log(), n2.log())
	}
	checkHearing(t, map[*rtpPhone][2][]float64{
		first.aliceRTP: {{second.bobHz}, {first.bobHz}},
		carolRTP:       {{first.aliceHz}, nil},
	})
	noneParked(t, n1)

	// bob, on n1, retrieves slot 2, parked on n2.
	first.bob.media = nil
	toDesk := first.bob.call(first.ctx, t, "*882")
	select {
	case dir := <-second.alice.reinv:
		if dir != "sendrecv" {
			t.Fatalf("bob's desk phone was re-INVITEd %s on retrieval, want sendrecv", dir)
		}
	case <-first.ctx.Done():
		t.Fatalf("bob's desk phone was not re-INVITEd toward bob\n%s\n%s", n1.log(), n2.log())
	}
	noneParked(t, n2)

	for _, s := range []struct {
		n    *node
		call interface{ Bye(context.Context) error }
	}{{n2, toAlice}, {n1, toDesk}} {
		if err := s.call.Bye(first.ctx); err != nil {
			t.Fatalf("hang up on %s: %v", s.n.id, err)
		}
	}
	eventually(t, 10*time.Second, "carol's *881 journalled on n2", func(ctx context.Context) error {
		recs, err := n2.client().Journal(ctx, 20)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == "carol" && r.Dialled == "*881" && r.Node == "n2" && r.Route == "park:remote" && r.Disposition == "answered" {
				return nil
			}
		}
		return fmt.Errorf("no answered *881 by carol on n2 in %+v", recs)
	})
}

// startParkCluster forms a cluster of two nodes of site hq with the demo
// snapshot, extra in both nodes' configuration.
func startParkCluster(t *testing.T, extra string) (*node, *node) {
	t.Helper()
	needSIPp(t)
	n1 := startNode(t, "n1", nodeOpts{site: "hq", extra: extra, bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	eventually(t, 30*time.Second, "n1 ready", func(ctx context.Context) error {
		st, err := n1.status(ctx)
		if err == nil && !st.Ready {
			err = errors.New(st.NotReadyReason)
		}
		return err
	})
	n2 := startNode(t, "n2", nodeOpts{site: "hq", extra: extra, join: []string{n1.httpAddr}})
	nodes := []*node{n1, n2}
	waitHealthyMembers(t, nodes, 30*time.Second)
	waitRevision(t, nodes, 1)
	return n1, n2
}

// aliceAndBobOn is alice (a desk phone) and bob (a goPhone) on n, in a
// call, hearing each other.
func aliceAndBobOn(t *testing.T, n *node) *parkSetup {
	t.Helper()
	s := &parkSetup{n: n, aliceHz: 1000, bobHz: 1400, bobDeskHz: 1800}
	s.ctx, s.cancel = context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(s.cancel)
	s.aliceRTP = newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, s.aliceHz)
	s.bobRTP = newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, s.bobHz)
	s.alice = newDeskPhone(t, n, "alice", s.aliceRTP)
	s.bob = newGoPhone(t, n, "bob", "pw-bob")
	s.bob.media = s.bobRTP
	s.toAlice = s.bob.call(s.ctx, t, "1001")
	s.bobRTP.pointAt(s.toAlice.InviteResponse.Body(), "sendrecv")
	checkHearing(t, map[*rtpPhone][2][]float64{s.aliceRTP: {{s.bobHz}, nil}, s.bobRTP: {{s.aliceHz}, nil}})
	return s
}

// The ring-back stays with the node holding the parked call and reaches
// the parker's phone on another node: with calls.park_timeout 2s, bob
// parks alice on n1; bob's desk phone, registered on n2 only, rings
// about two seconds later, answers, and bob and alice hear each other.
func TestParkRingbackAcrossNodes(t *testing.T) {
	n1, n2 := startParkCluster(t, "calls:\n  park_timeout: 2s\n")
	s := aliceAndBobOn(t, n1)
	s.bobDeskRTP = newRTPPhone(t, "bob's desk phone", "127.0.0.1", g711.PCMU, s.bobDeskHz)
	s.bobDesk = newDeskPhone(t, n2, "bob", s.bobDeskRTP)
	eventually(t, 15*time.Second, "the desk phone's registration on n2 reaches n1", func(ctx context.Context) error {
		st, err := n1.status(ctx)
		if err == nil && st.Registrations != 2 {
			err = fmt.Errorf("%d registrations, want alice's and bob's desk phones", st.Registrations)
		}
		return err
	})
	parkedAt := time.Now()
	if frag := s.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q\n%s", frag, n1.log())
	}
	ds := rungBack(t, s, parkedAt, n1, n2)
	checkHearing(t, map[*rtpPhone][2][]float64{
		s.aliceRTP:   {{s.bobDeskHz}, {s.bobHz}},
		s.bobDeskRTP: {{s.aliceHz}, nil},
	})
	noneParked(t, n1)
	if err := ds.Bye(s.ctx); err != nil {
		t.Fatal(err)
	}
}
