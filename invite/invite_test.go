package invite

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type presence map[string]bool

func (p presence) Available(id string) bool { return p[id] }

var avail = presence{"u-bob": true, "u-carol": true, "u-dan": true}

// call is alice's call with a PSTN caller, alice owning it.
func call() *Call {
	return NewCall("c1", "u-alice", t0,
		Participant{ID: "leg-alice", User: "u-alice", Name: "Alice"},
		Participant{ID: "leg-pstn", Name: "+16505550100", Number: "+16505550100"})
}

// TestInvitationEnds: every way an invitation ends, and what it ends as.
func TestInvitationEnds(t *testing.T) {
	cases := []struct {
		name   string
		act    func(c *Call, id string) error
		state  string
		reason string
	}{
		{"accepted", func(c *Call, id string) error {
			return c.Accept(id, Participant{ID: "leg-bob", User: "u-bob", Name: "Bob"}, t0.Add(time.Second))
		}, Accepted, ReasonAccepted},
		{"declined", func(c *Call, id string) error { c.Decline(id, Declined, ReasonDeclined, t0); return nil }, Declined, ReasonDeclined},
		{"no answer", func(c *Call, id string) error { c.Decline(id, Failed, ReasonNoAnswer, t0); return nil }, Failed, ReasonNoAnswer},
		{"cancelled by the owner", func(c *Call, id string) error { _, err := c.Cancel("u-alice", id, t0); return err }, Ended, ReasonCancelled},
		{"owner left", func(c *Call, id string) error { c.Leave("leg-alice", t0); return nil }, Ended, ReasonOwnerLeft},
		{"owner handed over", func(c *Call, id string) error {
			if err := c.Accept(mustInvite(t, c, Request{Kind: KindUser, User: "u-carol"}).ID,
				Participant{ID: "leg-carol", User: "u-carol", Name: "Carol"}, t0); err != nil {
				return err
			}
			_, err := c.HandOver("u-alice", "u-carol", t0)
			return err
		}, Ended, ReasonOwnerChanged},
		{"call ended", func(c *Call, id string) error { c.End(t0); return nil }, Ended, ReasonCallEnded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := call()
			inv := mustInvite(t, c, Request{Kind: KindUser, User: "u-bob"})
			if err := tc.act(c, inv.ID); err != nil {
				t.Fatal(err)
			}
			got, _ := c.Invitation(inv.ID)
			if got.State != tc.state || got.Reason != tc.reason || got.Ended.IsZero() {
				t.Fatalf("invitation %+v, want %s (%s)", got, tc.state, tc.reason)
			}
			// Once ended, nothing brings it back.
			if err := c.Accept(inv.ID, Participant{ID: "late", User: "u-bob"}, t0); tc.state != Accepted && !errors.Is(err, ErrNotActive) {
				t.Errorf("accept after the end: %v", err)
			}
			if _, err := c.Cancel(c.Owner(), inv.ID, t0); c.Owner() != "" && !errors.Is(err, ErrNotActive) {
				t.Errorf("cancel after the end: %v", err)
			}
		})
	}
}

func mustInvite(t *testing.T, c *Call, r Request) Invitation {
	t.Helper()
	inv, err := c.Invite(c.Owner(), r, avail, t0)
	if err != nil {
		t.Fatalf("invite %+v: %v", r, err)
	}
	return inv
}

// TestOwnershipRules: only the owner invites, cancels, hands over,
// transfers or ends the call; invited participants do not.
func TestOwnershipRules(t *testing.T) {
	c := call()
	if _, err := c.Invite("u-bob", Request{Kind: KindUser, User: "u-carol"}, avail, t0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("a non-owner invited: %v", err)
	}
	inv := mustInvite(t, c, Request{Kind: KindUser, User: "u-bob"})
	if _, err := c.Cancel("u-bob", inv.ID, t0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the invitee cancelled: %v", err)
	}
	if err := c.Accept(inv.ID, Participant{ID: "leg-bob", User: "u-bob", Name: "Bob"}, t0); err != nil {
		t.Fatal(err)
	}
	if c.CanTransfer("u-bob") || c.CanEnd("u-bob") || !c.CanTransfer("u-alice") || !c.CanEnd("u-alice") {
		t.Error("transfer/end rights: only the owner")
	}
	if _, err := c.HandOver("u-bob", "u-bob", t0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the invitee took ownership: %v", err)
	}
	if _, err := c.HandOver("u-alice", "u-dan", t0); !errors.Is(err, ErrNotParticipant) {
		t.Errorf("ownership to someone not in the call: %v", err)
	}
	if _, err := c.HandOver("u-alice", "u-bob", t0); err != nil || c.Owner() != "u-bob" {
		t.Fatalf("hand over: %v, owner %s", err, c.Owner())
	}
	if _, err := c.Invite("u-alice", Request{Kind: KindUser, User: "u-carol"}, avail, t0); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the old owner invited: %v", err)
	}
	// The owner leaving passes ownership to the earliest-joined user left.
	c.Leave("leg-bob", t0)
	if c.Owner() != "u-alice" {
		t.Errorf("owner after bob left: %q, want u-alice", c.Owner())
	}
	c.Leave("leg-alice", t0)
	if c.Owner() != "" {
		t.Errorf("owner with only the PSTN caller left: %q", c.Owner())
	}
}

