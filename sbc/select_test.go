package sbc

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func ids(trunks []account.Trunk) []string {
	var out []string
	for _, t := range trunks {
		out = append(out, t.ID)
	}
	return out
}

func TestSelect(t *testing.T) {
	// hq: priority 10: a (weight 100), b (weight 0); priority 20: c, d (50 each), z (weight 0).
	// branch: e.
	trunks := []account.Trunk{
		trunk("d", "hq", 20, 50, 2), trunk("z", "hq", 20, 0, 2), trunk("a", "hq", 10, 100, 2),
		trunk("e", "branch", 0, 100, 2), trunk("c", "hq", 20, 50, 2), trunk("b", "hq", 10, 0, 0),
	}
	for _, tc := range []struct {
		name      string
		site      string
		emergency bool
		health    map[string]State
		inUse     map[string]int
		rnd       []int
		want      []string
		skipped   []Skipped
	}{
		{name: "all unknown: priority, weight, zero weight last", site: "hq", rnd: []int{0},
			want: []string{"a", "b", "c", "d", "z"}},
		{name: "weight draw picks d first", site: "hq", rnd: []int{50},
			want: []string{"a", "b", "d", "c", "z"}},
		{name: "up and unknown alike", site: "hq", health: map[string]State{"a": StateUp, "c": StateUp}, rnd: []int{0},
			want: []string{"a", "b", "c", "d", "z"}},
		{name: "down trunks skipped", site: "hq", health: map[string]State{"a": StateDown, "c": StateDown}, rnd: []int{0},
			want: []string{"b", "d", "z"}, skipped: []Skipped{{"a", SkipDown}, {"c", SkipDown}}},
		{name: "full trunks skipped; max_channels 0 is no limit", site: "hq", inUse: map[string]int{"a": 2, "d": 1, "b": 99}, rnd: []int{0},
			want: []string{"b", "c", "d", "z"}, skipped: []Skipped{{"a", SkipFull}}},
		{name: "other site", site: "branch", want: []string{"e"}},
		{name: "unknown site: nothing", site: "nowhere", want: nil},
		{name: "everything down", site: "hq", health: map[string]State{"a": StateDown, "b": StateDown, "c": StateDown, "d": StateDown, "z": StateDown},
			want: nil, skipped: []Skipped{{"d", SkipDown}, {"z", SkipDown}, {"a", SkipDown}, {"c", SkipDown}, {"b", SkipDown}}},
		{name: "emergency ignores max_channels", site: "hq", emergency: true, inUse: map[string]int{"a": 2, "c": 2, "d": 2}, rnd: []int{0},
			want: []string{"a", "b", "c", "d", "z"}},
		{name: "emergency: down trunks last, in order", site: "hq", emergency: true,
			health: map[string]State{"a": StateDown, "d": StateDown}, inUse: map[string]int{"c": 5}, rnd: []int{0},
			want: []string{"b", "c", "z", "a", "d"}},
		{name: "emergency, all down: still every trunk", site: "hq", emergency: true,
			health: map[string]State{"a": StateDown, "b": StateDown, "c": StateDown, "d": StateDown, "z": StateDown}, rnd: []int{0},
			want: []string{"a", "b", "c", "d", "z"}},
		{name: "emergency never uses another site's trunk", site: "branch", emergency: true,
			health: map[string]State{"e": StateDown}, want: []string{"e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := Select(SelectRequest{Site: tc.site, Emergency: tc.emergency, Trunks: trunks, Health: tc.health, InUse: tc.inUse},
				script(tc.rnd...))
			if got := ids(sel.Trunks); !slices.Equal(got, tc.want) {
				t.Errorf("trunks %v, want %v", got, tc.want)
			}
			if !slices.Equal(sel.Skipped, tc.skipped) {
				t.Errorf("skipped %v, want %v", sel.Skipped, tc.skipped)
			}
		})
	}
}

