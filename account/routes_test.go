package account

import (
	"strings"
	"testing"
)

func TestRulesRouteShape(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "sdg without route", mutate: func(s *Snapshot) { s.SDGs[1].Route = nil },
			want: []string{"sdgs[1].route"}},
		{name: "number without route", mutate: func(s *Snapshot) { s.Numbers[0].Route = nil },
			want: []string{"numbers[0].route"}},
		{name: "unknown type", mutate: func(s *Snapshot) { s.SDGs[1].Route.Type = "fax" },
			want: []string{"sdgs[1].route.type"}, msg: `"fax"`},
		{name: "type missing", mutate: func(s *Snapshot) { s.SDGs[1].Route.Type = "" },
			want: []string{"sdgs[1].route.type"}},
		{name: "type in upper case", mutate: func(s *Snapshot) { s.SDGs[1].Route.Type = "User" },
			want: []string{"sdgs[1].route.type"}},
		{name: "members on a user route", mutate: func(s *Snapshot) { s.SDGs[1].Route.Members = []string{"u-bob"} },
			want: []string{"sdgs[1].route.members"}, msg: "not used by a user route"},
		{name: "empty members list on a user route", mutate: func(s *Snapshot) { s.SDGs[1].Route.Members = []string{} },
			want: []string{"sdgs[1].route.members"}},
		{name: "id and strategy on a number route", mutate: func(s *Snapshot) {
			s.SDGs[2].Route.Options["3"].ID = "u-bob"
			s.SDGs[2].Route.Options["3"].Strategy = StrategyRotating
		}, want: []string{"sdgs[2].route.options.3.id", "sdgs[2].route.options.3.strategy"}},
		{name: "options on a group", mutate: func(s *Snapshot) {
			s.SDGs[0].Route.Options = map[string]*Route{"1": userRoute("u-bob")}
		}, want: []string{"sdgs[0].route.options"}},
		{name: "number on an sdg route", mutate: func(s *Snapshot) { s.Numbers[0].Route.Number = "+16505550100" },
			want: []string{"numbers[0].route.number"}},
		{name: "prompt on an ivr is fine", mutate: func(s *Snapshot) { s.SDGs[2].Route.Prompt = "menus/main-menu.v2" }},
		{name: "user route without id", mutate: func(s *Snapshot) { s.SDGs[1].Route.ID = "" },
			want: []string{"sdgs[1].route.id"}},
		{name: "sdg route without id", mutate: func(s *Snapshot) { s.Numbers[1].Route.ID = "" },
			want: []string{"numbers[1].route.id"}},
		{name: "nesting too deep", mutate: func(s *Snapshot) {
			r := userRoute("u-carol")
			for range MaxRouteNesting + 4 {
				r = &Route{Type: RouteGroup, Members: []string{"u-alice"}, Strategy: StrategySequential, RingTimeoutS: 5, NoAnswer: r}
			}
			s.SDGs[1].Route = r
		}, want: []string{"sdgs[1].route" + strings.Repeat(".no_answer", MaxRouteNesting)}, msg: "nested more than"},
	})
}

func TestRulesGroup(t *testing.T) {
	group := func(s *Snapshot) *Route { return s.SDGs[0].Route }
	runRuleCases(t, []ruleCase{
		{name: "members missing", mutate: func(s *Snapshot) { group(s).Members = nil },
			want: []string{"sdgs[0].route.members"}},
		{name: "members empty", mutate: func(s *Snapshot) { group(s).Members = []string{} },
			want: []string{"sdgs[0].route.members"}},
		{name: "member twice", mutate: func(s *Snapshot) { group(s).Members = []string{"u-alice", "u-bob", "u-alice"} },
			want: []string{"sdgs[0].route.members[2]"}, msg: "members[0]"},
		{name: "member twice in a long list", mutate: func(s *Snapshot) {
			for i := range 20 {
				id := "u-extra-" + string(rune('a'+i))
				addUser(s, id, "extra"+string(rune('a'+i)), itoa(3010+i))
				group(s).Members = append(group(s).Members, id)
			}
			group(s).Members = append(group(s).Members, "u-extra-c")
		}, want: []string{"sdgs[0].route.members[22]"}, msg: "members[4]"},
		{name: "member empty", mutate: func(s *Snapshot) { group(s).Members[0] = "" },
			want: []string{"sdgs[0].route.members[0]"}},
		{name: "every strategy", mutate: func(s *Snapshot) {
			for i, st := range []string{StrategySimultaneous, StrategySequential, StrategyRotating, StrategyLongestIdle} {
				addSDG(s, "sdg-"+st, itoa(1950+i), &Route{Type: RouteGroup, Members: []string{"u-bob"}, Strategy: st, RingTimeoutS: 30})
			}
		}},
		{name: "strategy unknown", mutate: func(s *Snapshot) { group(s).Strategy = "random" },
			want: []string{"sdgs[0].route.strategy"}},
		{name: "strategy missing", mutate: func(s *Snapshot) { group(s).Strategy = "" },
			want: []string{"sdgs[0].route.strategy"}},
		{name: "ring timeout missing", mutate: func(s *Snapshot) { group(s).RingTimeoutS = 0 },
			want: []string{"sdgs[0].route.ring_timeout_s"}, msg: "got 0"},
		{name: "ring timeout too long", mutate: func(s *Snapshot) { group(s).RingTimeoutS = 601 },
			want: []string{"sdgs[0].route.ring_timeout_s"}},
		{name: "ring timeout at limits", mutate: func(s *Snapshot) {
			group(s).RingTimeoutS = 600
			s.SDGs[3].Route.RingTimeoutS = 1
		}},
		{name: "no answer optional", mutate: func(s *Snapshot) { group(s).NoAnswer = nil }},
		{name: "no answer checked", mutate: func(s *Snapshot) { group(s).NoAnswer = &Route{Type: RouteUser} },
			want: []string{"sdgs[0].route.no_answer.id"}},
	})
}

