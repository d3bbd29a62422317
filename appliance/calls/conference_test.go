package calls

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/invite"
)

// fakeMixer is a conference bridge that only records: each leg is a UDP
// socket of its own (so descriptions carry real addresses).
type fakeMixer struct {
	t     *testing.T
	mu    sync.Mutex
	rooms map[string]*fakeRoom
}

type fakeRoom struct {
	m      *fakeMixer
	legs   map[string]*fakeLeg
	closed bool
}

type fakeLeg struct {
	conn  net.PacketConn
	mu    sync.Mutex
	peer  netip.AddrPort
	codec g711.Codec
	left  bool
}

func (m *fakeMixer) Open(id string) (Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &fakeRoom{m: m, legs: map[string]*fakeLeg{}}
	m.rooms[id] = r
	return r, nil
}

func (r *fakeRoom) Join(id string, peer netip.AddrPort, codec g711.Codec, _ uint8) (RoomLeg, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.m.t.Cleanup(func() { conn.Close() })
	l := &fakeLeg{conn: conn, peer: peer, codec: codec}
	r.m.mu.Lock()
	r.legs[id] = l
	r.m.mu.Unlock()
	return l, nil
}

func (m *fakeMixer) legAddrs(id string) []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.AddrPort
	for _, l := range m.rooms[id].legs {
		out = append(out, l.Addr())
	}
	return out
}

func (r *fakeRoom) Close() {
	r.m.mu.Lock()
	r.closed = true
	r.m.mu.Unlock()
}

func (l *fakeLeg) Addr() netip.AddrPort { return l.conn.LocalAddr().(*net.UDPAddr).AddrPort() }
func (l *fakeLeg) SetPeer(a netip.AddrPort) {
	l.mu.Lock()
	l.peer = a
	l.mu.Unlock()
}
func (l *fakeLeg) SetCodec(c g711.Codec, _ uint8) {
	l.mu.Lock()
	l.codec = c
	l.mu.Unlock()
}
func (l *fakeLeg) SetMute(bool) {}
func (l *fakeLeg) Leave() {
	l.mu.Lock()
	l.left = true
	l.mu.Unlock()
}

// carol is a third user with a phone.
func withCarol(t *testing.T, node *simNode, dir userBook) *simPhone {
	t.Helper()
	carol := startPhone(t, "carol", onCue)
	dir.bind("carol", "c-1", carol.contactURI, carol.addr, "n1")
	return carol
}

