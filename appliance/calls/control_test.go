package calls

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/outpost-voice/outpost/account"
	relay "github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/store"
)

// userBook is phoneBook with alice as a user of the account (the
// click-to-call user), found by ID and by username.
type userBook struct{ *phoneBook }

var alice = account.User{ID: "u-alice", Site: "hq", Extension: "1001", Name: "Alice",
	SIP: account.SIPCredentials{Username: "alice"}}

func (d userBook) UserByID(ctx context.Context, id string) (account.User, error) {
	if id == alice.ID {
		return alice, nil
	}
	return d.phoneBook.UserByID(ctx, id)
}

func (d userBook) UserByUsername(ctx context.Context, name string) (account.User, error) {
	for _, id := range []string{"u-alice", "u-bob", "u-carol"} {
		if u, err := d.UserByID(ctx, id); err == nil && u.SIP.Username == name {
			return u, nil
		}
	}
	return account.User{}, store.ErrNotFound
}

// relayAnchor is the node's relay as the B2BUA's Anchor (appliance/node
// adapts it the same way).
type relayAnchor struct{ r *relay.Relay }

func (a relayAnchor) Allocate(callID string, onTimeout func()) (MediaSession, error) {
	s, err := a.r.Allocate(callID, func(*relay.Session) {
		if onTimeout != nil {
			onTimeout()
		}
	})
	if err != nil {
		return nil, err
	}
	return relaySession{s}, nil
}

// autoAnswer answers every call at once, as a phone honouring
// Call-Info: answer-after=0 does.
func autoAnswer(p *simPhone, ds *sipgo.DialogServerSession) {
	sdp := p.sdp("sendrecv")
	p.emitBody("200", nil, sdp)
	if ds.RespondSDP(sdp) == nil {
		p.answered <- ds
	}
}