func TestRulesIVR(t *testing.T) {
	ivr := func(s *Snapshot) *Route { return s.SDGs[2].Route }
	runRuleCases(t, []ruleCase{
		{name: "prompt missing", mutate: func(s *Snapshot) { ivr(s).Prompt = "" },
			want: []string{"sdgs[2].route.prompt"}},
		{name: "prompt escapes", mutate: func(s *Snapshot) { ivr(s).Prompt = "../etc/passwd" },
			want: []string{"sdgs[2].route.prompt"}},
		{name: "timeout missing", mutate: func(s *Snapshot) { ivr(s).TimeoutS = 0 },
			want: []string{"sdgs[2].route.timeout_s"}},
		{name: "timeout too long", mutate: func(s *Snapshot) { ivr(s).TimeoutS = 61 },
			want: []string{"sdgs[2].route.timeout_s"}},
		{name: "retries zero", mutate: func(s *Snapshot) { ivr(s).Retries = 0 }},
		{name: "retries ten", mutate: func(s *Snapshot) { ivr(s).Retries = 10 }},
		{name: "retries eleven", mutate: func(s *Snapshot) { ivr(s).Retries = 11 },
			want: []string{"sdgs[2].route.retries"}},
		{name: "retries negative", mutate: func(s *Snapshot) { ivr(s).Retries = -1 },
			want: []string{"sdgs[2].route.retries"}},
		{name: "options missing", mutate: func(s *Snapshot) { ivr(s).Options = nil },
			want: []string{"sdgs[2].route.options"}},
		{name: "options empty", mutate: func(s *Snapshot) { ivr(s).Options = map[string]*Route{} },
			want: []string{"sdgs[2].route.options"}},
		{name: "star and hash keys", mutate: func(s *Snapshot) {
			ivr(s).Options["*"] = sdgRoute("sdg-operator")
			ivr(s).Options["#"] = userRoute("u-bob")
		}},
		{name: "two-digit key", mutate: func(s *Snapshot) { ivr(s).Options["10"] = userRoute("u-bob") },
			want: []string{"sdgs[2].route.options.10"}},
		{name: "letter key", mutate: func(s *Snapshot) { ivr(s).Options["a"] = userRoute("u-bob") },
			want: []string{"sdgs[2].route.options.a"}},
		{name: "empty key", mutate: func(s *Snapshot) { ivr(s).Options[""] = userRoute("u-bob") },
			want: []string{`sdgs[2].route.options[""]`}},
		{name: "key with a dot", mutate: func(s *Snapshot) { ivr(s).Options["1.2"] = userRoute("u-bob") },
			want: []string{`sdgs[2].route.options["1.2"]`}},
		{name: "option without route", mutate: func(s *Snapshot) { ivr(s).Options["1"] = nil },
			want: []string{"sdgs[2].route.options.1"}},
		{name: "option route checked", mutate: func(s *Snapshot) { ivr(s).Options["7"] = &Route{Type: "sdg"} },
			want: []string{"sdgs[2].route.options.7.id"}},
		{name: "no input optional", mutate: func(s *Snapshot) { ivr(s).NoInput = nil }},
		{name: "no input checked", mutate: func(s *Snapshot) { ivr(s).NoInput = &Route{Type: "menu"} },
			want: []string{"sdgs[2].route.no_input.type"}},
	})
}

