package sdg

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func TestRouteTypes(t *testing.T) {
	busy := func(u string) func(*fixture) {
		return func(f *fixture) { f.pres.states[u] = Busy }
	}
	runWalks(t, []walkCase{
		{
			name: "user answers", root: userRoute("u-carol"), replies: []string{"answer u-carol"},
			want:     []string{`ring u-carol 30s ""`, "connected u-carol"},
			wantPath: []string{"user:u-carol"},
		},
		{
			name: "user busy", root: userRoute("u-carol"), setup: busy("u-carol"),
			want: []string{"fail 486"}, wantPath: []string{"user:u-carol"}, wantErr: ErrBusy,
		},
		{
			name: "user unregistered", root: userRoute("u-carol"),
			setup: func(f *fixture) { f.pres.states["u-carol"] = Unregistered },
			want:  []string{"fail 480"}, wantErr: ErrUnavailable,
		},
		{
			name: "user on do not disturb", root: userRoute("u-carol"),
			setup: func(f *fixture) { f.pres.states["u-carol"] = DND },
			want:  []string{"fail 480"}, wantErr: ErrUnavailable,
		},
		{
			name: "user already ringing is rung", root: userRoute("u-carol"),
			setup:   func(f *fixture) { f.pres.states["u-carol"] = Ringing },
			replies: []string{"answer u-carol"},
			want:    []string{`ring u-carol 30s ""`, "connected u-carol"},
		},
		{
			name: "user rings out", root: userRoute("u-carol"), replies: []string{"noanswer"},
			want: []string{`ring u-carol 30s ""`, "fail 480"}, wantErr: ErrNoAnswer,
		},
		{
			name: "user declines", root: userRoute("u-carol"), replies: []string{"noanswer 603"},
			want: []string{`ring u-carol 30s ""`, "fail 603"}, wantErr: ErrNoAnswer,
		},
		{
			name: "sdg to a user shows the sdg's name", root: sdgRoute("operator"), replies: []string{"answer u-carol"},
			want:     []string{`ring u-carol 30s "Operator"`, "connected u-carol"},
			wantPath: []string{"sdg:operator", "user:u-carol"},
		},
		{
			name: "number dialled out", root: numberRoute("+14155550123"), replies: []string{"answer"},
			want:     []string{"dial +14155550123", "connected +14155550123"},
			wantPath: []string{"dial:+14155550123"},
		},
		{
			name: "number fails with the trunk's status", root: numberRoute("+14155550123"), replies: []string{"noanswer 503"},
			want: []string{"dial +14155550123", "fail 503"}, wantErr: ErrDialFailed,
		},
		{
			name: "number without a status", root: numberRoute("+14155550123"), replies: []string{"noanswer"},
			want: []string{"dial +14155550123", "fail 480"}, wantErr: ErrDialFailed,
		},
		{
			name: "numbers entry followed internally", root: numberRoute("+16505550100"),
			replies:  []string{"digit 0", "answer u-carol"},
			want:     []string{"menu main-menu 1/3 8s", `ring u-carol 30s "Operator"`, "connected u-carol"},
			wantPath: []string{"number:+16505550100", "sdg:menu", "ivr:main-menu option 0", "sdg:operator", "user:u-carol"},
		},
		{
			name: "ivr option to a number", root: sdgRoute("menu"), replies: []string{"digit 3", "answer"},
			want:     []string{"menu main-menu 1/3 8s", "dial +14155550123", "connected +14155550123"},
			wantPath: []string{"sdg:menu", "ivr:main-menu option 3", "dial:+14155550123"},
		},
		{
			name: "group answered", root: sdgRoute("front"), replies: []string{"answer u-bob"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, "connected u-bob"},
			wantPath: []string{"sdg:front", "group:simultaneous", "member:u-bob"},
		},
		{
			name: "group no_answer to another sdg", root: sdgRoute("front"), replies: []string{"noanswer", "answer u-carol"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, `ring u-carol 30s "Operator"`, "connected u-carol"},
			wantPath: []string{"sdg:front", "group:simultaneous no_answer", "sdg:operator", "user:u-carol"},
		},
		{
			name: "group no_answer to a number", root: sdgRoute("sales"), replies: []string{"noanswer", "noanswer", "answer"},
			want: []string{`ring u-dave 15s "Branch Sales"`, `ring u-erin 15s "Branch Sales"`,
				"dial +13125550299", "connected +13125550299"},
			wantPath: []string{"sdg:sales", "group:sequential no_answer", "dial:+13125550299"},
		},
		{
			name: "no_answer chain ends at a busy user", root: sdgRoute("front"), setup: busy("u-carol"),
			replies:  []string{"noanswer"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, "fail 486"},
			wantPath: []string{"sdg:front", "group:simultaneous no_answer", "sdg:operator", "user:u-carol"},
			wantErr:  ErrBusy,
		},
		{
			name: "unknown sdg", root: sdgRoute("nope"),
			want: []string{"fail 404"}, wantErr: ErrNotFound,
		},
		{
			name: "sdg route without id", root: sdgRoute(""),
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
		{
			name: "sdg without a route", root: sdgRoute("empty"),
			setup: func(f *fixture) { f.dir.add("empty", "Empty", nil) },
			want:  []string{"fail 500"}, wantPath: []string{"sdg:empty"}, wantErr: ErrBadRoute,
		},
		{
			name: "unknown route type", root: &account.Route{Type: "queue"},
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
		{
			name: "unknown strategy", root: groupRoute("random", 10, nil, "u-alice"),
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
		{
			name: "user route without id", root: userRoute(""),
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
		{
			name: "number route without number", root: numberRoute(""),
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
		{
			name: "ivr without prompt", root: ivrRoute("", 5, 1, nil, nil),
			want: []string{"fail 500"}, wantErr: ErrBadRoute,
		},
	})
}

func TestEvents(t *testing.T) {
	runWalks(t, []walkCase{
		{
			name: "hangup while ringing", root: sdgRoute("front"), replies: []string{"hangup", "answer u-bob"},
			want:     []string{`ring u-alice,u-bob 20s "Front Desk"`, "fail 487", "wait"},
			wantPath: []string{"sdg:front", "group:simultaneous"},
			wantErr:  ErrHangup,
		},
		{
			name: "hangup in a menu", root: sdgRoute("menu"), replies: []string{"hangup"},
			want: []string{"menu main-menu 1/3 8s", "fail 487"}, wantErr: ErrHangup,
		},
		{
			name: "stale events are ignored", root: sdgRoute("sales"),
			replies: []string{"noanswer", "stale", "answer u-erin"},
			want:    []string{`ring u-dave 15s "Branch Sales"`, `ring u-erin 15s "Branch Sales"`, "wait", "connected u-erin"},
		},
		{
			name: "answer from a member not rung", root: sdgRoute("sales"),
			replies: []string{"answer u-erin", "answer u-dave"},
			want:    []string{`ring u-dave 15s "Branch Sales"`, "wait", "connected u-dave"},
		},
		{
			name: "answer from someone else on a user route", root: userRoute("u-carol"),
			replies: []string{"answer u-dave", "answer u-carol"},
			want:    []string{`ring u-carol 30s ""`, "wait", "connected u-carol"},
		},
		{
			name: "events that do not fit the action", root: sdgRoute("front"),
			replies: []string{"digit 1", "timeout", "answer u-alice"},
			want:    []string{`ring u-alice,u-bob 20s "Front Desk"`, "wait", "wait", "connected u-alice"},
		},
		{
			name: "ringing events in a menu", root: sdgRoute("menu"),
			replies: []string{"answer u-alice", "noanswer", "digit 2", "answer u-dave"},
			want: []string{"menu main-menu 1/3 8s", "wait", "wait",
				`ring u-dave 15s "Branch Sales"`, "connected u-dave"},
		},
		{
			name: "digits while dialling", root: numberRoute("+14155550123"),
			replies: []string{"digit 1", "answer"},
			want:    []string{"dial +14155550123", "wait", "connected +14155550123"},
		},
		{
			name: "events after the end", root: userRoute("u-carol"),
			replies: []string{"answer u-carol", "noanswer", "hangup"},
			want:    []string{`ring u-carol 30s ""`, "connected u-carol", "wait", "wait"},
		},
	})
}

// chain adds SDGs c1..cn, each routing to the next, the last to a user.
func chain(f *fixture, n int) {
	for i := 1; i <= n; i++ {
		r := sdgRoute(fmt.Sprintf("c%d", i+1))
		if i == n {
			r = userRoute("u-zed")
		}
		f.dir.add(fmt.Sprintf("c%d", i), fmt.Sprintf("Chain %d", i), r)
	}
}

func TestNesting(t *testing.T) {
	for _, tc := range []struct {
		depth   int
		want    string
		wantErr error
	}{
		{1, `ring u-zed 30s "Chain 1"`, nil},
		{2, `ring u-zed 30s "Chain 2"`, nil},
		{account.MaxSDGDepth, fmt.Sprintf(`ring u-zed 30s "Chain %d"`, account.MaxSDGDepth), nil},
		{account.MaxSDGDepth + 1, "fail 483", ErrTooDeep},
		{20, "fail 483", ErrTooDeep},
	} {
		t.Run(fmt.Sprint(tc.depth), func(t *testing.T) {
			f := newFixture()
			chain(f, tc.depth)
			replies := []string{"answer u-zed"}
			want := []string{tc.want, "connected u-zed"}
			if tc.wantErr != nil {
				replies, want = nil, []string{tc.want}
			}
			got, c := drive(t, f, *sdgRoute("c1"), replies...)
			if !slices.Equal(got, want) {
				t.Errorf("trace %q, want %q", got, want)
			}
			checkResult(t, c, tc.wantErr)
			sdgs := 0
			for _, h := range c.Path() {
				if strings.HasPrefix(h, "sdg:") {
					sdgs++
				}
			}
			if sdgs > account.MaxSDGDepth {
				t.Errorf("path %q enters %d sdgs, more than %d", c.Path(), sdgs, account.MaxSDGDepth)
			}
		})
	}
	t.Run("the message names the chain", func(t *testing.T) {
		f := newFixture()
		chain(f, account.MaxSDGDepth+1)
		_, a := Start(f.env(), *sdgRoute("c1"))
		want := "sdg:c1 -> sdg:c2 -> sdg:c3 -> sdg:c4 -> sdg:c5 -> sdg:c6 -> sdg:c7 -> sdg:c8 -> sdg:c9 passes 9 sdgs (at most 8)"
		if fail, ok := a.(Fail); !ok || !strings.Contains(fail.Reason(), want) {
			t.Errorf("got %#v, want a Fail saying %q", a, want)
		}
	})
}

// TestLoops hands the engine graphs that validation would reject.
func TestLoops(t *testing.T) {
	nobody := func(f *fixture) {
		for _, u := range []string{"u-alice", "u-bob", "u-carol"} {
			f.pres.states[u] = Unregistered
		}
	}
	selfGroup := groupRoute(account.StrategySequential, 10, nil, "u-alice")
	selfGroup.NoAnswer = selfGroup
	selfMenu := ivrRoute("self", 5, 0, map[string]*account.Route{"1": userRoute("u-alice")}, nil)
	selfMenu.NoInput = selfMenu
	// A tree of distinct routes deeper than any legal call: groups whose
	// members are all away, each falling back to the next.
	var deep *account.Route = userRoute("u-alice")
	for range 2 * maxRoutes {
		deep = groupRoute(account.StrategySimultaneous, 10, deep, "u-bob")
	}
	runWalks(t, []walkCase{
		{
			name: "sdg to itself", root: sdgRoute("self"),
			setup: func(f *fixture) { f.dir.add("self", "Self", sdgRoute("self")) },
			want:  []string{"fail 482"}, wantPath: []string{"sdg:self"}, wantErr: ErrLoop,
		},
		{
			name: "two sdgs in a ring", root: sdgRoute("a"),
			setup: func(f *fixture) {
				f.dir.add("a", "A", groupRoute(account.StrategySimultaneous, 10, sdgRoute("b"), "u-alice"))
				f.dir.add("b", "B", groupRoute(account.StrategySimultaneous, 10, sdgRoute("a"), "u-bob"))
			},
			replies:  []string{"noanswer", "noanswer"},
			want:     []string{`ring u-alice 10s "A"`, `ring u-bob 10s "B"`, "fail 482"},
			wantPath: []string{"sdg:a", "group:simultaneous no_answer", "sdg:b", "group:simultaneous no_answer"},
			wantErr:  ErrLoop,
		},
		{
			name: "ring with nobody available", root: sdgRoute("a"),
			setup: func(f *fixture) {
				nobody(f)
				f.dir.add("a", "A", groupRoute(account.StrategySimultaneous, 10, sdgRoute("b"), "u-alice"))
				f.dir.add("b", "B", groupRoute(account.StrategySequential, 10, sdgRoute("a"), "u-bob"))
			},
			want: []string{"fail 482"}, wantErr: ErrLoop,
		},
		{
			name: "ivr option back to its own sdg", root: sdgRoute("m"),
			setup: func(f *fixture) {
				f.dir.add("m", "M", ivrRoute("m", 5, 1, map[string]*account.Route{"9": sdgRoute("m")}, nil))
			},
			replies:  []string{"digit 9"},
			want:     []string{"menu m 1/2 5s", "fail 482"},
			wantPath: []string{"sdg:m", "ivr:m option 9"},
			wantErr:  ErrLoop,
		},
		{
			name: "numbers entry and sdg in a ring", root: numberRoute("+15550000001"),
			setup: func(f *fixture) {
				f.dir.numbers["+15550000001"] = account.Number{Number: "+15550000001", Route: sdgRoute("n")}
				f.dir.add("n", "N", numberRoute("+15550000001"))
			},
			want: []string{"fail 482"}, wantPath: []string{"number:+15550000001", "sdg:n"}, wantErr: ErrLoop,
		},
		{
			name: "group whose no_answer is itself", root: sdgRoute("self"),
			setup:   func(f *fixture) { f.dir.add("self", "Self", selfGroup) },
			replies: []string{"noanswer"},
			want:    []string{`ring u-alice 10s "Self"`, "fail 482"}, wantErr: ErrLoop,
		},
		{
			name: "group whose no_answer is itself, nobody available", root: sdgRoute("self"),
			setup: func(f *fixture) { nobody(f); f.dir.add("self", "Self", selfGroup) },
			want:  []string{"fail 482"}, wantErr: ErrLoop,
		},
		{
			name: "ivr whose no_input is itself", root: sdgRoute("self"),
			setup:   func(f *fixture) { f.dir.add("self", "Self", selfMenu) },
			replies: []string{"timeout"},
			want:    []string{"menu self 1/1 5s", "fail 482"}, wantErr: ErrLoop,
		},
		{
			// Start copies its root, so the loop closes one lap later.
			name: "root group whose no_answer is itself", root: selfGroup,
			replies: []string{"noanswer", "noanswer"},
			want:    []string{`ring u-alice 10s ""`, `ring u-alice 10s ""`, "fail 482"}, wantErr: ErrLoop,
		},
		{
			name: "routes nested past any legal call", root: deep, setup: nobody,
			want: []string{"fail 483"}, wantErr: ErrTooDeep,
		},
	})
}

// TestDemoSnapshot walks the contract's reference account.
func TestDemoSnapshot(t *testing.T) {
	data, err := os.ReadFile("../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatalf("read the reference snapshot: %v", err)
	}
	s, err := account.DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := account.Validate(s, 0); err != nil {
		t.Fatal(err)
	}
	f := newFixture()
	f.dir = &directory{sdgs: map[string]account.SDG{}, numbers: map[string]account.Number{}}
	for _, g := range s.SDGs {
		f.dir.sdgs[g.ID] = g
	}
	for _, n := range s.Numbers {
		f.dir.numbers[n.Number] = n
	}
	main := s.Numbers[0].Number
	got, c := drive(t, f, *numberRoute(main), "digit 2", "noanswer", "answer u-erin")
	want := []string{"menu main-menu 1/3 8s", `ring u-dave 15s "Branch Sales"`, `ring u-erin 15s "Branch Sales"`, "connected u-erin"}
	if !slices.Equal(got, want) {
		t.Errorf("trace %q, want %q", got, want)
	}
	wantPath := []string{"number:" + main, "sdg:sdg-main-menu", "ivr:main-menu option 2", "sdg:sdg-branch-sales", "group:sequential", "member:u-erin"}
	if !slices.Equal(c.Path(), wantPath) {
		t.Errorf("path %q, want %q", c.Path(), wantPath)
	}
	if conn, ok := c.Result().(Connected); !ok || !slices.Equal(conn.Path, wantPath) || conn.Member != "u-erin" {
		t.Errorf("result %#v, want Connected to u-erin with the path", c.Result())
	}
}

func TestFailReason(t *testing.T) {
	f := newFixture()
	f.pres.states["u-alice"] = Busy
	f.pres.states["u-bob"] = DND
	f.dir.add("lone", "Lone", groupRoute(account.StrategySimultaneous, 10, nil, "u-alice", "u-bob"))
	_, a := Start(f.env(), *sdgRoute("lone"))
	fail, ok := a.(Fail)
	if !ok {
		t.Fatalf("got %#v, want a Fail", a)
	}
	want := "sdg:lone/route: no answer: nobody was available (busy, unregistered or do not disturb) and the group has no no_answer route"
	if fail.Status != 480 || fail.Reason() != want || !errors.Is(fail.Err, ErrNoAnswer) {
		t.Errorf("got %d %q, want 480 %q", fail.Status, fail.Reason(), want)
	}
}

// TestEmptyEnv checks that a call without a directory, presence or
// rotation state fails cleanly.
func TestEmptyEnv(t *testing.T) {
	for _, tc := range []struct {
		root    *account.Route
		want    string
		wantErr error
	}{
		{sdgRoute("front"), "fail 404", ErrNotFound},
		{userRoute("u-alice"), "fail 480", ErrUnavailable},
		{groupRoute(account.StrategyRotating, 5, nil, "a"), "fail 480", ErrNoAnswer},
		{groupRoute(account.StrategyLongestIdle, 5, nil, "a"), "fail 480", ErrNoAnswer},
		{numberRoute("+16505550100"), "dial +16505550100", nil},
	} {
		c, a := Start(Env{}, *tc.root)
		if got := describe(a); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.root.Type, got, tc.want)
		}
		if tc.wantErr != nil {
			checkResult(t, c, tc.wantErr)
		}
	}
}

func TestMemberStateString(t *testing.T) {
	for s, want := range map[MemberState]string{
		Unregistered: "unregistered", Idle: "idle", Ringing: "ringing", Busy: "busy", DND: "dnd", 9: "unknown", -1: "unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("MemberState(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
