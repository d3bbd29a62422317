package account

import (
	"encoding/json"
	"strings"
	"testing"
)

func conferenceRoute() *Route { return &Route{Type: RouteConference} }

// addNumber appends a numbers[] entry of the HQ site.
func addNumber(s *Snapshot, number string, r *Route) {
	s.Numbers = append(s.Numbers, Number{Number: number, Site: "hq", Route: r})
}

// The conference route (the dial-in to a live call) is accepted as a
// numbers[] entry's route, an SDG's route, an IVR option, a group's
// no_answer and an IVR's no_input; it takes no field beyond its type and
// makes no loop however it is reached.
func TestRulesConferenceRoute(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "a dial-in number", mutate: func(s *Snapshot) { addNumber(s, "+16505550150", conferenceRoute()) }},
		{name: "an sdg's extension", mutate: func(s *Snapshot) { addSDG(s, "sdg-dial-in", "1950", conferenceRoute()) }},
		{name: "an ivr option", mutate: func(s *Snapshot) { s.SDGs[2].Route.Options["8"] = conferenceRoute() }},
		{name: "an ivr's no input", mutate: func(s *Snapshot) { s.SDGs[2].Route.NoInput = conferenceRoute() }},
		{name: "a group's no answer", mutate: func(s *Snapshot) { s.SDGs[0].Route.NoAnswer = conferenceRoute() }},
		{name: "reached through an sdg and a number", mutate: func(s *Snapshot) {
			addSDG(s, "sdg-dial-in", "1950", conferenceRoute())
			addNumber(s, "+16505550150", sdgRoute("sdg-dial-in"))
			s.SDGs[2].Route.Options["8"] = numberRoute("+16505550150")
			s.SDGs[2].Route.Options["9"] = sdgRoute("sdg-dial-in")
		}},
		{name: "an id", mutate: func(s *Snapshot) { addNumber(s, "+16505550150", &Route{Type: RouteConference, ID: "c1"}) },
			want: []string{"numbers[2].route.id"}, msg: "not used by a conference route"},
		{name: "a number", mutate: func(s *Snapshot) {
			s.SDGs[2].Route.Options["8"] = &Route{Type: RouteConference, Number: "+16505550150"}
		}, want: []string{"sdgs[2].route.options.8.number"}, msg: "not used by a conference route"},
		{name: "a prompt and options", mutate: func(s *Snapshot) {
			addSDG(s, "sdg-dial-in", "1950", &Route{Type: RouteConference, Prompt: "pin", Options: map[string]*Route{"1": userRoute("u-bob")}})
		}, want: []string{"sdgs[4].route.prompt", "sdgs[4].route.options"}},
		{name: "a no_answer", mutate: func(s *Snapshot) {
			addNumber(s, "+16505550150", &Route{Type: RouteConference, NoAnswer: userRoute("u-bob")})
		}, want: []string{"numbers[2].route.no_answer"}},
		{name: "the type in upper case", mutate: func(s *Snapshot) { addNumber(s, "+16505550150", &Route{Type: "Conference"}) },
			want: []string{"numbers[2].route.type"}, msg: "conference"},
	})
}

// The unknown-type message lists the conference route with the others.
func TestRulesUnknownTypeNamesConference(t *testing.T) {
	s := demo(t)
	s.SDGs[1].Route.Type = "fax"
	err := Validate(s, 0)
	if err == nil || !strings.Contains(err.Error(), "sdg, conference or voicemail") {
		t.Fatalf("Validate = %v, want the list of route types to end with conference", err)
	}
}

// A conference route decodes strictly and encodes as its type alone.
func TestConferenceRouteJSON(t *testing.T) {
	s := demo(t)
	addNumber(s, "+16505550150", conferenceRoute())
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `{"number":"+16505550150","site":"hq","route":{"type":"conference"}}`) {
		t.Errorf("encoded: %s", data)
	}
	back, err := DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(back, 0); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	nums := m["numbers"].([]any)
	nums[len(nums)-1].(map[string]any)["route"] = map[string]any{"type": "conference", "pin": "123456"}
	bad, _ := json.Marshal(m)
	if _, err := DecodeBytes(bad); err == nil {
		t.Error("a conference route with an unknown field decoded")
	}
}