func TestRulesLoops(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "two sdgs", mutate: func(s *Snapshot) { s.SDGs[1].Route = sdgRoute("sdg-frontdesk") },
			want: []string{"sdgs[1].route.id"}, msg: "route loops: sdg-frontdesk -> sdg-operator -> sdg-frontdesk"},
		{name: "sdg to itself", mutate: func(s *Snapshot) { s.SDGs[1].Route = sdgRoute("sdg-operator") },
			want: []string{"sdgs[1].route.id"}, msg: "route loops: sdg-operator -> sdg-operator"},
		{name: "through an ivr option and a no answer", mutate: func(s *Snapshot) {
			s.SDGs[3].Route.NoAnswer = sdgRoute("sdg-main-menu")
		}, want: []string{"sdgs[3].route.no_answer.id"}, msg: "route loops: sdg-main-menu -> sdg-branch-sales -> sdg-main-menu"},
		{name: "through an ivr no input", mutate: func(s *Snapshot) {
			s.SDGs[3].Route = &Route{Type: RouteIVR, Prompt: "branch", TimeoutS: 5,
				Options: map[string]*Route{"1": userRoute("u-dave")}, NoInput: sdgRoute("sdg-main-menu")}
		}, want: []string{"sdgs[3].route.no_input.id"}, msg: "route loops: sdg-main-menu -> sdg-branch-sales -> sdg-main-menu"},
		{name: "two references closing one loop", mutate: func(s *Snapshot) {
			s.SDGs[3].Route = &Route{Type: RouteIVR, Prompt: "branch", TimeoutS: 5,
				Options: map[string]*Route{"1": sdgRoute("sdg-main-menu")}, NoInput: sdgRoute("sdg-main-menu")}
		}, want: []string{"sdgs[3].route.options.1.id"}},
		{name: "through an account number", mutate: func(s *Snapshot) {
			s.SDGs[3].Route.NoAnswer = numberRoute("+16505550100")
		}, want: []string{"numbers[0].route.id"},
			msg: "route loops: sdg-main-menu -> sdg-branch-sales -> +16505550100 -> sdg-main-menu"},
		{name: "numbers to each other", mutate: func(s *Snapshot) {
			s.Numbers[0].Route = numberRoute("+13125550200")
			s.Numbers[1].Route = numberRoute("+16505550100")
		}, want: []string{"numbers[1].route.number"}, msg: "route loops: +16505550100 -> +13125550200 -> +16505550100"},
		{name: "number to a user's did is not followed", mutate: func(s *Snapshot) {
			s.SDGs[3].Route.NoAnswer = numberRoute("+16505550101")
			s.SDGs[1].Route = numberRoute("+16505550101")
		}},
		{name: "same sdg twice is not a loop", mutate: func(s *Snapshot) {
			s.SDGs[2].Route.Options["4"] = sdgRoute("sdg-operator")
			s.SDGs[2].Route.Options["5"] = sdgRoute("sdg-frontdesk")
		}},
		{name: "two loops", mutate: func(s *Snapshot) {
			s.SDGs[1].Route = sdgRoute("sdg-frontdesk")
			s.SDGs[3].Route.NoAnswer = sdgRoute("sdg-main-menu")
		}, want: []string{"sdgs[1].route.id", "sdgs[3].route.no_answer.id"}},
		{name: "depth eight", mutate: func(s *Snapshot) { addChain(s, MaxSDGDepth) }},
		{name: "depth nine", mutate: func(s *Snapshot) { addChain(s, MaxSDGDepth+1) },
			want: []string{"sdgs[4].route"}, msg: "chain-1 -> chain-2"},
		{name: "depth twelve reported once", mutate: func(s *Snapshot) { addChain(s, MaxSDGDepth+4) },
			want: []string{"sdgs[7].route"}},
		{name: "depth counts sdgs not numbers", mutate: func(s *Snapshot) {
			addChain(s, MaxSDGDepth)
			s.Numbers[1].Route = sdgRoute("chain-1")
		}},
	})
}

// addChain appends sdgs chain-1 -> chain-2 -> ... -> chain-n -> u-carol.
func addChain(s *Snapshot, n int) {
	for i := 1; i <= n; i++ {
		next := sdgRoute("chain-" + itoa(i+1))
		if i == n {
			next = userRoute("u-carol")
		}
		addSDG(s, "chain-"+itoa(i), "50"+itoa(10+i), next)
	}
}
