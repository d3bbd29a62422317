package sdg

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// directory is a Directory over maps.
type directory struct {
	sdgs    map[string]account.SDG
	numbers map[string]account.Number
}

func (d *directory) SDG(id string) (account.SDG, bool) {
	s, ok := d.sdgs[id]
	return s, ok
}

func (d *directory) Number(n string) (account.Number, bool) {
	e, ok := d.numbers[n]
	return e, ok
}

func (d *directory) add(id, name string, r *account.Route) {
	d.sdgs[id] = account.SDG{ID: id, Name: name, Route: r}
}

// presence is a Presence over maps; users not listed are idle and were
// never called.
type presence struct {
	states map[string]MemberState
	ends   map[string]time.Time
}

func (p *presence) State(u string) MemberState {
	if s, ok := p.states[u]; ok {
		return s
	}
	return Idle
}

func (p *presence) LastCallEnd(u string) time.Time { return p.ends[u] }

// rotations is a RotationState over a map, updated from Connected.
type rotations map[string]string

func (r rotations) LastAnswered(g string) string { return r[g] }

// fixture is one test's world.
type fixture struct {
	dir  *directory
	pres *presence
	rot  rotations
}

func (f *fixture) env() Env { return Env{Directory: f.dir, Presence: f.pres, Rotations: f.rot} }

// newFixture is the demo account's routing: the main number reaches the
// main menu, whose options reach the front desk (a simultaneous group
// falling back to the operator), branch sales (a sequential group falling
// back to a number), an outside number and the operator.
func newFixture() *fixture {
	f := &fixture{
		dir: &directory{sdgs: map[string]account.SDG{}, numbers: map[string]account.Number{}},
		pres: &presence{
			states: map[string]MemberState{},
			ends:   map[string]time.Time{},
		},
		rot: rotations{},
	}
	f.dir.add("front", "Front Desk", groupRoute(account.StrategySimultaneous, 20, sdgRoute("operator"), "u-alice", "u-bob"))
	f.dir.add("operator", "Operator", userRoute("u-carol"))
	f.dir.add("menu", "Main Menu", ivrRoute("main-menu", 8, 2, map[string]*account.Route{
		"1": sdgRoute("front"),
		"2": sdgRoute("sales"),
		"3": numberRoute("+14155550123"),
		"0": sdgRoute("operator"),
	}, sdgRoute("operator")))
	f.dir.add("sales", "Branch Sales", groupRoute(account.StrategySequential, 15, numberRoute("+13125550299"), "u-dave", "u-erin"))
	f.dir.numbers["+16505550100"] = account.Number{Number: "+16505550100", Route: sdgRoute("menu")}
	return f
}

func userRoute(id string) *account.Route { return &account.Route{Type: account.RouteUser, ID: id} }

func sdgRoute(id string) *account.Route { return &account.Route{Type: account.RouteSDG, ID: id} }

func numberRoute(n string) *account.Route {
	return &account.Route{Type: account.RouteNumber, Number: n}
}

func groupRoute(strategy string, timeoutS int, noAnswer *account.Route, members ...string) *account.Route {
	return &account.Route{Type: account.RouteGroup, Strategy: strategy, RingTimeoutS: timeoutS,
		NoAnswer: noAnswer, Members: members}
}

func ivrRoute(prompt string, timeoutS, retries int, options map[string]*account.Route, noInput *account.Route) *account.Route {
	return &account.Route{Type: account.RouteIVR, Prompt: prompt, TimeoutS: timeoutS, Retries: retries,
		Options: options, NoInput: noInput}
}

// describe spells an action for a trace.
func describe(a Action) string {
	switch a := a.(type) {
	case Ring:
		return fmt.Sprintf("ring %s %v %q", strings.Join(a.Users, ","), a.Timeout, a.DisplayName)
	case Menu:
		s := fmt.Sprintf("menu %s %d/%d %v", a.Prompt, a.Attempt, a.Attempts, a.Timeout)
		if a.Notice != "" {
			s += " after " + a.Notice
		}
		return s
	case Dial:
		return "dial " + a.Number
	case DialIn:
		return "dial-in"
	case Voicemail:
		return "voicemail " + a.Mailbox
	case Connected:
		if a.DialIn {
			return "connected dial-in"
		}
		if a.Voicemail != "" {
			return "connected voicemail " + a.Voicemail
		}
		if a.Member != "" {
			return "connected " + a.Member
		}
		return "connected " + a.Number
	case Fail:
		return "fail " + strconv.Itoa(a.Status)
	case Wait:
		return "wait"
	}
	return fmt.Sprintf("unknown %T", a)
}

