package calls

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/ivr"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sdg"
)

// A PIN is made once per call, is unique among the live calls, and is
// forgotten once its call ends.
func TestPINBook(t *testing.T) {
	pb := pinBook{byPIN: map[string]*conf{}, ofCall: map[string]string{}}
	a, b, c := &conf{id: "a"}, &conf{id: "b"}, &conf{id: "c"}
	ended := map[*conf]bool{}
	live := func(cf *conf) bool { return !ended[cf] }
	// The random source repeats itself: b must not get a's PIN.
	draws := []string{"111111", "111111", "111111", "222222", "111111", "333333"}
	random := func() (string, error) {
		p := draws[0]
		draws = draws[1:]
		return p, nil
	}
	pa, err := pb.pin(a, live, random)
	if err != nil || pa != "111111" {
		t.Fatalf("a's pin %q %v", pa, err)
	}
	pbn, err := pb.pin(b, live, random)
	if err != nil || pbn != "222222" {
		t.Fatalf("b's pin %q %v, want the first draw not taken", pbn, err)
	}
	if again, _ := pb.pin(a, live, random); again != pa {
		t.Fatalf("a's pin asked again: %q, want %q", again, pa)
	}
	if got := pb.lookup("111111", live); got != a {
		t.Fatalf("lookup 111111 = %v, want a", got)
	}
	if got := pb.lookup("999999", live); got != nil {
		t.Fatalf("lookup of no pin = %v", got)
	}
	// a ends: its PIN no longer lets anyone in, and may go to another call.
	ended[a] = true
	if got := pb.lookup("111111", live); got != nil {
		t.Fatal("the pin of an ended call still matches")
	}
	if pc, _ := pb.pin(c, live, random); pc != "111111" {
		t.Fatalf("c's pin %q, want the freed 111111", pc)
	}
	if len(pb.ofCall) != 2 || pb.ofCall["a"] != "" {
		t.Errorf("the book still holds the ended call: %v", pb.ofCall)
	}
	// A random source that never finds a free PIN gives up.
	always := func() (string, error) { return "222222", nil }
	if _, err := pb.pin(&conf{id: "d"}, live, always); !errors.Is(err, errNoFreePIN) {
		t.Fatalf("no free pin: %v", err)
	}
}

func TestRandomPIN(t *testing.T) {
	six := regexp.MustCompile(`^[0-9]{6}$`)
	seen := map[string]bool{}
	for range 200 {
		p, err := randomPIN()
		if err != nil || !six.MatchString(p) {
			t.Fatalf("randomPIN() = %q, %v", p, err)
		}
		seen[p] = true
	}
	if len(seen) < 190 {
		t.Errorf("%d distinct PINs of 200", len(seen))
	}
}