// ctcNode is a node with a relay, alice's phone (answering at once) and
// bob's (ringing until picked up).
func ctcNode(t *testing.T) (*simNode, *simPhone, *simPhone) {
	t.Helper()
	r, err := relay.New(relay.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 33000, PortMax: 33063,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	dir := userBook{newPhoneBook()}
	node := startNode(t, "n1", dir)
	node.b.SetTrunks(&Trunks{Anchor: relayAnchor{r}})
	a := startPhone(t, "alice", autoAnswer)
	bob := startPhone(t, "bob", onCue)
	dir.bind("alice", "a-1", a.contactURI, a.addr, "n1")
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	return node, a, bob
}

// next reads the next engagement event.
func next(t *testing.T, ch <-chan EngagementEvent, kind string) EngagementEvent {
	t.Helper()
	for {
		select {
		case ev := <-ch:
			if ev.Kind == EvAgentStatus && kind != EvAgentStatus {
				continue // Occupied and back: TestAgentOccupied
			}
			if ev.Kind != kind {
				t.Fatalf("event %s (%+v), want %s", ev.Kind, ev.Engagement, kind)
			}
			return ev
		case <-time.After(waitFor):
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestAgentOccupied: a user's first live call makes them Occupied, the
// last one ending gives back what they set.
func TestAgentOccupied(t *testing.T) {
	b := &B2BUA{}
	ch, stop := b.Subscribe("alice")
	defer stop()
	if err := b.SetAgentStatus("alice", AgentNotReady); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Kind != EvAgentStatus || ev.AgentStatus != AgentNotReady {
		t.Fatalf("%+v", ev)
	}
	b.engage("alice", Engagement{ID: "e1", State: EngRinging}, EvRinging, nil, EngagementEvent{})
	<-ch
	if ev := <-ch; ev.Kind != EvAgentStatus || ev.AgentStatus != AgentOccupied {
		t.Fatalf("after the first call: %+v", ev)
	}
	b.engage("alice", Engagement{ID: "e2", State: EngRinging}, EvRinging, nil, EngagementEvent{})
	<-ch
	b.engage("alice", Engagement{ID: "e1"}, EvNotConnected, nil, EngagementEvent{})
	<-ch
	select {
	case ev := <-ch:
		t.Fatalf("status changed with a call left: %+v", ev)
	default:
	}
	b.engage("alice", Engagement{ID: "e2"}, EvNotConnected, nil, EngagementEvent{})
	<-ch
	if ev := <-ch; ev.Kind != EvAgentStatus || ev.AgentStatus != AgentNotReady {
		t.Fatalf("after the last call: %+v", ev)
	}
}

// TestClickToCall: the widget's click-to-call rings alice's own phone,
// which answers at once; then bob's phone, as a call from alice; hold,
// mute and a key reach bob as re-INVITEs and an INFO; hanging up ends
// both legs and closes one record, told to alice's subscribers.
func TestClickToCall(t *testing.T) {
	node, a, bob := ctcNode(t)
	events, stop := node.b.Subscribe("alice")
	defer stop()
	ctx := context.Background()

	e, err := node.b.ClickToCall(ctx, "alice", "1002")
	if err != nil {
		t.Fatal(err)
	}
	if e.ID == "" || e.Direction != "outbound" || e.To != "1002" {
		t.Fatalf("engagement %+v", e)
	}
	next(t, events, EvStarted)
	inv := a.expect(t, "INVITE")
	if ci := inv.req.GetHeader("Call-Info"); ci == nil || !strings.Contains(ci.Value(), "answer-after=0") {
		t.Fatalf("alice's phone was not asked to answer at once: %v", inv.req.GetHeader("Call-Info"))
	}
	if !bytes.Contains(inv.body, []byte("c=IN IP4 127.0.0.1")) || !bytes.Contains(inv.body, []byte("PCMU")) {
		t.Fatalf("alice's phone was not offered the relay:\n%s", inv.body)
	}
	a.expect(t, "200", "ACK")
	binv := bob.expect(t, "INVITE", "180")
	_ = binv
	ringing := next(t, events, EvRinging)
	if ringing.Engagement.ID != e.ID || ringing.Engagement.Direction != "outbound" {
		t.Fatalf("ringing %+v", ringing.Engagement)
	}
	bob.pickUp(t)
	bob.expect(t, "200", "ACK")
	connected := next(t, events, EvConnected)
	if connected.Engagement.State != EngConnected || connected.Engagement.Accepted.IsZero() {
		t.Fatalf("connected %+v", connected.Engagement)
	}
	if node.b.Active() != 1 {
		t.Errorf("active calls %d, want 1 (the bridge is not a call of its own)", node.b.Active())
	}

	// Hold, mute, a key.
	for _, step := range []struct {
		name string
		do   func() error
		want string
	}{
		{"hold", func() error { return node.b.Hold(ctx, "alice", e.ID, true) }, "a=inactive"},
		{"unhold", func() error { return node.b.Hold(ctx, "alice", e.ID, false) }, "a=sendrecv"},
		{"mute", func() error { return node.b.Mute(ctx, "alice", e.ID, true) }, "a=recvonly"},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		re := bob.expect(t, "INVITE")
		if !bytes.Contains(re.body, []byte(step.want)) {
			t.Fatalf("%s: bob's re-INVITE has no %s:\n%s", step.name, step.want, re.body)
		}
		bob.expect(t, "200", "ACK")
		next(t, events, EvChanged)
	}
	if err := node.b.SendDTMF(ctx, "alice", e.ID, '5'); err != nil {
		t.Fatal(err)
	}
	info := bob.expect(t, "INFO")
	if !bytes.Contains(info.body, []byte("Signal=5")) {
		t.Fatalf("INFO body %q", info.body)
	}
	bob.expect(t, "200")
	if err := node.b.SendDTMF(ctx, "alice", e.ID, 'x'); err == nil {
		t.Error("a key that is not 0-9 * # was sent")
	}
	if err := node.b.Hold(ctx, "carol", e.ID, true); !errors.Is(err, ErrNoEngagement) {
		t.Errorf("carol acting on alice's engagement: %v, want ErrNoEngagement", err)
	}

	if err := node.b.Hangup(ctx, "alice", e.ID); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, "BYE")
	a.expect(t, "BYE")
	next(t, events, EvEnded)
	log := next(t, events, EvCallLog)
	if log.Record == nil || log.Record.ID != e.ID || log.Record.Caller != "alice" || log.Record.Callee != "bob" ||
		log.Record.Disposition != DispAnswered {
		t.Fatalf("call log %+v", log.Record)
	}
	recs := node.journal.wait(t, 1)
	if len(recs) != 1 || recs[0].ID != e.ID {
		t.Fatalf("journal %+v, want one record %s", recs, e.ID)
	}
	eventually(t, "no call left", func() bool { return node.b.Active() == 0 && node.b.Dialogs() == 0 })
	if got := node.b.Engagements("alice"); len(got) != 0 {
		t.Errorf("engagements left: %+v", got)
	}
}

// TestClickToCallBadInput: nothing is dialled for a bad destination or a
// user without a phone.
func TestClickToCallBadInput(t *testing.T) {
	node, _, _ := ctcNode(t)
	ctx := context.Background()
	if _, err := node.b.ClickToCall(ctx, "alice", "10 02<script>"); !errors.Is(err, ErrBadDestination) {
		t.Errorf("bad destination: %v", err)
	}
	if _, err := node.b.ClickToCall(ctx, "carol", "1002"); !errors.Is(err, ErrNoPhone) {
		t.Errorf("carol has no phone: %v", err)
	}
	if _, err := node.b.ClickToCall(ctx, "mallory", "1002"); err == nil {
		t.Error("a user who does not exist placed a call")
	}
	if err := node.b.Hangup(ctx, "alice", "nope"); !errors.Is(err, ErrNoEngagement) {
		t.Errorf("hang up an unknown engagement: %v", err)
	}
}

// TestRejectRinging: bob rejects alice's call from the widget: his phone
// stops ringing, alice gets 486, bob's subscribers see it not connected.
func TestRejectRinging(t *testing.T) {
	node, a, bob := ctcNode(t)
	events, stop := node.b.Subscribe("bob")
	defer stop()
	call := a.dial(t, node, "1002", a.sdp("sendrecv"))
	bob.expect(t, "INVITE", "180")
	call.progress(t, 180) // before the reject: a 180 right before the 486 may be taken after it
	ringing := next(t, events, EvRinging)
	if ringing.Engagement.Direction != "inbound" || ringing.Engagement.From != "1001" {
		t.Fatalf("ringing %+v", ringing.Engagement)
	}
	if got := node.b.Engagements("bob"); len(got) != 1 || got[0].State != EngRinging {
		t.Fatalf("bob's engagements %+v", got)
	}
	if err := node.b.Reject(context.Background(), "bob", ringing.Engagement.ID); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, "CANCEL")
	if _, err := call.result(t); err == nil {
		t.Fatal("the call was answered")
	}
	if last := call.seen[len(call.seen)-1]; last.StatusCode != 486 {
		t.Fatalf("alice got %d, want 486", last.StatusCode)
	}
	nc := next(t, events, EvNotConnected)
	if nc.Engagement.ID != ringing.Engagement.ID {
		t.Fatalf("not connected %+v", nc)
	}
	next(t, events, EvCallLog)
}

func TestWithDirection(t *testing.T) {
	in := []byte("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n")
	if got := withDirection(in, "inactive"); !bytes.Equal(got, []byte("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n")) {
		t.Errorf("replace: %q", got)
	}
	if got := withDirection([]byte("v=0\r\nm=audio 4000 RTP/AVP 0"), "recvonly"); !bytes.Equal(got,
		[]byte("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n")) {
		t.Errorf("add: %q", got)
	}
}

// TestOriginatedSignature: a click-to-call INVITE's signature is good once,
// within the window, and a hop signature does not pass for it.
func TestOriginatedSignature(t *testing.T) {
	b := &B2BUA{hopKey: testHopKey, now: time.Now}
	now := time.Now().Unix()
	good := "u-alice rec-1 " + b.originateMAC("cid-1", "u-alice", "rec-1", now)
	if u, r, ok := b.originated("cid-1", good); !ok || u != "u-alice" || r != "rec-1" {
		t.Fatalf("a good signature: %q %q %v", u, r, ok)
	}
	for name, v := range map[string]string{
		"replayed":       good,
		"another user":   "u-bob rec-1 " + b.originateMAC("cid-1", "u-alice", "rec-1", now),
		"a hop's":        "u-alice rec-2 " + b.hopMAC("cid-2", "u-alice", "rec-2", now),
		"stale":          "u-alice rec-3 " + b.originateMAC("cid-3", "u-alice", "rec-3", now-3600),
		"missing fields": "u-alice",
	} {
		if _, _, ok := b.originated(map[string]string{"replayed": "cid-1", "another user": "cid-1x", "a hop's": "cid-2", "stale": "cid-3"}[name], v); ok {
			t.Errorf("%s signature accepted", name)
		}
	}
}
