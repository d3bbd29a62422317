package e2e

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
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
// second *881 is told nobody is parked there.
func TestParkRetrieve(t *testing.T) {
	s := startParkCall(t, "park", "", false)
	if frag := s.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q, want SIP/2.0 200 Parked on slot 1\n%s", frag, s.n.log())
	}
	waitParked(t, s.n, 1, "bob")

	_, carolRTP, toAlice := carolCalls(t, s, s.n, "*881")
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

	// The slot is empty now: the node says so, and carol's call with
	// alice goes on.
	emptySlot(t, s, "carol", "*881", s.carolHz)
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
	ds := rungBack(t, s, parkedAt, s.n)
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

// hearsPrompts checks that ph, from sample from on, hears the built-in
// prompts names one after the other: each found (within a second of
// where the one before it ended) at a normalised correlation over 0.8
// with the prompt itself, G.711 and all.
func hearsPrompts(t *testing.T, n *node, ph *rtpPhone, from int, names ...string) {
	t.Helper()
	const slack = 8000 // a second of silence or pacing before each prompt
	at := from
	for _, name := range names {
		p, err := prompts.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		want := p.Samples
		x := ph.settled(at, len(want), slack, time.Duration(len(want)+slack)*time.Second/8000+5*time.Second)
		if x == nil {
			t.Fatalf("%s heard %d samples, want the prompt %s (%d samples) after sample %d\n%s",
				ph.name, ph.received(), name, len(want), at, n.log())
		}
		best, lag := 0.0, 0
		for l := 0; l+len(want) <= len(x); l++ {
			if c := correlation(x[l:l+len(want)], want); c > best {
				best, lag = c, l
			}
		}
		if best < 0.8 {
			t.Fatalf("%s did not hear %s after sample %d: best correlation %.2f", ph.name, name, at, best)
		}
		t.Logf("%s hears %s (%.2f s) at sample %d, correlation %.2f", ph.name, name, p.Duration().Seconds(), at+lag, best)
		at += lag + len(want)
	}
}