// Ten wrong PINs from a source lock it out for PINLockout; other sources
// go on; wrong PINs older than the window do not count; a hundred from
// anywhere pause dial-in for the node until they age out.
func TestPINGuard(t *testing.T) {
	g := pinGuard{bySource: map[string]*guesses{}}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range MaxPINFailures - 1 {
		if err := g.failed("pstn:+14155550000", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("failure %d locked: %v", i+1, err)
		}
	}
	if err := g.allowed("pstn:+14155550000", t0.Add(time.Minute)); err != nil {
		t.Fatalf("9 failures: %v", err)
	}
	if err := g.failed("pstn:+14155550000", t0.Add(time.Minute)); !errors.Is(err, errSourceLocked) {
		t.Fatalf("the 10th failure: %v, want the source locked", err)
	}
	if err := g.allowed("pstn:+14155550000", t0.Add(time.Minute+PINLockout-time.Second)); !errors.Is(err, errSourceLocked) {
		t.Fatalf("during the lockout: %v", err)
	}
	if err := g.allowed("pstn:+14155550001", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("another source: %v", err)
	}
	if err := g.allowed("pstn:+14155550000", t0.Add(time.Minute+PINLockout)); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	// Failures spread wider than the window never lock.
	g2 := pinGuard{bySource: map[string]*guesses{}}
	for i := range 3 * MaxPINFailures {
		if err := g2.failed("user:u-bob", t0.Add(time.Duration(i)*PINFailureWindow/(MaxPINFailures-1))); err != nil {
			t.Fatalf("spread failure %d locked: %v", i, err)
		}
	}
	// Many sources (changing caller IDs): the node pauses dial-in.
	g3 := pinGuard{bySource: map[string]*guesses{}}
	var err error
	for i := range MaxNodePINFailures {
		err = g3.failed(fmt.Sprintf("pstn:+1415555%04d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if !errors.Is(err, errNodeLocked) {
		t.Fatalf("the %dth failure on the node: %v", MaxNodePINFailures, err)
	}
	if err := g3.allowed("pstn:+19995550000", t0.Add(3*time.Minute)); !errors.Is(err, errNodeLocked) {
		t.Fatalf("a new source while the node is paused: %v", err)
	}
	if err := g3.allowed("pstn:+19995550000", t0.Add(PINFailureWindow+MaxNodePINFailures*time.Second)); err != nil {
		t.Fatalf("once the failures aged out: %v", err)
	}
	if len(g3.bySource) != 0 {
		t.Errorf("%d sources kept after their failures aged out", len(g3.bySource))
	}
}

// scriptedLeg is an IVR endpoint whose caller presses keys from a script:
// a key, 'T' a timeout, 'H' a hang-up.
type scriptedLeg struct {
	keys    string
	prompts [][]string // what each Menu was asked to play
}

func (l *scriptedLeg) Menu(_ context.Context, names []string, timeout time.Duration) (byte, error) {
	l.prompts = append(l.prompts, names)
	if timeout != sdg.PINDigitTimeout {
		return 0, fmt.Errorf("timeout %v", timeout)
	}
	if l.keys == "" {
		return 0, ivr.ErrNoInput
	}
	k := l.keys[0]
	l.keys = l.keys[1:]
	switch k {
	case 'T':
		return 0, ivr.ErrNoInput
	case 'H':
		return 0, ivr.ErrClosed
	}
	return k, nil
}

func (l *scriptedLeg) Addr() netip.AddrPort                     { return netip.AddrPort{} }
func (l *scriptedLeg) Play(context.Context, ...string) error    { return nil }
func (l *scriptedLeg) Loop(string)                              {}
func (l *scriptedLeg) Stop()                                    {}
func (l *scriptedLeg) Key(byte)                                 {}
func (l *scriptedLeg) SendDigits(context.Context, string) error { return nil }
func (l *scriptedLeg) Close()                                   {}
func (l *scriptedLeg) Record(context.Context, time.Duration, func([]int16) bool) (byte, error) {
	return 0, ivr.ErrNoInput
}
func (l *scriptedLeg) PlaySamples(context.Context, []int16) (byte, error) { return 0, nil }

func TestReadPIN(t *testing.T) {
	for _, tc := range []struct {
		keys, want, left string
		hangup           bool
	}{
		{keys: "123456#", want: "123456"},
		{keys: "12345678", want: "12345678"},
		{keys: "123456789#", want: "12345678", left: "9#"},
		{keys: "12T", want: "12"},
		{keys: "T", want: ""},
		{keys: "#", want: ""},
		{keys: "1*2#", want: "1*2"},
		{keys: "12H", hangup: true},
	} {
		l := &scriptedLeg{keys: tc.keys}
		got, err := readPIN(context.Background(), l, []string{sdg.PINInvalidPrompt, sdg.PINPrompt})
		if tc.hangup {
			if err == nil {
				t.Errorf("%q: %q, want the hang-up", tc.keys, got)
			}
			continue
		}
		if err != nil || got != tc.want || l.keys != tc.left {
			t.Errorf("%q: %q %v, %q left; want %q, %q left", tc.keys, got, err, l.keys, tc.want, tc.left)
		}
		if !slices.Equal(l.prompts[0], []string{sdg.PINInvalidPrompt, sdg.PINPrompt}) || slices.ContainsFunc(l.prompts[1:], func(p []string) bool { return len(p) > 0 }) {
			t.Errorf("%q: prompts %q, want them before the first key only", tc.keys, l.prompts)
		}
	}
}

// dialInBook is userBook with dial-in numbers at both sites.
type dialInBook struct{ userBook }

func (dialInBook) Numbers(context.Context) ([]account.Number, error) {
	conference := &account.Route{Type: account.RouteConference}
	return []account.Number{
		{Number: "+13125550250", Site: "branch", Route: conference},
		{Number: "+16505550199", Site: "hq", Route: &account.Route{Type: account.RouteUser, ID: "u-carol"}},
		{Number: "+16505550151", Site: "hq", Route: conference},
		{Number: "+16505550150", Site: "hq", Route: conference},
	}, nil
}

// InviteInfo: only the owner (or an admin acting as the owner) gets the
// call's dial-in numbers (the owner's site first) and PIN, the same each
// time; the PIN is gone once the call ends.
func TestInviteInfo(t *testing.T) {
	dir := dialInBook{userBook{newPhoneBook()}}
	node := startNode(t, "n1", dir)
	a := startPhone(t, "alice", onCue)
	bob := startPhone(t, "bob", onCue)
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	connect(t, node, a, "1002", bob)
	id := node.b.Calls()[0].ID
	ctx := context.Background()

	if _, err := node.b.InviteInfo(ctx, "u-alice", id); !errors.Is(err, ErrNoMixer) {
		t.Fatalf("without a bridge: %v, want ErrNoMixer", err)
	}
	node.b.SetMixer(&fakeMixer{t: t, rooms: map[string]*fakeRoom{}})
	if _, err := node.b.InviteInfo(ctx, "u-bob", id); !errors.Is(err, invite.ErrNotOwner) {
		t.Fatalf("bob (not the owner): %v, want ErrNotOwner", err)
	}
	if _, ok := node.b.Conference(id); ok {
		t.Fatal("a refused request made the call a conference")
	}
	if _, err := node.b.InviteInfo(ctx, "u-alice", "no-such-call"); !errors.Is(err, ErrNoCall) {
		t.Fatalf("unknown call: %v, want ErrNoCall", err)
	}
	info, err := node.b.InviteInfo(ctx, "u-alice", id)
	if err != nil {
		t.Fatal(err)
	}
	want := []DialInNumber{{"+16505550150", "hq"}, {"+16505550151", "hq"}, {"+13125550250", "branch"}}
	if !slices.Equal(info.DialIn, want) {
		t.Errorf("dial-in numbers %v, want %v", info.DialIn, want)
	}
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(info.PIN) {
		t.Errorf("pin %q", info.PIN)
	}
	if info.SMSText != SMSText("Alice", "+16505550150", info.PIN) {
		t.Errorf("sms text %q", info.SMSText)
	}
	again, err := node.b.InviteInfo(ctx, "u-alice", id)
	if err != nil || again.PIN != info.PIN {
		t.Errorf("asked again: %+v %v, want the same pin %s", again, err, info.PIN)
	}
	st := node.b.dialIns()
	lookup := func() *conf {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.pins.lookup(info.PIN, node.b.confLive)
	}
	if cf := lookup(); cf == nil || cf.id != id {
		t.Fatalf("the pin finds %v, want call %s", cf, id)
	}
	if err := node.b.Hangup(ctx, "alice", id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pin forgotten with its call", func() bool { return lookup() == nil })
}

// A dial-in joins as "dialled in" in the call's history and is recorded
// as its own call (keepConfRecord), like a call-out.
func TestDialInDisposition(t *testing.T) {
	if got := failDisposition(fmt.Errorf("conference: %w", sdg.ErrNoPIN)); got != DispRefused {
		t.Errorf("a dial-in without a valid PIN is recorded %q, want %q", got, DispRefused)
	}
	if got := sipReason(403); got != "Forbidden" {
		t.Errorf("403's reason %q", got)
	}
}

// The dial-in's prompts are built in (scripts/gen-prompts.sh).
func TestDialInPromptsBuiltIn(t *testing.T) {
	for _, name := range []string{sdg.PINPrompt, sdg.PINInvalidPrompt, sdg.JoiningPrompt, "goodbye"} {
		p, err := prompts.Builtin(name)
		if err != nil || p.Duration() < 500*time.Millisecond || p.Duration() > 6*time.Second {
			t.Errorf("built-in prompt %s: %v, %v long", name, err, p.Duration())
		}
	}
}
