package account

import (
	"reflect"
	"testing"
)

func countNumbers(s *Snapshot) int {
	n := len(s.Numbers)
	for _, u := range s.Users {
		n += len(u.Numbers)
	}
	return n
}

func TestGenerate10k(t *testing.T) {
	o := GenerateOptions{Users: 10000, Numbers: 20000, SDGs: 1000, Trunks: 4}
	s := Generate(o)
	if err := Validate(s, 0); err != nil {
		t.Fatalf("generated account does not validate: %.2000s", err)
	}
	if len(s.Users) != o.Users || len(s.SDGs) != o.SDGs || len(s.Trunks) != o.Trunks || countNumbers(s) != o.Numbers {
		t.Fatalf("counts: users %d sdgs %d trunks %d numbers %d, want %d %d %d %d",
			len(s.Users), len(s.SDGs), len(s.Trunks), countNumbers(s), o.Users, o.SDGs, o.Trunks, o.Numbers)
	}
	if len(s.Sites) != 20 {
		t.Errorf("sites = %d, want one per 500 users", len(s.Sites))
	}
	// Every route type and strategy appears somewhere.
	seen := map[string]bool{}
	var walk func(r *Route)
	walk = func(r *Route) {
		if r == nil {
			return
		}
		seen[r.Type] = true
		seen[r.Strategy] = true
		walk(r.NoAnswer)
		walk(r.NoInput)
		for _, o := range r.Options {
			walk(o)
		}
	}
	for _, g := range s.SDGs {
		walk(g.Route)
	}
	for _, k := range []string{RouteUser, RouteGroup, RouteIVR, RouteNumber, RouteSDG,
		StrategySimultaneous, StrategySequential, StrategyRotating, StrategyLongestIdle} {
		if !seen[k] {
			t.Errorf("no %s in the generated sdgs", k)
		}
	}
	for i, st := range s.Sites {
		if st.MainNumber == "" {
			t.Errorf("sites[%d] has no main number", i)
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	o := GenerateOptions{Users: 300, Numbers: 500, SDGs: 60, Trunks: 3, Seed: 42}
	a, b := Generate(o), Generate(o)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same options gave different accounts")
	}
	o.Seed = 43
	if reflect.DeepEqual(a, Generate(o)) {
		t.Fatal("a different seed gave the same account")
	}
}

func TestGenerateShapes(t *testing.T) {
	cases := []GenerateOptions{
		{},
		{Users: 1},
		{Users: 5, Numbers: 2},
		{Users: 5, Numbers: 5},
		{SDGs: 30, Numbers: 10},
		{Users: 3, SDGs: 50, Numbers: 100, Trunks: 3, Sites: 3},
		{Users: 50, Sites: 100, Trunks: 250, Numbers: 400, SDGs: 200},
		{Users: 2000, Numbers: 2000, SDGs: 10},
		{Users: -1, Numbers: -5, SDGs: -2, Trunks: -3, Sites: -4, Seed: 7},
	}
	for _, o := range cases {
		s := Generate(o)
		if err := Validate(s, 0); err != nil {
			t.Errorf("Generate(%+v) does not validate: %.1000s", o, err)
			continue
		}
		want := o.normalize()
		if len(s.Users) != want.Users || len(s.SDGs) != want.SDGs || len(s.Trunks) != want.Trunks ||
			countNumbers(s) != want.Numbers || len(s.Sites) != want.Sites {
			t.Errorf("Generate(%+v): users %d sdgs %d trunks %d numbers %d sites %d",
				o, len(s.Users), len(s.SDGs), len(s.Trunks), countNumbers(s), len(s.Sites))
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeBytes(enc)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Errorf("Generate(%+v) does not round-trip: %v", o, err)
		}
	}
}

func TestGeneratedCredentials(t *testing.T) {
	s := Generate(GenerateOptions{Users: 20, Seed: 3})
	for _, u := range s.Users {
		pw := GeneratedPassword(u.SIP.Username)
		if got := HA1(DigestMD5, u.SIP.Username, s.Account.SIPRealm, pw); got != u.SIP.HA1MD5 {
			t.Errorf("%s: ha1_md5 %s, want %s", u.ID, u.SIP.HA1MD5, got)
		}
		if got := HA1(DigestSHA256, u.SIP.Username, s.Account.SIPRealm, pw); got != u.SIP.HA1SHA256 {
			t.Errorf("%s: ha1_sha256 %s, want %s", u.ID, u.SIP.HA1SHA256, got)
		}
	}
	if s.Admins[0].Username != "admin" || s.Admins[0].Bcrypt != DemoAdminBcrypt {
		t.Errorf("admin = %+v", s.Admins[0])
	}
}

func TestHA1(t *testing.T) {
	d := demo(t)
	for _, u := range d.Users {
		pw := "pw-" + u.SIP.Username
		if got := HA1(DigestMD5, u.SIP.Username, d.Account.SIPRealm, pw); got != u.SIP.HA1MD5 {
			t.Errorf("HA1(MD5, %s) = %s, want the demo's %s", u.SIP.Username, got, u.SIP.HA1MD5)
		}
		if got := HA1(DigestSHA256, u.SIP.Username, d.Account.SIPRealm, pw); got != u.SIP.HA1SHA256 {
			t.Errorf("HA1(SHA-256, %s) = %s, want the demo's %s", u.SIP.Username, got, u.SIP.HA1SHA256)
		}
	}
	if got := HA1("MD5", "alice", "acme.example", "pw-alice"); got != "4231516fe14cc579b1a5151944b24fe0" {
		t.Errorf("HA1(MD5, alice) = %s", got)
	}
	if got := HA1("SHA-512-256", "alice", "acme.example", "pw-alice"); got != "" {
		t.Errorf("unsupported algorithm gave %q, want empty", got)
	}
}

func TestGenerateLineNumbers(t *testing.T) {
	g := &generator{areaCodes: []string{"415"}, nextLine: []int{0}}
	for _, tc := range []struct {
		next int
		want string
	}{
		{0, "+14152000000"},
		{9999, "+14152009999"},
		{10000, "+14152010000"},
		{354*10000 + 1, "+14155540001"},
		{355 * 10000, "+14155560000"}, // the 555 exchange holds the ELINs
	} {
		g.nextLine[0] = tc.next
		if got := g.lineNumber(0); got != tc.want || !isE164(got) {
			t.Errorf("line %d = %s, want %s", tc.next, got, tc.want)
		}
	}
}