// stepOf is the step of a waiting action, 0 for the others.
func stepOf(a Action) int {
	switch a := a.(type) {
	case Ring:
		return a.Step
	case Menu:
		return a.Step
	case Dial:
		return a.Step
	case DialIn:
		return a.Step
	case Voicemail:
		return a.Step
	}
	return 0
}

// drive starts a call at root and feeds it replies, returning the trace of
// actions (the first action, then one per event). Replies:
//
//	answer U | noanswer [STATUS] | digit K | timeout | hangup
//	stale             an InputTimeout for the step before the current one
//	set U STATE       changes U's presence; sends nothing, adds no action
func drive(t *testing.T, f *fixture, root account.Route, replies ...string) ([]string, *Call) {
	t.Helper()
	c, a := Start(f.env(), root)
	trace := []string{describe(a)}
	step := stepOf(a)
	for _, r := range replies {
		w := strings.Fields(r)
		arg := func(i int) string {
			if i < len(w) {
				return w[i]
			}
			return ""
		}
		var ev Event
		switch w[0] {
		case "answer":
			ev = Answered{Step: step, User: arg(1)}
		case "noanswer":
			status, _ := strconv.Atoi(arg(1))
			ev = NoAnswer{Step: step, Status: status}
		case "digit":
			ev = Digit{Step: step, Key: arg(1)}
		case "timeout":
			ev = InputTimeout{Step: step}
		case "hangup":
			ev = Hangup{}
		case "stale":
			ev = InputTimeout{Step: step - 1}
		case "set":
			f.pres.states[arg(1)] = parseState(t, arg(2))
			continue
		default:
			t.Fatalf("unknown reply %q", r)
		}
		a = c.Next(ev)
		trace = append(trace, describe(a))
		if s := stepOf(a); s != 0 {
			step = s
		}
	}
	return trace, c
}

func parseState(t *testing.T, s string) MemberState {
	t.Helper()
	for i, n := range stateNames {
		if n == s {
			return MemberState(i)
		}
	}
	t.Fatalf("unknown state %q", s)
	return 0
}

// walkCase is one table row: a call started at root and the replies fed
// to it, with the trace, path and failure wanted.
type walkCase struct {
	name     string
	setup    func(f *fixture)
	root     *account.Route
	replies  []string
	want     []string
	wantPath []string
	wantErr  error // the sentinel a Fail wraps; nil: the call must not fail
}

func runWalks(t *testing.T, cases []walkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			if tc.setup != nil {
				tc.setup(f)
			}
			got, c := drive(t, f, *tc.root, tc.replies...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("trace\n got %q\nwant %q", got, tc.want)
			}
			if tc.wantPath != nil && !slices.Equal(c.Path(), tc.wantPath) {
				t.Errorf("path\n got %q\nwant %q", c.Path(), tc.wantPath)
			}
			checkResult(t, c, tc.wantErr)
		})
	}
}

// checkResult checks a finished call's result: a Fail wrapping wantErr, or
// no Fail when wantErr is nil.
func checkResult(t *testing.T, c *Call, wantErr error) {
	t.Helper()
	fail, failed := c.Result().(Fail)
	switch {
	case wantErr == nil && failed:
		t.Errorf("failed with %d %v, want no failure", fail.Status, fail.Err)
	case wantErr != nil && !failed:
		t.Errorf("result %#v, want a Fail wrapping %v", c.Result(), wantErr)
	case wantErr != nil && !errors.Is(fail.Err, wantErr):
		t.Errorf("failed with %v, want it to wrap %v", fail.Err, wantErr)
	}
	if failed && !slices.Equal(fail.Path, c.Path()) {
		t.Errorf("Fail.Path %q, want the call's path %q", fail.Path, c.Path())
	}
}
