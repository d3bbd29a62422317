package sdg

import (
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func TestIVR(t *testing.T) {
	menu := sdgRoute("menu") // main-menu: 8 s, 2 retries, options 0-3, no_input to the operator
	first := "menu main-menu 1/3 8s"
	custom := func(r *account.Route) func(*fixture) {
		return func(f *fixture) { f.dir.add("ivr", "IVR", r) }
	}
	opts := func() map[string]*account.Route {
		return map[string]*account.Route{"1": userRoute("u-alice"), "*": userRoute("u-bob"), "#": userRoute("u-carol")}
	}
	runWalks(t, []walkCase{
		{
			name: "valid digit", root: menu, replies: []string{"digit 1", "answer u-alice"},
			want:     []string{first, `ring u-alice,u-bob 20s "Front Desk"`, "connected u-alice"},
			wantPath: []string{"sdg:menu", "ivr:main-menu option 1", "sdg:front", "group:simultaneous", "member:u-alice"},
		},
		{
			name: "invalid digit re-prompts after the invalid-option prompt", root: menu,
			replies: []string{"digit 7", "digit 2"},
			want:    []string{first, "menu main-menu 2/3 8s after invalid-option", `ring u-dave 15s "Branch Sales"`},
		},
		{
			name: "keys that are not options", root: menu,
			replies: []string{"digit *", "digit 12"},
			want:    []string{first, "menu main-menu 2/3 8s after invalid-option", "menu main-menu 3/3 8s after invalid-option"},
		},
		{
			name: "timeouts re-prompt then follow no_input", root: menu,
			replies:  []string{"timeout", "timeout", "timeout", "answer u-carol"},
			want:     []string{first, "menu main-menu 2/3 8s", "menu main-menu 3/3 8s", `ring u-carol 30s "Operator"`, "connected u-carol"},
			wantPath: []string{"sdg:menu", "ivr:main-menu no_input", "sdg:operator", "user:u-carol"},
		},
		{
			name: "invalid digits and timeouts share the attempts", root: menu,
			replies: []string{"digit 9", "timeout", "digit 9"},
			want: []string{first, "menu main-menu 2/3 8s after invalid-option", "menu main-menu 3/3 8s",
				`ring u-carol 30s "Operator"`},
			wantPath: []string{"sdg:menu", "ivr:main-menu no_input", "sdg:operator", "user:u-carol"},
		},
		{
			name: "valid digit on the last attempt", root: menu,
			replies: []string{"timeout", "timeout", "digit 0"},
			want:    []string{first, "menu main-menu 2/3 8s", "menu main-menu 3/3 8s", `ring u-carol 30s "Operator"`},
		},
		{
			name: "retries exhausted without no_input", root: sdgRoute("ivr"),
			setup:    custom(ivrRoute("hours", 4, 1, opts(), nil)),
			replies:  []string{"timeout", "timeout"},
			want:     []string{"menu hours 1/2 4s", "menu hours 2/2 4s", "fail 480"},
			wantPath: []string{"sdg:ivr", "ivr:hours no_input"},
			wantErr:  ErrNoInput,
		},
		{
			name: "no retries", root: sdgRoute("ivr"),
			setup:   custom(ivrRoute("hours", 4, 0, opts(), nil)),
			replies: []string{"digit 5"},
			want:    []string{"menu hours 1/1 4s", "fail 480"},
			wantErr: ErrNoInput,
		},
		{
			name: "star and hash options", root: sdgRoute("ivr"),
			setup:   custom(ivrRoute("hours", 4, 0, opts(), nil)),
			replies: []string{"digit #"},
			want:    []string{"menu hours 1/1 4s", `ring u-carol 30s "IVR"`},
		},
		{
			name: "default input timeout", root: sdgRoute("ivr"),
			setup: custom(ivrRoute("hours", 0, 0, opts(), nil)),
			want:  []string{"menu hours 1/1 5s"},
		},
		{
			name: "retries beyond the limit are capped", root: sdgRoute("ivr"),
			setup: custom(ivrRoute("hours", 4, 99, opts(), nil)),
			want:  []string{"menu hours 1/11 4s"},
		},
		{
			name: "negative retries play once", root: sdgRoute("ivr"),
			setup: custom(ivrRoute("hours", 4, -3, opts(), nil)),
			want:  []string{"menu hours 1/1 4s"},
		},
		{
			name: "an option without a route is not a key", root: sdgRoute("ivr"),
			setup:   custom(ivrRoute("hours", 4, 1, map[string]*account.Route{"1": nil, "2": userRoute("u-bob")}, nil)),
			replies: []string{"digit 1", "digit 2"},
			want:    []string{"menu hours 1/2 4s", "menu hours 2/2 4s after invalid-option", `ring u-bob 30s "IVR"`},
		},
		{
			name: "menu in a menu", root: sdgRoute("ivr"),
			setup: custom(ivrRoute("top", 4, 0, map[string]*account.Route{
				"9": ivrRoute("sub", 3, 0, map[string]*account.Route{"1": numberRoute("+15550001111")}, nil),
			}, nil)),
			replies:  []string{"digit 9", "digit 1", "answer"},
			want:     []string{"menu top 1/1 4s", "menu sub 1/1 3s", "dial +15550001111", "connected +15550001111"},
			wantPath: []string{"sdg:ivr", "ivr:top option 9", "ivr:sub option 1", "dial:+15550001111"},
		},
		{
			name: "ivr after a group rang out", root: sdgRoute("g"),
			setup: func(f *fixture) {
				f.dir.add("g", "G", groupRoute(account.StrategySimultaneous, 10,
					ivrRoute("after-hours", 4, 0, map[string]*account.Route{"1": userRoute("u-carol")}, nil), "a"))
			},
			replies: []string{"noanswer", "digit 1"},
			want:    []string{`ring a 10s "G"`, "menu after-hours 1/1 4s", `ring u-carol 30s "G"`},
		},
	})
}

func TestMenuFields(t *testing.T) {
	f := newFixture()
	c, a := Start(f.env(), *sdgRoute("menu"))
	got, ok := a.(Menu)
	want := Menu{Step: 1, IVR: "sdg:menu/route", Prompt: "main-menu", Timeout: 8e9, Attempt: 1, Attempts: 3, Keys: "0123"}
	if !ok || got != want {
		t.Fatalf("got %#v\nwant %#v", a, want)
	}
	a = c.Next(Digit{Step: 1, Key: "5"})
	want.Step, want.Attempt, want.Notice = 2, 2, PromptInvalid
	if got, ok := a.(Menu); !ok || got != want {
		t.Errorf("after an invalid key got %#v\nwant %#v", a, want)
	}
	if c.Step() != 2 {
		t.Errorf("Step() = %d, want 2", c.Step())
	}
}
