package account

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func voicemailRoute(id string) *Route { return &Route{Type: RouteVoicemail, ID: id} }

// A voicemail route names a user's or an SDG's mailbox, wherever a route
// may be; it takes no field beyond its id and ends the route.
func TestRulesVoicemailRoute(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "a user's mailbox as a number's route", mutate: func(s *Snapshot) { addNumber(s, "+16505550150", voicemailRoute("u-bob")) }},
		{name: "an sdg's own mailbox", mutate: func(s *Snapshot) { s.SDGs[0].Route.NoAnswer = voicemailRoute(s.SDGs[0].ID) }},
		{name: "an ivr option", mutate: func(s *Snapshot) { s.SDGs[2].Route.Options["8"] = voicemailRoute("u-alice") }},
		{name: "an ivr's no input", mutate: func(s *Snapshot) { s.SDGs[2].Route.NoInput = voicemailRoute("u-alice") }},
		{name: "an sdg's route", mutate: func(s *Snapshot) { addSDG(s, "sdg-vm", "1950", voicemailRoute("sdg-vm")) }},
		{name: "no id", mutate: func(s *Snapshot) { addNumber(s, "+16505550150", &Route{Type: RouteVoicemail}) },
			want: []string{"numbers[2].route.id"}, msg: "required: the id of the user or sdg whose mailbox"},
		{name: "an unknown mailbox", mutate: func(s *Snapshot) { s.SDGs[0].Route.NoAnswer = voicemailRoute("u-nobody") },
			want: []string{"sdgs[0].route.no_answer.id"}, msg: `no user or sdg has id "u-nobody"`},
		{name: "a number", mutate: func(s *Snapshot) {
			s.SDGs[2].Route.Options["8"] = &Route{Type: RouteVoicemail, ID: "u-bob", Number: "+16505550150"}
		}, want: []string{"sdgs[2].route.options.8.number"}, msg: "not used by a voicemail route"},
		{name: "members", mutate: func(s *Snapshot) {
			addNumber(s, "+16505550150", &Route{Type: RouteVoicemail, ID: "u-bob", Members: []string{"u-bob"}})
		}, want: []string{"numbers[2].route.members"}, msg: "not used by a voicemail route"},
	})
}

func boolp(b bool) *bool { return &b }

func TestRulesUserVoicemail(t *testing.T) {
	set := func(i int, v *Voicemail) func(*Snapshot) { return func(s *Snapshot) { s.Users[i].Voicemail = v } }
	withPrompt := func(i int, v *Voicemail) func(*Snapshot) {
		return func(s *Snapshot) {
			s.Prompts = append(s.Prompts, Prompt{Name: "vm/u-alice", Blob: "b1", SHA256: strings.Repeat("a", 64)})
			s.Users[i].Voicemail = v
		}
	}
	runRuleCases(t, []ruleCase{
		{name: "absent", mutate: set(0, nil)},
		{name: "empty", mutate: set(0, &Voicemail{})},
		{name: "disabled", mutate: set(0, &Voicemail{Enabled: boolp(false)})},
		{name: "bounds", mutate: func(s *Snapshot) {
			s.Users[0].Voicemail = &Voicemail{NoAnswerS: MinVoicemailNoAnswerS}
			s.Users[1].Voicemail = &Voicemail{NoAnswerS: MaxVoicemailNoAnswerS}
		}},
		{name: "a custom greeting", mutate: withPrompt(0, &Voicemail{Greeting: "vm/u-alice"})},
		{name: "too short", mutate: set(1, &Voicemail{NoAnswerS: 4}),
			want: []string{"users[1].voicemail.no_answer_s"}, msg: "must be 5 to 120 seconds (or absent for 20), got 4"},
		{name: "too long", mutate: set(0, &Voicemail{NoAnswerS: 121}),
			want: []string{"users[0].voicemail.no_answer_s"}, msg: "got 121"},
		{name: "negative", mutate: set(0, &Voicemail{NoAnswerS: -1}),
			want: []string{"users[0].voicemail.no_answer_s"}},
		{name: "a greeting with no recording", mutate: set(2, &Voicemail{Greeting: "vm/u-carol"}),
			want: []string{"users[2].voicemail.greeting"}, msg: `no prompts[] entry is named "vm/u-carol"`},
		{name: "a greeting that is no prompt name", mutate: set(0, &Voicemail{Greeting: "my greeting"}),
			want: []string{"users[0].voicemail.greeting"}, msg: "is not a prompt name"},
	})
}

func TestVoicemailSettings(t *testing.T) {
	for _, tc := range []struct {
		v    *Voicemail
		want VoicemailSettings
	}{
		{nil, VoicemailSettings{Enabled: true, NoAnswer: 20 * time.Second}},
		{&Voicemail{}, VoicemailSettings{Enabled: true, NoAnswer: 20 * time.Second}},
		{&Voicemail{Enabled: boolp(false), NoAnswerS: 7, Greeting: "g"}, VoicemailSettings{NoAnswer: 7 * time.Second, Greeting: "g"}},
		{&Voicemail{Enabled: boolp(true)}, VoicemailSettings{Enabled: true, NoAnswer: 20 * time.Second}},
	} {
		if got := (User{Voicemail: tc.v}).VoicemailSettings(); got != tc.want {
			t.Errorf("VoicemailSettings(%+v) = %+v, want %+v", tc.v, got, tc.want)
		}
	}
}

// A snapshot without voicemail settings encodes none; one with them keeps
// them through a round trip, enabled false included.
func TestUserVoicemailEncoding(t *testing.T) {
	s := demo(t)
	plain, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), `"voicemail"`) {
		t.Fatalf("a snapshot without voicemail encodes some:\n%s", plain)
	}
	s.Users[0].Voicemail = &Voicemail{Enabled: boolp(false), NoAnswerS: 30}
	addNumber(s, "+16505550150", voicemailRoute("u-bob"))
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"voicemail":{"enabled":false,"no_answer_s":30}`, `"route":{"type":"voicemail","id":"u-bob"}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("encoding lacks %s:\n%s", want, data)
		}
	}
	back, err := DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the snapshot:\n%s", data)
	}
	if err := Validate(back, 0); err != nil {
		t.Fatal(err)
	}
}
