package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// parkSetup is bob (a goPhone) in a call with alice (a desk phone, whose
// media flows directly), each with a tone of its own; with bobDesk, bob's
// registered desk phone too (it answers ring-backs) and its own tone.
type parkSetup struct {
	n          *node
	ctx        context.Context
	cancel     context.CancelFunc
	alice      *deskPhone
	bob        *goPhone
	toAlice    *sipgo.DialogClientSession // bob's call with alice
	bobDesk    *deskPhone
	aliceRTP   *rtpPhone
	bobRTP     *rtpPhone
	bobDeskRTP *rtpPhone
	aliceHz    float64
	bobHz      float64
	bobDeskHz  float64
	carolHz    float64 // the tone of a phone that retrieves the call
}

func startParkCall(t *testing.T, id, extra string, bobDesk bool) *parkSetup {
	t.Helper()
	needSIPp(t)
	s := &parkSetup{aliceHz: 1000, bobHz: 1400, bobDeskHz: 1800, carolHz: 600}
	s.n = startNode(t, id, nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)), extra: extra})
	waitRevision(t, []*node{s.n}, 1)
	s.aliceRTP = newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, s.aliceHz)
	s.bobRTP = newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, s.bobHz)
	s.alice = newDeskPhone(t, s.n, "alice", s.aliceRTP)
	if bobDesk {
		s.bobDeskRTP = newRTPPhone(t, "bob's desk phone", "127.0.0.1", g711.PCMU, s.bobDeskHz)
		s.bobDesk = newDeskPhone(t, s.n, "bob", s.bobDeskRTP)
	}
	s.bob = newGoPhone(t, s.n, "bob", "pw-bob")
	s.bob.media = s.bobRTP
	s.ctx, s.cancel = context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(s.cancel)

	s.toAlice = s.bob.call(s.ctx, t, "1001")
	s.bobRTP.pointAt(s.toAlice.InviteResponse.Body(), "sendrecv")
	checkHearing(t, map[*rtpPhone][2][]float64{s.aliceRTP: {{s.bobHz}, nil}, s.bobRTP: {{s.aliceHz}, nil}})
	return s
}

