package account

import (
	"reflect"
	"strings"
	"testing"
)

func TestRulesUserPriority(t *testing.T) {
	set := func(i int, p string) func(*Snapshot) { return func(s *Snapshot) { s.Users[i].Priority = p } }
	runRuleCases(t, []ruleCase{
		{name: "absent is normal", mutate: set(0, "")},
		{name: "normal", mutate: set(0, PriorityNormal)},
		{name: "emergency", mutate: set(1, PriorityEmergency)},
		{name: "common area", mutate: set(2, PriorityCommonArea)},
		{name: "unknown", mutate: set(1, "vip"),
			want: []string{"users[1].priority"}, msg: `unknown priority "vip"; use normal (the default), emergency or common_area`},
		{name: "upper case", mutate: set(0, "Emergency"), want: []string{"users[0].priority"}},
		{name: "hyphenated", mutate: set(0, "common-area"), want: []string{"users[0].priority"}},
		{name: "each one named", mutate: func(s *Snapshot) { s.Users[0].Priority, s.Users[2].Priority = "high", "low" },
			want: []string{"users[0].priority", "users[2].priority"}},
	})
}

func TestUserPrioritized(t *testing.T) {
	for p, want := range map[string]bool{"": false, PriorityNormal: false, PriorityEmergency: true, PriorityCommonArea: true, "vip": false} {
		if got := (User{Priority: p}).Prioritized(); got != want {
			t.Errorf("User{Priority: %q}.Prioritized() = %v, want %v", p, got, want)
		}
	}
}

// A snapshot without priorities encodes none (the contract's snapshot is
// unchanged); one with a priority keeps it through a round trip.
func TestUserPriorityEncoding(t *testing.T) {
	s := demo(t)
	plain, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), `"priority":"`) {
		t.Fatalf("a snapshot without user priorities encodes one:\n%s", plain)
	}
	s.Users[0].Priority = PriorityEmergency
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"priority":"emergency"`) {
		t.Errorf("encoding lacks the priority:\n%s", data)
	}
	back, err := DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the snapshot:\n%s", data)
	}
}
