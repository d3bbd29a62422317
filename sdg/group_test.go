package sdg

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// withGroup adds the SDG "g" (named "G") routing to r.
func withGroup(r *account.Route, more ...func(*fixture)) func(*fixture) {
	return func(f *fixture) {
		f.dir.add("g", "G", r)
		for _, m := range more {
			m(f)
		}
	}
}

func states(s map[string]MemberState) func(*fixture) {
	return func(f *fixture) { maps.Copy(f.pres.states, s) }
}

func TestStrategies(t *testing.T) {
	const (
		sim  = account.StrategySimultaneous
		seq  = account.StrategySequential
		rot  = account.StrategyRotating
		idle = account.StrategyLongestIdle
	)
	t0 := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	root := sdgRoute("g")
	fallback := userRoute("u-carol")
	runWalks(t, []walkCase{
		{
			name: "simultaneous rings every available member", root: root,
			setup: withGroup(groupRoute(sim, 10, nil, "a", "b", "c", "d", "e"),
				states(map[string]MemberState{"b": Busy, "c": Unregistered, "d": DND, "e": Ringing})),
			replies:  []string{"answer e"},
			want:     []string{`ring a,e 10s "G"`, "connected e"},
			wantPath: []string{"sdg:g", "group:simultaneous", "member:e"},
		},
		{
			name: "simultaneous rings out to no_answer", root: root,
			setup:   withGroup(groupRoute(sim, 10, fallback, "a", "b")),
			replies: []string{"noanswer", "answer u-carol"},
			want:    []string{`ring a,b 10s "G"`, `ring u-carol 30s "G"`, "connected u-carol"},
		},
		{
			name: "simultaneous rings out without no_answer", root: root,
			setup:   withGroup(groupRoute(sim, 10, nil, "a", "b")),
			replies: []string{"noanswer 486"},
			want:    []string{`ring a,b 10s "G"`, "fail 480"},
			wantErr: ErrNoAnswer,
		},
		{
			name: "nobody available follows no_answer at once", root: root,
			setup: withGroup(groupRoute(sim, 10, fallback, "a", "b"),
				states(map[string]MemberState{"a": Busy, "b": Unregistered})),
			replies:  []string{"answer u-carol"},
			want:     []string{`ring u-carol 30s "G"`, "connected u-carol"},
			wantPath: []string{"sdg:g", "group:simultaneous no_answer", "user:u-carol"},
		},
		{
			name: "nobody available without no_answer", root: root,
			setup: withGroup(groupRoute(seq, 10, nil, "a", "b"),
				states(map[string]MemberState{"a": DND, "b": Busy})),
			want: []string{"fail 480"}, wantErr: ErrNoAnswer,
		},
		{
			name: "no members follows no_answer", root: root,
			setup:   withGroup(groupRoute(rot, 10, fallback)),
			replies: []string{"answer u-carol"},
			want:    []string{`ring u-carol 30s "G"`, "connected u-carol"},
		},
		{
			name: "default ring timeout", root: root,
			setup: withGroup(groupRoute(sim, 0, nil, "a")),
			want:  []string{`ring a 20s "G"`},
		},
		{
			name: "members listed twice ring once", root: root,
			setup: withGroup(groupRoute(sim, 10, nil, "a", "b", "a", "")),
			want:  []string{`ring a,b 10s "G"`},
		},
		{
			name: "sequential in member order", root: root,
			setup:    withGroup(groupRoute(seq, 15, fallback, "a", "b", "c")),
			replies:  []string{"noanswer", "noanswer 486", "noanswer", "noanswer"},
			want:     []string{`ring a 15s "G"`, `ring b 15s "G"`, `ring c 15s "G"`, `ring u-carol 30s "G"`, "fail 480"},
			wantPath: []string{"sdg:g", "group:sequential no_answer", "user:u-carol"},
			wantErr:  ErrNoAnswer,
		},
		{
			name: "sequential answered by the second", root: root,
			setup:    withGroup(groupRoute(seq, 15, fallback, "a", "b", "c")),
			replies:  []string{"noanswer", "answer b"},
			want:     []string{`ring a 15s "G"`, `ring b 15s "G"`, "connected b"},
			wantPath: []string{"sdg:g", "group:sequential", "member:b"},
		},
		{
			name: "sequential skips busy, unregistered and dnd", root: root,
			setup: withGroup(groupRoute(seq, 15, nil, "a", "b", "c", "d", "e"),
				states(map[string]MemberState{"a": Busy, "c": Unregistered, "d": DND})),
			replies: []string{"noanswer", "noanswer"},
			want:    []string{`ring b 15s "G"`, `ring e 15s "G"`, "fail 480"},
			wantErr: ErrNoAnswer,
		},
		{
			name: "a member busy mid-hunt is skipped", root: root,
			setup:   withGroup(groupRoute(seq, 15, nil, "a", "b", "c")),
			replies: []string{"set b busy", "noanswer", "answer c"},
			want:    []string{`ring a 15s "G"`, `ring c 15s "G"`, "connected c"},
		},
		{
			name: "a member back mid-hunt is rung", root: root,
			setup:   withGroup(groupRoute(seq, 15, nil, "a", "b", "c"), states(map[string]MemberState{"c": Unregistered})),
			replies: []string{"set c idle", "noanswer", "noanswer", "answer c"},
			want:    []string{`ring a 15s "G"`, `ring b 15s "G"`, `ring c 15s "G"`, "connected c"},
		},
		{
			name: "everyone busy mid-hunt follows no_answer", root: root,
			setup:   withGroup(groupRoute(idle, 15, fallback, "a", "b", "c")),
			replies: []string{"set b dnd", "set c busy", "noanswer", "answer u-carol"},
			want:    []string{`ring a 15s "G"`, `ring u-carol 30s "G"`, "connected u-carol"},
		},
		{
			name: "rotating starts after the last to answer", root: root,
			setup: withGroup(groupRoute(rot, 15, nil, "a", "b", "c"),
				func(f *fixture) { f.rot["sdg:g/route"] = "a" }),
			replies: []string{"noanswer", "noanswer", "noanswer"},
			want:    []string{`ring b 15s "G"`, `ring c 15s "G"`, `ring a 15s "G"`, "fail 480"},
			wantErr: ErrNoAnswer,
		},
		{
			name: "rotating after the last member wraps", root: root,
			setup: withGroup(groupRoute(rot, 15, nil, "a", "b", "c"),
				func(f *fixture) { f.rot["sdg:g/route"] = "c" }),
			want: []string{`ring a 15s "G"`},
		},
		{
			name: "rotating after a member since removed starts at the first", root: root,
			setup: withGroup(groupRoute(rot, 15, nil, "a", "b", "c"),
				func(f *fixture) { f.rot["sdg:g/route"] = "gone" }),
			want: []string{`ring a 15s "G"`},
		},
		{
			name: "rotating skips the busy", root: root,
			setup: withGroup(groupRoute(rot, 15, nil, "a", "b", "c"),
				func(f *fixture) { f.rot["sdg:g/route"] = "a"; f.pres.states["b"] = Busy }),
			replies: []string{"noanswer"},
			want:    []string{`ring c 15s "G"`, `ring a 15s "G"`},
		},
		{
			name: "longest idle first, never called before all", root: root,
			setup: withGroup(groupRoute(idle, 15, nil, "a", "b", "c", "d"),
				func(f *fixture) {
					f.pres.ends["a"] = t0.Add(10 * time.Minute)
					f.pres.ends["c"] = t0.Add(5 * time.Minute)
					f.pres.ends["d"] = t0
				}),
			replies: []string{"noanswer", "noanswer", "noanswer", "noanswer"},
			want:    []string{`ring b 15s "G"`, `ring d 15s "G"`, `ring c 15s "G"`, `ring a 15s "G"`, "fail 480"},
			wantErr: ErrNoAnswer,
		},
		{
			name: "longest idle ties keep member order", root: root,
			setup: withGroup(groupRoute(idle, 15, nil, "a", "b", "c"),
				func(f *fixture) {
					f.pres.ends["a"] = t0.Add(time.Minute)
					f.pres.ends["b"] = t0
					f.pres.ends["c"] = t0
				}),
			replies: []string{"noanswer", "noanswer"},
			want:    []string{`ring b 15s "G"`, `ring c 15s "G"`, `ring a 15s "G"`},
		},
		{
			name: "longest idle skips the busy", root: root,
			setup: withGroup(groupRoute(idle, 15, nil, "a", "b"),
				func(f *fixture) { f.pres.ends["a"] = t0; f.pres.states["b"] = Busy }),
			replies: []string{"answer a"},
			want:    []string{`ring a 15s "G"`, "connected a"},
		},
		{
			name: "display name of the innermost sdg", root: sdgRoute("outer"),
			setup: func(f *fixture) {
				f.dir.add("outer", "Outer", groupRoute(sim, 10, sdgRoute("inner"), "a"))
				f.dir.add("inner", "Inner", groupRoute(sim, 10, nil, "b"))
			},
			replies: []string{"noanswer", "answer b"},
			want:    []string{`ring a 10s "Outer"`, `ring b 10s "Inner"`, "connected b"},
		},
	})
}