// park has bob transfer alice to the park code; it returns the final
// NOTIFY's sipfrag once alice hears music and bob's leg has ended.
func (s *parkSetup) park(t *testing.T) string {
	t.Helper()
	frag := referFinal(s.ctx, t, s.n, s.bob, s.toAlice, "<sip:*68@acme.example>")
	select {
	case dir := <-s.alice.reinv:
		if dir != "sendonly" {
			t.Fatalf("alice was re-INVITEd %s on park, want sendonly (the node sends her music)", dir)
		}
	case <-s.ctx.Done():
		t.Fatalf("alice was not re-INVITEd toward the music\n%s", s.n.log())
	}
	eventually(t, 5*time.Second, "bob's leg released", func(context.Context) error {
		if st := s.toAlice.LoadState(); st != sip.DialogStateEnded {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
	s.bobRTP.setPeer(netip.AddrPort{}) // hung up: bob's phone stops sending
	s.aliceRTP.waitMusic(t, s.n, s.bobHz)
	return strings.TrimSpace(frag)
}

// noneParked waits until GET /api/v1/calls shows no parked call.
func noneParked(t *testing.T, n *node) {
	t.Helper()
	eventually(t, 5*time.Second, "no call parked", func(ctx context.Context) error {
		cs, err := liveCalls(ctx, n)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.State == "parked" {
				return fmt.Errorf("slot %d still holds a call", c.Slot)
			}
		}
		return nil
	})
}

// Call park and retrieval: bob, in a call with alice, transfers her to
// *68; alice hears music on hold, bob's final NOTIFY names slot 1, the API
// shows her parked there; carol (another phone of the site) dials *881
// and alice and carol hear each other; the slot is free again and a
// second *881 finds nobody (404).
func TestParkRetrieve(t *testing.T) {
	s := startParkCall(t, "park", "", false)
	if frag := s.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q, want SIP/2.0 200 Parked on slot 1\n%s", frag, s.n.log())
	}
	waitCall(t, s.n, 5*time.Second, "alice parked on slot 1", "", func(c apiCall) error {
		if c.State != "parked" || c.Slot != 1 || c.ParkedBy != "bob" {
			return fmt.Errorf("state %s slot %d parked by %q", c.State, c.Slot, c.ParkedBy)
		}
		return nil
	})

	carolRTP := newRTPPhone(t, "carol", "127.0.0.1", g711.PCMU, s.carolHz)
	carol := newGoPhone(t, s.n, "carol", "pw-carol")
	carol.media = carolRTP
	toAlice := carol.call(s.ctx, t, "*881")
	carolRTP.pointAt(toAlice.InviteResponse.Body(), "sendrecv")
	select {
	case dir := <-s.alice.reinv:
		if dir != "sendrecv" {
			t.Fatalf("alice was re-INVITEd %s on retrieval, want sendrecv", dir)
		}
	case <-s.ctx.Done():
		t.Fatalf("alice was not re-INVITEd toward carol\n%s", s.n.log())
	}
	checkHearing(t, map[*rtpPhone][2][]float64{
		s.aliceRTP: {{s.carolHz}, {s.bobHz}},
		carolRTP:   {{s.aliceHz}, nil},
	})
	noneParked(t, s.n)

	// The slot is empty now: 404, and carol's call with alice goes on.
	again := newGoPhone(t, s.n, "carol", "pw-carol")
	if code := again.refused(s.ctx, t, "*881"); code != 404 {
		t.Errorf("*881 on an empty slot: %d, want 404", code)
	}
	if err := toAlice.Bye(s.ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the park journalled", func(ctx context.Context) error {
		recs, err := s.n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		var parked, taken bool
		for _, r := range recs {
			parked = parked || r.Route == "park" && r.Disposition == "transferred"
			taken = taken || r.Caller == "carol" && r.Dialled == "*881" && r.Callee == "carol" && r.Disposition == "answered"
		}
		if !parked || !taken {
			return fmt.Errorf("want the park transferred and carol's *881 answered, have %+v", recs)
		}
		return nil
	})
}

// An unretrieved parked call rings the parker back: with
// calls.park_timeout 2s, bob parks alice and nobody dials *881; bob's
// registered desk phone rings about two seconds later, answers, and bob
// and alice hear each other.
func TestParkRingback(t *testing.T) {
	s := startParkCall(t, "park-ringback", "calls:\n  park_timeout: 2s\n", true)
	parkedAt := time.Now()
	if frag := s.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q\n%s", frag, s.n.log())
	}
	var ds *sipgo.DialogServerSession
	select {
	case ds = <-s.bobDesk.calls:
	case <-s.ctx.Done():
		t.Fatalf("bob was never rung back\n%s", s.n.log())
	}
	if took := time.Since(parkedAt); took < 2*time.Second || took > 10*time.Second {
		t.Errorf("the ring-back came %v after parking, want about 2 s", took)
	}
	select {
	case dir := <-s.alice.reinv:
		if dir != "sendrecv" {
			t.Fatalf("alice was re-INVITEd %s on the ring-back's answer, want sendrecv", dir)
		}
	case <-s.ctx.Done():
		t.Fatalf("alice was not re-INVITEd toward bob's desk phone\n%s", s.n.log())
	}
	checkHearing(t, map[*rtpPhone][2][]float64{
		s.aliceRTP:   {{s.bobDeskHz}, {s.bobHz}},
		s.bobDeskRTP: {{s.aliceHz}, nil},
	})
	noneParked(t, s.n)
	if err := ds.Bye(s.ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the ring-back journalled", func(ctx context.Context) error {
		recs, err := s.n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Route == "park:ringback" && r.Callee == "bob" && r.Disposition == "answered" {
				return nil
			}
		}
		return fmt.Errorf("no answered park:ringback record in %+v", recs)
	})
}