// settled is the audio ph hears from sample from on: n samples and up to
// extra more, fewer extra when the audio stops (the call ended) for
// 300 ms; nil when n have not arrived within wait.
func (ph *rtpPhone) settled(from, n, extra int, wait time.Duration) []int16 {
	deadline := time.Now().Add(wait)
	last, since := -1, time.Now()
	for {
		got := ph.received()
		if got != last {
			last, since = got, time.Now()
		}
		if got >= from+n+extra || got >= from+n && time.Since(since) > 300*time.Millisecond {
			return ph.window(from, min(got, from+n+extra)-from, deadline)
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// correlation is the normalised correlation of two equal-length signals.
func correlation(a, b []int16) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// reinvitedTo waits for the desk phone's next re-INVITE and checks its
// direction.
func reinvitedTo(t *testing.T, s *parkSetup, p *deskPhone, want, why string) {
	t.Helper()
	select {
	case dir := <-p.reinv:
		if dir != want {
			t.Fatalf("%s was re-INVITEd %s %s, want %s", p.user, dir, why, want)
		}
	case <-s.ctx.Done():
		t.Fatalf("%s was not re-INVITEd %s\n%s", p.user, why, s.n.log())
	}
}

// ended waits for a phone's dialog to end (the node hung it up).
func ended(t *testing.T, s *sipgo.DialogClientSession, what string) {
	t.Helper()
	eventually(t, 5*time.Second, what, func(context.Context) error {
		if st := s.LoadState(); st != sip.DialogStateEnded {
			return fmt.Errorf("state %v", st)
		}
		return nil
	})
}

// emptySlot dials the retrieve code for an empty slot: the node answers,
// says there is no call parked there and hangs up.
func emptySlot(t *testing.T, s *parkSetup, user, dial string, freq float64) {
	t.Helper()
	rtpPh := newRTPPhone(t, user+" on an empty slot", "127.0.0.1", g711.PCMU, freq)
	p := newGoPhone(t, s.n, user, "pw-"+user)
	p.media = rtpPh
	d := p.call(s.ctx, t, dial)
	rtpPh.pointAt(d.InviteResponse.Body(), "sendrecv")
	hearsPrompts(t, s.n, rtpPh, 0, "park-empty")
	ended(t, d, "the node hangs up "+dial)
}

// Attended park, as a phone's park key in "feature access code" style
// does it: bob, in a call with alice, holds her (she hears music) and
// dials *68; the node answers and bob hears "Parked on slot" "one"; bob
// REFERs alice to *68 with Replaces naming that call; alice is parked on
// slot 1 (the API shows it) hearing music, and both of bob's calls are
// hung up; carol dials *881 and talks with alice. Then the other way
// round: carol holds alice, dials *68, hears slot 1 announced and REFERs
// in that call with Replaces naming her call with alice; alice is parked
// on slot 1 again. *889, an empty slot, is answered with "There is no
// call parked on that slot" and hung up.
func TestParkAttended(t *testing.T) {
	s := startParkCall(t, "park-attended", "", false)
	s.bob.reinvite(s.ctx, t, s.toAlice, 2, "sendonly")
	reinvitedTo(t, s, s.alice, "sendonly", "on hold")
	s.aliceRTP.waitMusic(t, s.n, s.bobHz)

	from := s.bobRTP.received()
	announce := s.bob.call(s.ctx, t, "*68")
	s.bobRTP.pointAt(announce.InviteResponse.Body(), "sendrecv")
	hearsPrompts(t, s.n, s.bobRTP, from, "park-parked", "num-1")
	waitCall(t, s.n, 5*time.Second, "alice still held by bob", "", func(c apiCall) error {
		if c.State == "parked" {
			return fmt.Errorf("parked before the REFER")
		}
		return nil
	})

	referTo := "<sip:*68@acme.example?Replaces=" + url.QueryEscape(replacesOf(announce)) + ">"
	if frag := strings.TrimSpace(referFinal(s.ctx, t, s.n, s.bob, s.toAlice, referTo)); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q, want SIP/2.0 200 Parked on slot 1\n%s", frag, s.n.log())
	}
	ended(t, announce, "the node hangs up bob's call to *68")
	ended(t, s.toAlice, "the node hangs up bob's held call")
	s.bobRTP.setPeer(netip.AddrPort{})
	reinvitedTo(t, s, s.alice, "sendonly", "toward the park's music")
	s.aliceRTP.waitMusic(t, s.n, s.bobHz)
	waitParked(t, s.n, 1, "bob")

	carol, carolRTP, toAlice := carolCalls(t, s, s.n, "*881")
	reinvitedTo(t, s, s.alice, "sendrecv", "toward carol")
	checkHearing(t, map[*rtpPhone][2][]float64{
		s.aliceRTP: {{s.carolHz}, {s.bobHz}},
		carolRTP:   {{s.aliceHz}, nil},
	})
	noneParked(t, s.n)

	// The other way round: the REFER in the call to *68.
	carol.reinvite(s.ctx, t, toAlice, 2, "sendonly")
	reinvitedTo(t, s, s.alice, "sendonly", "on carol's hold")
	from = carolRTP.received()
	announce = carol.call(s.ctx, t, "*68")
	carolRTP.pointAt(announce.InviteResponse.Body(), "sendrecv")
	hearsPrompts(t, s.n, carolRTP, from, "park-parked", "num-1")
	referTo = "<sip:1001@acme.example?Replaces=" + url.QueryEscape(replacesOf(toAlice)) + ">"
	if frag := strings.TrimSpace(referFinal(s.ctx, t, s.n, carol, announce, referTo)); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("final NOTIFY %q, want SIP/2.0 200 Parked on slot 1\n%s", frag, s.n.log())
	}
	ended(t, announce, "the node hangs up carol's call to *68")
	ended(t, toAlice, "the node hangs up carol's held call")
	reinvitedTo(t, s, s.alice, "sendonly", "toward the park's music")
	waitParked(t, s.n, 1, "carol")

	emptySlot(t, s, "carol", "*889", s.carolHz)
	eventually(t, 10*time.Second, "the attended parks journalled", func(ctx context.Context) error {
		recs, err := s.n.client().Journal(ctx, 20)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for _, r := range recs {
			counts[r.Dialled+" "+r.Route+" "+r.Disposition]++
		}
		if counts["*68 park:attended transferred"] != 2 || counts["*889 park:empty answered"] != 1 {
			return fmt.Errorf("want two *68 calls transferred and *889 answered, have %v", counts)
		}
		return nil
	})
}

// Attended park given up, with one slot: bob holds alice, dials *68 and
// hears slot 1 announced; carol dialling *68 meanwhile hears that every
// slot is in use and is hung up; bob hangs up his call to *68: alice
// stays held (nobody is parked) and slot 1 is free again: a blind park of
// alice now takes it.
func TestParkAttendedCancel(t *testing.T) {
	s := startParkCall(t, "park-cancel", "calls:\n  park_slots: 1\n", false)
	s.bob.reinvite(s.ctx, t, s.toAlice, 2, "sendonly")
	reinvitedTo(t, s, s.alice, "sendonly", "on hold")
	from := s.bobRTP.received()
	announce := s.bob.call(s.ctx, t, "*68")
	s.bobRTP.pointAt(announce.InviteResponse.Body(), "sendrecv")
	hearsPrompts(t, s.n, s.bobRTP, from, "park-parked", "num-1")

	_, carolRTP, full := carolCalls(t, s, s.n, "*68")
	hearsPrompts(t, s.n, carolRTP, 0, "park-full")
	ended(t, full, "the node hangs up carol's *68 with every slot taken")

	if err := announce.Bye(s.ctx); err != nil {
		t.Fatal(err)
	}
	if frag := s.park(t); frag != "SIP/2.0 200 Parked on slot 1" {
		t.Fatalf("blind park after the cancelled one: %q, want slot 1\n%s", frag, s.n.log())
	}
}

// waitParked waits until n lists alice's call parked on slot by parker.
func waitParked(t *testing.T, n *node, slot int, parker string) {
	t.Helper()
	waitCall(t, n, 5*time.Second, fmt.Sprintf("alice parked on slot %d by %s", slot, parker), "", func(c apiCall) error {
		if c.State != "parked" || c.Slot != slot || c.ParkedBy != parker {
			return fmt.Errorf("state %s slot %d parked by %q", c.State, c.Slot, c.ParkedBy)
		}
		return nil
	})
}

// carolCalls registers carol on n with a media phone and dials dial; her
// media goes to the node's answer.
func carolCalls(t *testing.T, s *parkSetup, n *node, dial string) (*goPhone, *rtpPhone, *sipgo.DialogClientSession) {
	t.Helper()
	carolRTP := newRTPPhone(t, "carol", "127.0.0.1", g711.PCMU, s.carolHz)
	carol := newGoPhone(t, n, "carol", "pw-carol")
	carol.media = carolRTP
	call := carol.call(s.ctx, t, dial)
	carolRTP.pointAt(call.InviteResponse.Body(), "sendrecv")
	return carol, carolRTP, call
}

// rungBack waits for the ring-back of a call parked at parkedAt (with a
// park timeout of 2 s) on bob's desk phone, which answers, and for alice's
// re-INVITE toward it; logs are the nodes' to show on failure.
func rungBack(t *testing.T, s *parkSetup, parkedAt time.Time, logs ...*node) *sipgo.DialogServerSession {
	t.Helper()
	dump := func() string {
		var b strings.Builder
		for _, n := range logs {
			b.WriteString(n.log())
		}
		return b.String()
	}
	var ds *sipgo.DialogServerSession
	select {
	case ds = <-s.bobDesk.calls:
	case <-s.ctx.Done():
		t.Fatalf("bob's desk phone was never rung back\n%s", dump())
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
		t.Fatalf("alice was not re-INVITEd toward bob's desk phone\n%s", dump())
	}
	return ds
}