// TestGroupKeys checks the keys groups and menus are known by, under
// which rotating state is stored, and the Rotation a rotating answer
// hands back.
func TestGroupKeys(t *testing.T) {
	f := newFixture()
	f.dir.add("m", "M", ivrRoute("m", 5, 0, map[string]*account.Route{
		"#": groupRoute(account.StrategySequential, 10,
			groupRoute(account.StrategyRotating, 10, nil, "a", "b"), "c"),
	}, nil))
	f.rot["sdg:m/route.options.#.no_answer"] = "a"
	c, a := Start(f.env(), *sdgRoute("m"))
	menu, ok := a.(Menu)
	if !ok || menu.IVR != "sdg:m/route" || menu.Keys != "#" {
		t.Fatalf("got %#v, want the menu sdg:m/route with keys #", a)
	}
	a = c.Next(Digit{Step: menu.Step, Key: "#"})
	seq, ok := a.(Ring)
	if !ok || seq.Group != "sdg:m/route.options.#" || seq.Strategy != account.StrategySequential {
		t.Fatalf("got %#v, want the sequential group sdg:m/route.options.#", a)
	}
	a = c.Next(NoAnswer{Step: seq.Step})
	rot, ok := a.(Ring)
	if !ok || rot.Group != "sdg:m/route.options.#.no_answer" || rot.Users[0] != "b" {
		t.Fatalf("got %#v, want the rotating group sdg:m/route.options.#.no_answer ringing b", a)
	}
	a = c.Next(Answered{Step: rot.Step, User: "b"})
	conn, ok := a.(Connected)
	want := Rotation{Group: "sdg:m/route.options.#.no_answer", Member: "b"}
	if !ok || conn.Rotation == nil || *conn.Rotation != want {
		t.Fatalf("got %#v, want Connected with rotation %+v", a, want)
	}
	if !c.Done() || c.Result() == nil {
		t.Errorf("Done %v, Result %v: want the call over", c.Done(), c.Result())
	}
}