// TestConferenceInvite: alice calls bob and invites carol; when carol
// answers, alice and bob are re-INVITEd into the room and carol was
// offered a leg of it; a second invitation to carol is refused; bob
// leaving keeps the call; carol leaving ends it, recorded once.
func TestConferenceInvite(t *testing.T) {
	dir := userBook{newPhoneBook()}
	node := startNode(t, "n1", dir)
	mixer := &fakeMixer{t: t, rooms: map[string]*fakeRoom{}}
	node.b.SetMixer(mixer)
	a := startPhone(t, "alice", onCue)
	bob := startPhone(t, "bob", onCue)
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	carol := withCarol(t, node, dir)
	_, bobSess := connect(t, node, a, "1002", bob)
	var id string
	eventually(t, "the call's record id", func() bool {
		for _, c := range node.b.Calls() {
			id = c.ID
		}
		return id != ""
	})
	ctx := context.Background()
	if _, err := node.b.Invite(ctx, "u-bob", id, invite.Request{Kind: invite.KindUser, User: "u-carol"}); !errors.Is(err, invite.ErrNotOwner) {
		t.Fatalf("bob (not the owner) invited: %v", err)
	}
	inv, err := node.b.Invite(ctx, "u-alice", id, invite.Request{Kind: invite.KindUser, User: "u-carol"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.b.Invite(ctx, "u-alice", id, invite.Request{Kind: invite.KindUser, User: "u-carol"}); !errors.Is(err, invite.ErrDuplicate) {
		t.Fatalf("second invitation to carol: %v", err)
	}
	offer := carol.expect(t, "INVITE", "180")
	_ = offer
	carol.pickUp(t)
	carol.expect(t, "200", "ACK")
	// Alice and bob move into the room.
	for _, p := range []*simPhone{a, bob} {
		re := p.expect(t, "INVITE")
		found := false
		for _, addr := range mixer.legAddrs(id) {
			if bytes.Contains(re.body, []byte("m=audio "+strconv.Itoa(int(addr.Port()))+" ")) {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s was not re-INVITEd to a room leg:\n%s", p.name, re.body)
		}
		p.expect(t, "200", "ACK")
	}
	v, ok := node.b.Conference(id)
	if !ok || !v.Mixed || len(v.Participants) != 3 || v.Owner != "u-alice" {
		t.Fatalf("conference %+v", v)
	}
	if got, _ := findInvitation(v, inv.ID); got.State != invite.Accepted {
		t.Fatalf("invitation %+v", got)
	}
	if node.b.Active() != 1 {
		t.Errorf("active %d, want 1: a conference is one call", node.b.Active())
	}
	// A joiner sees the call's recent events.
	if cs := node.b.Calls(); len(cs) != 1 || len(cs[0].History) < 2 || cs[0].History[0].Kind != "invited" {
		t.Errorf("calls: %+v", cs)
	}
	// Bob leaves; the call goes on.
	if err := bobSess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob out", func() bool {
		v, _ := node.b.Conference(id)
		return len(v.Participants) == 2
	})
	a.idle(t)
	// Carol leaves: alice is alone and is hung up; the call is recorded once.
	if err := carol.session(t).Bye(ctx); err != nil {
		t.Fatal(err)
	}
	a.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	if len(recs) != 1 || recs[0].ID != id || recs[0].Disposition != DispAnswered {
		t.Fatalf("records %+v", recs)
	}
	eventually(t, "no call left", func() bool { return node.b.Active() == 0 })
	if _, ok := node.b.Conference(id); ok {
		t.Error("the conference outlived its call")
	}
	mixer.mu.Lock()
	closed := mixer.rooms[id].closed
	mixer.mu.Unlock()
	if !closed {
		t.Error("the room was not closed")
	}
}

func findInvitation(v ConfView, id string) (invite.Invitation, bool) {
	for _, inv := range v.Invitations {
		if inv.ID == id {
			return inv, true
		}
	}
	return invite.Invitation{}, false
}

// TestConferenceCancelInvitation: cancelling an invitation CANCELs the
// ringing phone; the call goes on unmixed; hanging up ends the rest.
func TestConferenceCancelInvitation(t *testing.T) {
	dir := userBook{newPhoneBook()}
	node := startNode(t, "n1", dir)
	node.b.SetMixer(&fakeMixer{t: t, rooms: map[string]*fakeRoom{}})
	a := startPhone(t, "alice", onCue)
	bob := startPhone(t, "bob", onCue)
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	carol := withCarol(t, node, dir)
	connect(t, node, a, "1002", bob)
	id := node.b.Calls()[0].ID
	ctx := context.Background()
	inv, err := node.b.Invite(ctx, "u-alice", id, invite.Request{Kind: invite.KindUser, User: "u-carol"})
	if err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "INVITE", "180")
	if _, err := node.b.CancelInvitation(ctx, "u-bob", id, inv.ID); !errors.Is(err, invite.ErrNotOwner) {
		t.Fatalf("bob cancelled: %v", err)
	}
	got, err := node.b.CancelInvitation(ctx, "u-alice", id, inv.ID)
	if err != nil || got.State != invite.Ended || got.Reason != invite.ReasonCancelled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	carol.expect(t, "CANCEL")
	a.idle(t)
	bob.idle(t)
	// A second invitation to carol is allowed now.
	if _, err := node.b.Invite(ctx, "u-alice", id, invite.Request{Kind: invite.KindUser, User: "u-carol"}); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "INVITE", "180")
	// The call ends: the invitation ends with it.
	if err := node.b.Hangup(ctx, "alice", id); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "CANCEL")
	eventually(t, "the invitation to end", func() bool {
		_, ok := node.b.Conference(id)
		return !ok
	})
}

// TestConsultCompleteTransfer: the widget's add-call invites carol into
// alice's call with bob; completing the transfer hands the call to carol
// and hangs up alice; bob and carol talk on.
func TestConsultCompleteTransfer(t *testing.T) {
	dir := userBook{newPhoneBook()}
	node := startNode(t, "n1", dir)
	node.b.SetMixer(&fakeMixer{t: t, rooms: map[string]*fakeRoom{}})
	a := startPhone(t, "alice", onCue)
	bob := startPhone(t, "bob", onCue)
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	carol := withCarol(t, node, dir)
	connect(t, node, a, "1002", bob)
	id := node.b.Calls()[0].ID
	ctx := context.Background()
	if err := node.b.CompleteTransfer(ctx, "alice", id); !errors.Is(err, ErrNoEngagement) {
		t.Fatalf("complete without a consult: %v", err)
	}
	if _, err := node.b.AddCall(ctx, "alice", id, "1003"); err != nil {
		t.Fatal(err)
	}
	carol.expect(t, "INVITE", "180")
	if err := node.b.MergeConsult(ctx, "alice", id); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("merge before the answer: %v", err)
	}
	carol.pickUp(t)
	carol.expect(t, "200", "ACK")
	a.expect(t, "INVITE", "200", "ACK")
	bob.expect(t, "INVITE", "200", "ACK")
	if err := node.b.MergeConsult(ctx, "alice", id); err != nil {
		t.Fatal(err)
	}
	if err := node.b.CompleteTransfer(ctx, "alice", id); err != nil {
		t.Fatal(err)
	}
	a.expect(t, "BYE")
	v, ok := node.b.Conference(id)
	if !ok || len(v.Participants) != 2 || v.Owner != "u-carol" {
		t.Fatalf("after the transfer: %+v", v)
	}
}
