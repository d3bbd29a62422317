package account

import (
	"errors"
	"reflect"
	"testing"
)

func TestWithChanges(t *testing.T) {
	s := Generate(GenerateOptions{Users: 5, Numbers: 6, SDGs: 2, Trunks: 1})
	before, _ := s.Encode()
	u := s.Users[1]
	u.Name = "Renamed"
	nu := s.Users[0]
	nu.ID, nu.SIP.Username, nu.Extension, nu.Numbers = "u-new", "new", "", nil
	got, err := s.WithChanges([]Change{
		{Kind: KindUsers, ID: u.ID, Value: u},                // replaced in place
		{Kind: KindUsers, ID: "u-new", Value: nu},            // appended
		{Kind: KindUsers, ID: s.Users[2].ID, Delete: true},   // removed
		{Kind: KindEmbed, Value: Embed{AllowedOrigins: nil}}, // set
		{Kind: KindTrunks, ID: s.Trunks[0].ID, Delete: true}, // the last one: [] not null
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Encode(); string(after) != string(before) {
		t.Fatal("WithChanges modified the snapshot it was given")
	}
	wantIDs := []string{s.Users[0].ID, u.ID, s.Users[3].ID, s.Users[4].ID, "u-new"}
	var ids []string
	for _, x := range got.Users {
		ids = append(ids, x.ID)
	}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("users %v, want %v", ids, wantIDs)
	}
	if got.Users[1].Name != "Renamed" {
		t.Errorf("user %s not replaced: %+v", u.ID, got.Users[1])
	}
	if got.Embed.AllowedOrigins != nil || got.Trunks == nil || len(got.Trunks) != 0 {
		t.Errorf("embed %+v trunks %#v; want null origins and an empty, non-null trunk list", got.Embed, got.Trunks)
	}
}

func TestWithChangesRefuses(t *testing.T) {
	s := Generate(GenerateOptions{Users: 3, Numbers: 3, SDGs: 1, Trunks: 1})
	cases := map[string]Change{
		"unknown kind":              {Kind: "phones", ID: "p", Value: User{}},
		"delete of nothing":         {Kind: KindUsers, ID: "u-none", Delete: true},
		"a value of the wrong type": {Kind: KindUsers, ID: s.Sites[0].ID, Value: s.Sites[0]},
		"key and id disagree":       {Kind: KindUsers, ID: "u-other", Value: s.Users[0]},
		"no id":                     {Kind: KindUsers, Value: s.Users[0]},
		"a singleton with an id":    {Kind: KindCallout, ID: "x", Value: s.Callout},
		"a singleton deleted":       {Kind: KindEmbed, Delete: true},
		"a delete with a value":     {Kind: KindUsers, ID: s.Users[0].ID, Delete: true, Value: s.Users[0]},
	}
	for name, c := range cases {
		got, err := s.WithChanges([]Change{c})
		if !errors.Is(err, ErrBadChange) || got != nil {
			t.Errorf("%s: %v, %v; want ErrBadChange and no snapshot", name, got, err)
		}
	}
}