func TestSelectDoesNotDependOnInputOrder(t *testing.T) {
	a, b, c := trunk("a", "hq", 10, 0, 2), trunk("b", "hq", 10, 0, 2), trunk("c", "hq", 5, 0, 2)
	one := Select(SelectRequest{Site: "hq", Trunks: []account.Trunk{a, b, c}}, script(0))
	two := Select(SelectRequest{Site: "hq", Trunks: []account.Trunk{b, c, a}}, script(0))
	if !slices.Equal(ids(one.Trunks), ids(two.Trunks)) {
		t.Errorf("%v vs %v", ids(one.Trunks), ids(two.Trunks))
	}
}

func TestWeightedOrderDistribution(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	weights := []int{60, 30, 10, 0}
	first := make([]int, len(weights))
	const n = 20000
	for range n {
		o := weightedOrder(len(weights), func(i int) int { return weights[i] }, rnd)
		if o[3] != 3 {
			t.Fatalf("weight 0 not last: %v", o)
		}
		first[o[0]]++
	}
	for i, w := range weights[:3] {
		got := float64(first[i]) / n * 100
		if got < float64(w)-2 || got > float64(w)+2 {
			t.Errorf("item %d (weight %d) first %.1f %% of the time", i, w, got)
		}
	}
}

func TestWeightedOrderAsksOnlyWhenThereIsAChoice(t *testing.T) {
	r := script(0)
	got := weightedOrder(3, func(i int) int { return []int{5, 0, 0}[i] }, r)
	if !slices.Equal(got, []int{0, 1, 2}) || !slices.Equal(r.asks, []int{2}) {
		t.Errorf("order %v asks %v; want [0 1 2] and one draw among the two zeros", got, r.asks)
	}
}

func TestFailOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Attempt
		want bool
	}{
		{"transport error", Attempt{TransportError: true}, true},
		{"no answer within 4 s", Attempt{NoAnswer: true}, true},
		{"408", Attempt{Status: 408}, true},
		{"500", Attempt{Status: 500}, true},
		{"502", Attempt{Status: 502}, true},
		{"503", Attempt{Status: 503}, true},
		{"504", Attempt{Status: 504}, true},
		{"599", Attempt{Status: 599}, true},
		{"200: answered", Attempt{Status: 200}, false},
		{"302: not a failure", Attempt{Status: 302}, false},
		{"403: the far end refused", Attempt{Status: 403}, false},
		{"404", Attempt{Status: 404}, false},
		{"480", Attempt{Status: 480}, false},
		{"486 busy", Attempt{Status: 486}, false},
		{"487 caller cancelled", Attempt{Status: 487}, false},
		{"488 unusable answer (SRTP without a key)", Attempt{Status: 488, Unusable: true}, true},
		{"488 unusable answer after ringing", Attempt{Status: 488, Unusable: true, Alerted: true}, true},
		{"488 from the far end", Attempt{Status: 488}, false},
		{"488", Attempt{Status: 488}, false},
		{"600", Attempt{Status: 600}, false},
		{"603 declined", Attempt{Status: 603}, false},
		{"nothing happened", Attempt{}, false},
		{"503 after ringing: the caller heard it", Attempt{Status: 503, Alerted: true}, false},
		{"transport error after ringing", Attempt{TransportError: true, Alerted: true}, false},
		{"emergency 503 after ringing", Attempt{Emergency: true, Status: 503, Alerted: true}, true},
		{"emergency 403", Attempt{Emergency: true, Status: 403}, true},
		{"emergency 404", Attempt{Emergency: true, Status: 404}, true},
		{"emergency 603", Attempt{Emergency: true, Status: 603}, true},
		{"emergency 487 caller cancelled", Attempt{Emergency: true, Status: 487}, false},
		{"emergency transport error", Attempt{Emergency: true, TransportError: true}, true},
		{"emergency no answer", Attempt{Emergency: true, NoAnswer: true}, true},
		{"emergency 200", Attempt{Emergency: true, Status: 200}, false},
	} {
		if got := FailOver(tc.a); got != tc.want {
			t.Errorf("%s: FailOver(%+v) = %v, want %v", tc.name, tc.a, got, tc.want)
		}
	}
}
