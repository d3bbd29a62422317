package sdg

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

var (
	fuzzUsers = []string{"u-alice", "u-bob", "u-carol", "u-dave", "u-erin", "a", "b", "c", "nobody"}
	fuzzRoots = []*account.Route{
		sdgRoute("front"), sdgRoute("menu"), sdgRoute("sales"), sdgRoute("operator"),
		sdgRoute("loop-a"), sdgRoute("rot"), sdgRoute("idle"), sdgRoute("c1"), sdgRoute("nope"),
		numberRoute("+16505550100"), numberRoute("+15550009999"), userRoute("u-alice"),
		sdgRoute("dial-in"), conferenceRoute(),
	}
	fuzzKeys = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "", "12", "A"}
)

// fuzzBound is more than the waiting actions any call can take in the fuzz
// graph: every route is entered at most once, a group rings each member at
// most once and a menu plays at most 1 + MaxIVRRetries times.
const fuzzBound = 200

// fuzzFixture is the demo fixture with loops, nested SDGs and every strategy.
func fuzzFixture() *fixture {
	f := newFixture()
	f.dir.add("loop-a", "Loop A", groupRoute(account.StrategySequential, 5, sdgRoute("loop-b"), "a", "b"))
	f.dir.add("loop-b", "Loop B", ivrRoute("loop", 3, 2, map[string]*account.Route{
		"1": sdgRoute("loop-a"), "2": sdgRoute("rot"),
	}, sdgRoute("loop-a")))
	f.dir.add("rot", "Rotating", groupRoute(account.StrategyRotating, 5, sdgRoute("menu"), "a", "b", "c"))
	f.dir.add("idle", "Idle", groupRoute(account.StrategyLongestIdle, 5,
		ivrRoute("idle-menu", 2, 99, map[string]*account.Route{"#": sdgRoute("rot"), "5": conferenceRoute()}, sdgRoute("c1")), "c", "b", "a"))
	f.dir.add("dial-in", "Dial-in", conferenceRoute())
	chain(f, account.MaxSDGDepth+1)
	self := groupRoute(account.StrategySimultaneous, 5, nil, "u-alice", "c")
	self.NoAnswer = self
	f.dir.add("c5", "Self", self)
	f.pres.ends["a"] = time.Unix(100, 0)
	f.pres.ends["c"] = time.Unix(50, 0)
	return f
}

// FuzzCall feeds random events to calls in a fixed graph. The engine must
// not panic, must keep its invariants, and must finish within fuzzBound
// actions when every action then times out.
func FuzzCall(f *testing.F) {
	for _, seed := range [][]byte{
		{}, {0}, {1, 7, 0}, {1, 2, 1, 7}, {2, 1, 2, 7, 0}, {4, 1, 1, 1, 1, 1, 1},
		{5, 1, 1, 7, 0}, {6, 3, 3, 3, 3}, {9, 2, 0, 7}, {11, 4}, {7}, {8},
		{1, 6, 1, 3, 1, 1, 7}, {2, 5, 0, 1, 0, 1}, {6, 2, 11, 7, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := fuzzFixture()
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := int(data[0])
			data = data[1:]
			return b
		}
		c, a := Start(fx.env(), *fuzzRoots[next()%len(fuzzRoots)])
		chk := checker{t: t, c: c}
		chk.action(a)
		for len(data) > 0 && !c.Done() {
			step := c.Step()
			var ev Event
			switch op := next() % 16; op {
			case 0, 1:
				ev = Answered{Step: step, User: fuzzUsers[next()%len(fuzzUsers)]}
			case 2:
				ev = Answered{Step: step, User: chk.rung()}
			case 3, 4:
				ev = NoAnswer{Step: step, Status: []int{0, 408, 486, 503, 603, 200, -1}[next()%7]}
			case 5, 6, 7:
				ev = Digit{Step: step, Key: fuzzKeys[next()%len(fuzzKeys)]}
			case 8, 9:
				ev = InputTimeout{Step: step}
			case 10:
				ev = NoAnswer{Step: step - 1 - next()%3}
			case 11:
				ev = InputTimeout{Step: step + 1}
			case 12, 13:
				fx.pres.states[fuzzUsers[next()%len(fuzzUsers)]] = MemberState(next() % 6)
				continue
			case 14:
				fx.rot["sdg:rot/route"] = fuzzUsers[next()%len(fuzzUsers)]
				continue
			default:
				if next()%4 == 0 {
					ev = Hangup{}
				} else {
					ev = Digit{Step: step, Key: "#"}
				}
			}
			chk.action(c.Next(ev))
		}
		// Whatever happened, timeouts alone must end the call.
		for !c.Done() {
			if chk.waits > fuzzBound {
				t.Fatalf("still routing after %d actions; path %q", chk.waits, c.Path())
			}
			chk.action(c.Next(NoAnswer{Step: c.Step()}))
			if !c.Done() {
				chk.action(c.Next(InputTimeout{Step: c.Step()}))
			}
		}
		if r := c.Result(); r == nil {
			t.Fatalf("done without a result")
		}
		if _, ok := c.Next(Hangup{}).(Wait); !ok {
			t.Fatalf("an event after the end did something")
		}
	})
}

// checker checks each action a fuzzed call returns.
type checker struct {
	t     *testing.T
	c     *Call
	step  int
	waits int    // waiting actions so far
	last  Action // the last waiting action
}

func (k *checker) action(a Action) {
	t := k.t
	t.Helper()
	if a == nil {
		t.Fatal("nil action")
	}
	switch a := a.(type) {
	case Ring, Menu, Dial, DialIn:
		if s := stepOf(a); s <= k.step {
			t.Fatalf("%s has step %d after step %d", describe(a), s, k.step)
		} else {
			k.step = s
		}
		k.waits++
		k.last = a
		if k.waits > fuzzBound {
			t.Fatalf("more than %d actions; path %q", fuzzBound, k.c.Path())
		}
		if r, ok := a.(Ring); ok && (len(r.Users) == 0 || r.Timeout <= 0) {
			t.Fatalf("ring with nobody or no timeout: %#v", r)
		}
		if m, ok := a.(Menu); ok && (m.Attempt < 1 || m.Attempt > m.Attempts || m.Attempts > 1+account.MaxIVRRetries) {
			t.Fatalf("menu attempt %d of %d", m.Attempt, m.Attempts)
		}
	case Connected:
		if !k.c.Done() || a.Member == "" && a.Number == "" && !a.DialIn {
			t.Fatalf("bad Connected %#v", a)
		}
		if a.Rotation != nil && a.Rotation.Member != a.Member {
			t.Fatalf("rotation %+v for member %q", *a.Rotation, a.Member)
		}
	case Fail:
		if !k.c.Done() || a.Err == nil || a.Status < 400 || a.Status > 699 {
			t.Fatalf("bad Fail %d %v", a.Status, a.Err)
		}
	case Wait:
		if a.Reason == "" {
			t.Fatal("Wait without a reason")
		}
	default:
		t.Fatalf("unknown action %s", fmt.Sprintf("%T", a))
	}
	for _, h := range k.c.Path() {
		if h == "" {
			t.Fatalf("empty hop in path %q", k.c.Path())
		}
	}
}

// rung is a user the last Ring rang, "" if none.
func (k *checker) rung() string {
	if r, ok := k.last.(Ring); ok {
		return r.Users[0]
	}
	return ""
}
