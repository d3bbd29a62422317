package calls

import (
	"context"
	"errors"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// peersSaying is a ParkPeers whose members answer peers, and that
// records which site it was asked about.
func peersSaying(asked *[]string, peers ...PeerSlots) ParkPeers {
	return func(ctx context.Context, site string) []PeerSlots {
		*asked = append(*asked, site)
		if _, ok := ctx.Deadline(); !ok {
			panic("the members must be asked with a deadline")
		}
		return peers
	}
}

// TestParkSlotElsewhere: a node takes the lowest slot of the site that
// neither it nor any member that answered holds (a call in any state, or
// a reservation), for a blind park and an attended park's reservation
// alike; every slot held somewhere is a full site.
func TestParkSlotElsewhere(t *testing.T) {
	var asked []string
	b := &B2BUA{}
	b.SetPark(testParkConfig(5))
	b.SetParkPeers(peersSaying(&asked,
		PeerSlots{Node: "n2", SIPAddr: "127.0.0.1:5062", Slots: []HeldSlot{{Slot: 1, State: "parked"}}},
		PeerSlots{Node: "n3", SIPAddr: "127.0.0.1:5063", Slots: []HeldSlot{{Slot: 3, State: slotReserved}, {Slot: 5, State: "parking"}}}))
	l := b.park()
	pk := &parked{site: "hq", p: &party{id: "a"}, ctx: context.Background()}
	if s, err := l.take(pk, heldElsewhere(b.peerSlots("hq"))); err != nil || s != 2 {
		t.Fatalf("slot 1 held on n2, 3 and 5 on n3: slot %d, %v; want 2", s, err)
	}
	r, err := l.reserve("hq", "d1", sipUser("bob"), heldElsewhere(b.peerSlots("hq")), func(*reservation) {})
	if err != nil || r.slot != 4 {
		t.Fatalf("the reservation: %+v, %v; want slot 4", r, err)
	}
	if _, err := l.take(&parked{site: "hq", p: &party{id: "b"}}, heldElsewhere(b.peerSlots("hq"))); !errors.Is(err, ErrParkFull) {
		t.Fatalf("every slot held here or elsewhere: %v, want ErrParkFull", err)
	}
	if len(asked) != 3 || asked[0] != "hq" {
		t.Fatalf("members asked about %v, want hq three times", asked)
	}
	got := b.ParkSlots("hq")
	want := []HeldSlot{{Slot: 2, State: "parking"}, {Slot: 4, State: slotReserved}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ParkSlots(hq) = %v, want %v", got, want)
	}
	if got := b.ParkSlots("branch"); len(got) != 0 {
		t.Fatalf("ParkSlots(branch) = %v, want none", got)
	}
}

// TestParkEmptyEverywhere: no member to ask (a single node), or members
// holding nothing: slot 1, and no call to retrieve elsewhere.
func TestParkEmptyEverywhere(t *testing.T) {
	var asked []string
	alone := &B2BUA{}
	if p := alone.peerSlots("hq"); p != nil {
		t.Fatalf("a node without members asked someone: %v", p)
	}
	b := &B2BUA{}
	b.SetParkPeers(peersSaying(&asked, PeerSlots{Node: "n2", SIPAddr: "127.0.0.1:5062"}, PeerSlots{Node: "n3", SIPAddr: "127.0.0.1:5063"}))
	peers := b.peerSlots("hq")
	if s, err := b.park().take(&parked{site: "hq", p: &party{id: "a"}}, heldElsewhere(peers)); err != nil || s != 1 {
		t.Fatalf("empty everywhere: slot %d, %v; want 1", s, err)
	}
	if p, ok := parkedElsewhere(peers, 1); ok {
		t.Fatalf("slot 1 found on %s, empty everywhere", p.Node)
	}
}

// TestParkedElsewhere: only a call parked or ringing back is retrieved
// from another node (not one still parking, nor a reservation), from the
// lowest node ID when a partition left two on the slot, never from a
// member without a SIP address.
func TestParkedElsewhere(t *testing.T) {
	peers := []PeerSlots{
		{Node: "n4", SIPAddr: "127.0.0.1:5064", Slots: []HeldSlot{{Slot: 1, State: "ringing"}, {Slot: 3, State: "parked"}}},
		{Node: "n2", SIPAddr: "127.0.0.1:5062", Slots: []HeldSlot{{Slot: 1, State: "parked"}, {Slot: 2, State: "parking"}}},
		{Node: "n1", Slots: []HeldSlot{{Slot: 3, State: "parked"}}},
		{Node: "n3", SIPAddr: "127.0.0.1:5063", Slots: []HeldSlot{{Slot: 4, State: slotReserved}}},
	}
	for _, tc := range []struct {
		slot int
		want string
	}{{1, "n2"}, {2, ""}, {3, "n4"}, {4, ""}, {5, ""}} {
		p, ok := parkedElsewhere(peers, tc.slot)
		if ok != (tc.want != "") || p.Node != tc.want {
			t.Errorf("slot %d: %q, %v; want %q", tc.slot, p.Node, ok, tc.want)
		}
	}
	if peers[0].Node != "n4" {
		t.Error("parkedElsewhere reordered its argument")
	}
}

// TestParkHopRefused: a retrieval another node carries here is answered
// only when it is signed with the cluster's key, names a slot, and a
// call a phone may retrieve is parked on that slot of the site here; it
// is never answered with another site's call, and records nothing (the
// retriever's node records the call).
func TestParkHopRefused(t *testing.T) {
	ruri := "sip:*881@127.0.0.1:5060"
	for _, tc := range []struct {
		name   string
		aor    string
		site   string
		key    []byte
		code   int
		reason string
	}{
		{name: "signed with another key", aor: "park:1", site: "hq", key: []byte("another cluster's key, 32 bytes."), code: 403, reason: "Forbidden"},
		{name: "no slot", aor: "park:x", site: "hq", key: testHopKey, code: 400, reason: "Bad Request: no park slot"},
		{name: "empty slot", aor: "park:2", site: "hq", key: testHopKey, code: 404, reason: "Not Found: no call parked on slot 2"},
		{name: "another site's call", aor: "park:1", site: "branch", key: testHopKey, code: 404, reason: "Not Found: no call parked on slot 1"},
		{name: "a call still parking", aor: "park:1", site: "hq", key: testHopKey, code: 404, reason: "Not Found: no call parked on slot 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, j := recorderB2BUA(t, challengeAll{}, newPhoneBook())
			pk := &parked{site: "hq", p: &party{id: "a"}, ctx: context.Background()}
			if _, err := b.park().take(pk, nil); err != nil {
				t.Fatal(err)
			}
			if tc.name != "a call still parking" {
				b.park().publish(pk)
				t.Cleanup(func() { b.park().settle(pk, parkEnded) })
			}
			req := newRequest(t, sip.INVITE, ruri, withHop(tc.key, tc.aor, tc.site))
			answeredOnce(t, serve(t, b.OnInvite, req), tc.code, tc.reason)
			if st, _ := pk.current(); !st.onSlot() {
				t.Fatalf("the parked call left its slot (%s)", st)
			}
			if recs := j.all(); len(recs) != 0 {
				t.Fatalf("recorded %+v, want no record", recs)
			}
		})
	}
}