// TestInviteRefusals: duplicates, unavailable or present users, bad
// requests, an ended call.
func TestInviteRefusals(t *testing.T) {
	c := call()
	mustInvite(t, c, Request{Kind: KindUser, User: "u-bob"})
	mustInvite(t, c, Request{Kind: KindCallout, Name: "Eve", Number: "+16032331333-156"})
	g1 := mustInvite(t, c, Request{Kind: KindGroup, SDG: "sdg-support"})
	g2 := mustInvite(t, c, Request{Kind: KindGroup, SDG: "sdg-support"}) // several group invitations bring more
	if g1.ID == g2.ID {
		t.Error("two group invitations share an id")
	}
	for _, tc := range []struct {
		name string
		r    Request
		want error
	}{
		{"second invitation to bob", Request{Kind: KindUser, User: "u-bob"}, ErrDuplicate},
		{"second call-out to the number", Request{Kind: KindCallout, Name: "Eve again", Number: "+1 603 233 1333"}, ErrDuplicate},
		{"busy or unregistered user", Request{Kind: KindUser, User: "u-zed"}, ErrUnavailable},
		{"user already in", Request{Kind: KindUser, User: "u-alice"}, ErrAlreadyIn},
		{"call-out without a name", Request{Kind: KindCallout, Number: "+16032331334"}, ErrBadRequest},
		{"call-out without a country code", Request{Kind: KindCallout, Name: "X", Number: "6032331334"}, ErrBadRequest},
		{"group without an sdg", Request{Kind: KindGroup}, ErrBadRequest},
		{"unknown type", Request{Kind: "fax"}, ErrBadRequest},
	} {
		if _, err := c.Invite("u-alice", tc.r, avail, t0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A failed call-out is retried explicitly, as a new invitation.
	var out Invitation
	for _, inv := range c.Invitations() {
		if inv.Kind == KindCallout {
			out = inv
		}
	}
	if _, err := c.Retry("u-alice", out.ID, t0); !errors.Is(err, ErrNotRetryable) {
		t.Errorf("retry of an active call-out: %v", err)
	}
	c.Decline(out.ID, Declined, ReasonNoPress1, t0)
	again, err := c.Retry("u-alice", out.ID, t0)
	if err != nil || again.ID == out.ID || again.Number != "+16032331333" || again.DTMF != "156" {
		t.Fatalf("retry: %+v, %v", again, err)
	}
	c.End(t0)
	if _, err := c.Invite("u-alice", Request{Kind: KindUser, User: "u-carol"}, avail, t0); !errors.Is(err, ErrCallEnded) {
		t.Errorf("invite after the end: %v", err)
	}
	for _, inv := range c.Invitations() {
		if inv.Active() {
			t.Errorf("invitation %s still active after the call ended", inv.ID)
		}
	}
}

// TestHistory: a joiner sees the last five minutes of events and notes.
func TestHistory(t *testing.T) {
	c := call()
	c.Note("u-alice", "old note", t0)
	c.Note("u-alice", "recent note", t0.Add(6*time.Minute))
	inv, err := c.Invite("u-alice", Request{Kind: KindUser, User: "u-bob"}, avail, t0.Add(7*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	h := c.History(t0.Add(8 * time.Minute))
	if len(h) != 2 || h[0].Text != "recent note" || h[1].Kind != "invited" {
		t.Fatalf("history %+v", h)
	}
	_ = inv
	for i := range 1000 {
		c.Note("u-alice", "n", t0.Add(8*time.Minute+time.Duration(i)*time.Millisecond))
	}
	if n := len(c.History(t0.Add(9 * time.Minute))); n > 257 {
		t.Errorf("history grew to %d events", n)
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in, number, dtmf string
		ok               bool
	}{
		{"+16032331333-156", "+16032331333", "156", true},
		{"+16032331333", "+16032331333", "", true},
		{"+1 (603) 233 1333", "+16032331333", "", true},
		{"+1 (603) 233-1333", "", "", false}, // the first - starts the extension: 1333 after +1603233
		{"+1 603 233 1333-1#", "+16032331333", "1#", true},
		{"+442075550100-*9", "+442075550100", "*9", true},
		{"16032331333", "", "", false},      // no country code
		{"+16032331333-", "", "", false},    // a dash with nothing after
		{"+1603233133x", "", "", false},     // a letter
		{"+1603", "", "", false},            // too short
		{"+16032331333-12a", "", "", false}, // extension not digits
		{"+0123456789", "", "", false},      // no country code starts with 0
		{"", "", "", false},                 //
		{"+16032331333-" + string(make([]byte, 0)) + "123456789012345678901234567890123", "", "", false},
	} {
		n, d, err := ParseNumber(tc.in)
		if (err == nil) != tc.ok || n != tc.number || d != tc.dtmf {
			t.Errorf("ParseNumber(%q) = %q, %q, %v; want %q, %q, ok %v", tc.in, n, d, err, tc.number, tc.dtmf, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadNumber) {
			t.Errorf("ParseNumber(%q): error %v is not ErrBadNumber", tc.in, err)
		}
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"+16032331333-156", "+1 (603) 233 1333", "+44-20", "-", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, d, err := ParseNumber(s)
		if err != nil {
			return
		}
		if n2, d2, err := ParseNumber(n + map[bool]string{true: "-" + d, false: ""}[d != ""]); err != nil || n2 != n || d2 != d {
			t.Fatalf("%q parsed to %q %q, which does not parse back: %q %q %v", s, n, d, n2, d2, err)
		}
	})
}

// TestCallerID: the caller ID a call-out presents.
func TestCallerID(t *testing.T) {
	cfg := account.Callout{CallerIDs: []account.CallerID{
		{Country: "US", Number: "+16465550188", Dedicated: true},
		{Country: "GB", Number: "+442075550101"},
		{Country: "GB", Number: "+442075550100"},
		{Country: "FR", Number: "+33155550100", Dedicated: true},
		{Country: "FR", Number: "+33155550199"},
	}}
	all := func(account.CallerID) bool { return true }
	for _, tc := range []struct {
		name, number string
		canTake      func(account.CallerID) bool
		want         string
	}{
		{"US callee: the US dedicated number", "+16505550100", all, "+16465550188"},
		{"Canada is in the US zone", "+14165550100", all, "+16465550188"},
		{"a country with a dedicated number", "+33612345678", all, "+33155550100"},
		{"several numbers: ascending, the first a trunk takes", "+447700900123", all, "+442075550100"},
		{"several numbers, the lowest refused", "+447700900123",
			func(id account.CallerID) bool { return id.Number != "+442075550100" }, "+442075550101"},
		{"several numbers, none taken: the US dedicated one", "+447700900123",
			func(account.CallerID) bool { return false }, "+16465550188"},
		{"a country with none: the US dedicated one", "+4930123456", all, "+16465550188"},
	} {
		got, ok := CallerID(cfg, tc.number, tc.canTake)
		if !ok || got.Number != tc.want {
			t.Errorf("%s: %+v %v, want %s", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := CallerID(account.Callout{}, "+4930123456", all); ok {
		t.Error("no caller IDs at all, yet one was chosen")
	}
}

// TestJoinWithoutInvitation: a merged call's party or a caller with the
// PIN joins without an invitation; once, and not after the call ended;
// the history says how.
func TestJoinWithoutInvitation(t *testing.T) {
	c := call()
	bob := Participant{ID: "leg-bob", User: "u-bob", Name: "Bob"}
	if err := c.Join(bob, "merged", t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(bob, "merged", t0); !errors.Is(err, ErrAlreadyIn) {
		t.Errorf("the same leg joined twice: %v", err)
	}
	if got := len(c.Participants()); got != 3 {
		t.Errorf("%d participants, want 3", got)
	}
	if h := c.History(t0); len(h) != 1 || h[0].Kind != "joined" || h[0].Text != "Bob joined (merged)" {
		t.Errorf("history %+v", h)
	}
	if c.Owner() != "u-alice" {
		t.Errorf("a join changed the owner to %q", c.Owner())
	}
	c.End(t0)
	if err := c.Join(Participant{ID: "leg-x", Name: "+15550100"}, "dialled in", t0); !errors.Is(err, ErrCallEnded) {
		t.Errorf("joined an ended call: %v", err)
	}
}
