package sdg

import (
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func conferenceRoute() *account.Route { return &account.Route{Type: account.RouteConference} }

// withDialIn adds the dial-in: number +16505550150 and SDG "dial-in" reach
// a conference route, as does the main menu's option 5.
func withDialIn(f *fixture) {
	f.dir.add("dial-in", "Dial-in", conferenceRoute())
	f.dir.numbers["+16505550150"] = account.Number{Number: "+16505550150", Route: conferenceRoute()}
	f.dir.numbers["+16505550151"] = account.Number{Number: "+16505550151", Route: sdgRoute("dial-in")}
	f.dir.sdgs["menu"].Route.Options["5"] = conferenceRoute()
}

// A conference route asks for a PIN (DialIn); the caller joining connects
// the call, not joining fails it with ErrNoPIN and the status given, and a
// hang-up fails it as any other.
func TestWalkDialIn(t *testing.T) {
	runWalks(t, []walkCase{
		{name: "a dial-in number, joined", setup: withDialIn, root: numberRoute("+16505550150"),
			replies: []string{"answer"}, want: []string{"dial-in", "connected dial-in"},
			wantPath: []string{"number:+16505550150", "conference"}},
		{name: "through an sdg", setup: withDialIn, root: numberRoute("+16505550151"),
			replies: []string{"answer"}, want: []string{"dial-in", "connected dial-in"},
			wantPath: []string{"number:+16505550151", "sdg:dial-in", "conference"}},
		{name: "an sdg's extension", setup: withDialIn, root: sdgRoute("dial-in"),
			replies: []string{"answer"}, want: []string{"dial-in", "connected dial-in"},
			wantPath: []string{"sdg:dial-in", "conference"}},
		{name: "an ivr option", setup: withDialIn, root: numberRoute("+16505550100"),
			replies:  []string{"digit 5", "answer"},
			want:     []string{"menu main-menu 1/3 8s", "dial-in", "connected dial-in"},
			wantPath: []string{"number:+16505550100", "sdg:menu", "ivr:main-menu option 5", "conference"}},
		{name: "wrong pins", setup: withDialIn, root: numberRoute("+16505550150"),
			replies: []string{"noanswer"}, want: []string{"dial-in", "fail 480"}, wantErr: ErrNoPIN},
		{name: "refused before the answer", setup: withDialIn, root: sdgRoute("dial-in"),
			replies: []string{"noanswer 403"}, want: []string{"dial-in", "fail 403"}, wantErr: ErrNoPIN},
		{name: "hung up", setup: withDialIn, root: numberRoute("+16505550150"),
			replies: []string{"hangup"}, want: []string{"dial-in", "fail 487"}, wantErr: ErrHangup},
		{name: "stale and unrelated events wait", setup: withDialIn, root: numberRoute("+16505550150"),
			replies: []string{"stale", "digit 1", "timeout", "answer"},
			want:    []string{"dial-in", "wait", "wait", "wait", "connected dial-in"}},
		{name: "a group's no answer", setup: func(f *fixture) {
			withDialIn(f)
			f.dir.sdgs["front"].Route.NoAnswer = conferenceRoute()
		}, root: sdgRoute("front"), replies: []string{"noanswer", "answer"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, "dial-in", "connected dial-in"},
			wantPath: []string{"sdg:front", "group:simultaneous no_answer", "conference"}},
	})
}

// After a DialIn ends, the call is over: nothing more happens.
func TestDialInEnds(t *testing.T) {
	f := newFixture()
	withDialIn(f)
	c, a := Start(f.env(), *conferenceRoute())
	d, ok := a.(DialIn)
	if !ok || d.Step != 1 {
		t.Fatalf("first action %#v, want DialIn step 1", a)
	}
	if got, ok := c.Next(Answered{Step: d.Step}).(Connected); !ok || !got.DialIn || got.Member != "" {
		t.Fatalf("joined: %#v", got)
	}
	if !c.Done() {
		t.Fatal("not done after joining")
	}
	if _, ok := c.Next(NoAnswer{Step: d.Step}).(Wait); !ok {
		t.Fatal("an event after the end did something")
	}
}