// TestNoRotationOutsideRotatingGroups checks that only rotating groups ask
// for state to be stored.
func TestNoRotationOutsideRotatingGroups(t *testing.T) {
	for _, strategy := range []string{account.StrategySimultaneous, account.StrategySequential, account.StrategyLongestIdle} {
		f := newFixture()
		f.dir.add("g", "G", groupRoute(strategy, 10, nil, "a"))
		c, a := Start(f.env(), *sdgRoute("g"))
		a = c.Next(Answered{Step: a.(Ring).Step, User: "a"})
		if conn, ok := a.(Connected); !ok || conn.Rotation != nil {
			t.Errorf("%s: got %#v, want Connected without a rotation", strategy, a)
		}
	}
}

// TestRotatingFairness runs 300 calls to a rotating group of three, each
// answered by the first member rung: each member is rung first 100 times,
// and every call starts after the member who took the one before. Half
// way through, the state moves to a new store, as after a leader change.
func TestRotatingFairness(t *testing.T) {
	members := []string{"a", "b", "c"}
	f := newFixture()
	f.dir.add("g", "G", groupRoute(account.StrategyRotating, 10, nil, members...))
	first := map[string]int{}
	last := ""
	for call := range 300 {
		if call == 150 {
			f.rot = maps.Clone(f.rot)
		}
		c, a := Start(f.env(), *sdgRoute("g"))
		ring, ok := a.(Ring)
		if !ok {
			t.Fatalf("call %d: got %#v, want a Ring", call, a)
		}
		m := ring.Users[0]
		if last != "" && m != after(members, last) {
			t.Fatalf("call %d rang %s first, want %s: the member after %s", call, m, after(members, last), last)
		}
		first[m]++
		conn, ok := c.Next(Answered{Step: ring.Step, User: m}).(Connected)
		if !ok || conn.Rotation == nil {
			t.Fatalf("call %d: answer gave %#v, want Connected with a rotation", call, conn)
		}
		f.rot[conn.Rotation.Group] = conn.Rotation.Member
		last = m
	}
	for _, m := range members {
		if first[m] != 100 {
			t.Errorf("%s rang first %d times, want 100 (all: %v)", m, first[m], first)
		}
	}
}

// TestRotatingAfterWhoAnswered checks that the next call starts after the
// member who answered, not after the first rung.
func TestRotatingAfterWhoAnswered(t *testing.T) {
	f := newFixture()
	f.dir.add("g", "G", groupRoute(account.StrategyRotating, 10, nil, "a", "b", "c", "d"))
	var got []string
	for range 3 {
		c, a := Start(f.env(), *sdgRoute("g"))
		r1 := a.(Ring)
		r2 := c.Next(NoAnswer{Step: r1.Step}).(Ring)
		got = append(got, r1.Users[0], r2.Users[0])
		conn := c.Next(Answered{Step: r2.Step, User: r2.Users[0]}).(Connected)
		f.rot[conn.Rotation.Group] = conn.Rotation.Member
	}
	want := []string{"a", "b", "c", "d", "a", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("rung %q, want %q", got, want)
	}
}

func after(members []string, m string) string {
	i := slices.Index(members, m)
	return members[(i+1)%len(members)]
}
