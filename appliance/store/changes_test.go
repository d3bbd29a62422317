package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// dialRows is the whole dial index, in dial order.
func dialRows(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.Reader().db.QueryContext(context.Background(), `SELECT dial, kind, target_id, site FROM dial_index ORDER BY dial`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d, k, id, site string
		if err := rows.Scan(&d, &k, &id, &site); err != nil {
			t.Fatal(err)
		}
		out = append(out, d+" "+k+" "+id+" "+site)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSameAsReplace checks that s, after ApplyChanges, holds what a store
// given want whole by ReplaceConfig holds: the snapshot read back, the
// document and the dial index.
func checkSameAsReplace(t *testing.T, s *Store, want *account.Snapshot) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Reader().Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := got.Encode()
		w, _ := want.Encode()
		t.Fatalf("after ApplyChanges the tables hold\n%.3000s\nwant\n%.3000s", g, w)
	}
	doc, err := s.Reader().SnapshotJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDoc, _ := want.Encode()
	if string(doc) != string(wantDoc) {
		t.Fatalf("SnapshotJSON after ApplyChanges differs from the snapshot's encoding")
	}
	whole := openTest(t)
	apply(t, whole, want, nil)
	if g, w := dialRows(t, s), dialRows(t, whole); !slices.Equal(g, w) {
		t.Fatalf("dial index after ApplyChanges\n%v\nwant (ReplaceConfig)\n%v", g, w)
	}
}

func TestApplyChangesMatchesReplaceConfig(t *testing.T) {
	base := account.Generate(account.GenerateOptions{Users: 40, Numbers: 70, SDGs: 10, Trunks: 4, Sites: 2})
	s := openTest(t)
	apply(t, s, base, nil)
	rng := rand.New(rand.NewPCG(7, 11))
	cur := base
	for round := range 150 {
		var changes []account.Change
		for range 1 + rng.IntN(5) {
			changes = append(changes, randomChange(rng, cur, round))
		}
		next, err := cur.WithChanges(changes)
		if err != nil {
			continue // a change that does not fit: WithChanges's own tests cover it
		}
		next.Revision = cur.Revision + 1
		if err := account.Validate(next, cur.Revision); err != nil {
			continue // the leader would refuse it before it reached the store
		}
		err = s.Write(func(tx *Tx) error { return tx.ApplyChanges(next.Revision, changes) })
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		checkSameAsReplace(t, s, next)
		cur = next
	}
	t.Logf("%d of 150 rounds applied", cur.Revision-base.Revision)
	if cur.Revision < base.Revision+50 {
		t.Errorf("only %d of 150 rounds applied", cur.Revision-base.Revision)
	}
}

// randomChange makes one change to s that usually keeps it valid.
func randomChange(rng *rand.Rand, s *account.Snapshot, round int) account.Change {
	put := func(kind, id string, v any) account.Change { return account.Change{Kind: kind, ID: id, Value: v} }
	switch rng.IntN(15) {
	case 0:
		u := s.Users[rng.IntN(len(s.Users))]
		u.Name = fmt.Sprintf("Renamed %d", round)
		return put(account.KindUsers, u.ID, u)
	case 1: // new numbers and extension for a user
		u := s.Users[rng.IntN(len(s.Users))]
		u.Extension = fmt.Sprintf("7%03d", round)
		u.Numbers = []string{fmt.Sprintf("+1555777%04d", round)}
		return put(account.KindUsers, u.ID, u)
	case 2: // a new user
		u := s.Users[0]
		u.ID, u.SIP.Username = fmt.Sprintf("u-new-%d", round), fmt.Sprintf("new%d", round)
		u.Extension, u.Numbers = fmt.Sprintf("8%03d", round), nil
		return put(account.KindUsers, u.ID, u)
	case 3: // a user no route names
		for _, u := range slices.Backward(s.Users) {
			if !routed(s, u.ID) {
				return account.Change{Kind: account.KindUsers, ID: u.ID, Delete: true}
			}
		}
		return put(account.KindUsers, s.Users[0].ID, s.Users[0])
	case 4:
		n := s.Numbers[rng.IntN(len(s.Numbers))]
		return account.Change{Kind: account.KindNumbers, ID: n.Number, Delete: true}
	case 5:
		g := s.SDGs[rng.IntN(len(s.SDGs))]
		g.Name, g.Extension = fmt.Sprintf("Group %d", round), fmt.Sprintf("6%03d", round)
		return put(account.KindSDGs, g.ID, g)
	case 6:
		tr := s.Trunks[rng.IntN(len(s.Trunks))]
		tr.Codecs, tr.Weight = nil, round
		return put(account.KindTrunks, tr.ID, tr)
	case 7:
		return account.Change{Kind: account.KindEmbed, Value: account.Embed{AllowedOrigins: nil}}
	case 8:
		c := s.Callout
		c.RequirePress1, c.CallerIDs = !c.RequirePress1, nil
		return account.Change{Kind: account.KindCallout, Value: c}
	case 11: // a site's outbound policy set, changed or dropped
		site := s.Sites[rng.IntN(len(s.Sites))]
		switch rng.IntN(3) {
		case 0:
			site.Outbound = nil
		case 1:
			site.Outbound = &account.Outbound{International: account.InternationalList,
				AllowedCountries: []string{"GB", "+353"}, MaxCallsPerUser: round % 7}
		default:
			site.Outbound = &account.Outbound{International: account.InternationalAll, AllowPremium: true, MaxCallsPerUser: -1}
		}
		return put(account.KindSites, site.ID, site)
	case 12: // a trunk's srtp setting
		tr := s.Trunks[rng.IntN(len(s.Trunks))]
		tr.SRTP = []string{"", account.SRTPOff, account.SRTPSDES}[rng.IntN(3)]
		return put(account.KindTrunks, tr.ID, tr)
	case 13, 14: // a custom prompt put, replaced or deleted (the extension)
		name := fmt.Sprintf("menu-%d", rng.IntN(3))
		if rng.IntN(3) == 0 && slices.ContainsFunc(s.Prompts, func(p account.Prompt) bool { return p.Name == name }) {
			return account.Change{Kind: account.KindPrompts, ID: name, Delete: true}
		}
		sum := fmt.Sprintf("%064x", round)
		return put(account.KindPrompts, name, account.Prompt{Name: name, Blob: sum, SHA256: sum})
	case 9:
		site := s.Sites[rng.IntN(len(s.Sites))]
		site.Emergency.ELINPool, site.Name = nil, fmt.Sprintf("Site %d", round)
		return put(account.KindSites, site.ID, site)
	default:
		a := account.Admin{Username: fmt.Sprintf("admin%d", rng.IntN(3)), Role: "admin", Bcrypt: s.Admins[0].Bcrypt}
		if rng.IntN(2) == 0 && slices.ContainsFunc(s.Admins, func(x account.Admin) bool { return x.Username == a.Username }) {
			return account.Change{Kind: account.KindAdmins, ID: a.Username, Delete: true}
		}
		return put(account.KindAdmins, a.Username, a)
	}
}

// routed reports whether a route of s names user id (so deleting the user
// would leave the snapshot invalid).
func routed(s *account.Snapshot, id string) bool {
	var names func(r *account.Route) bool
	names = func(r *account.Route) bool {
		if r == nil {
			return false
		}
		if (r.Type == account.RouteUser && r.ID == id) || slices.Contains(r.Members, id) ||
			names(r.NoAnswer) || names(r.NoInput) {
			return true
		}
		for _, o := range r.Options {
			if names(o) {
				return true
			}
		}
		return false
	}
	for _, g := range s.SDGs {
		if names(g.Route) {
			return true
		}
	}
	for _, n := range s.Numbers {
		if names(n.Route) {
			return true
		}
	}
	return false
}

func TestApplyChangesRefusesAndChangesNothing(t *testing.T) {
	base := account.Generate(account.GenerateOptions{Users: 10, Numbers: 12, SDGs: 3, Trunks: 2})
	ctx := context.Background()
	u0, u1 := base.Users[0], base.Users[1]
	taken := u1
	taken.Extension = u0.Extension // two users behind one extension
	cases := []struct {
		name     string
		changes  []account.Change
		conflict bool
	}{
		{"an extension taken", []account.Change{{Kind: account.KindUsers, ID: u1.ID, Value: taken}}, true},
		{"a delete of nothing", []account.Change{{Kind: account.KindTrunks, ID: "t-none", Delete: true}}, false},
		{"a value of another kind", []account.Change{{Kind: account.KindUsers, ID: u1.ID, Value: base.Sites[0]}}, false},
		{"no key", []account.Change{{Kind: account.KindUsers, Value: u1}}, false},
		{"an unknown kind", []account.Change{{Kind: "phones", ID: "p"}}, false},
		{"a singleton without its value", []account.Change{{Kind: account.KindCallout}}, false},
		{"good then bad", []account.Change{
			{Kind: account.KindUsers, ID: u0.ID, Delete: true},
			{Kind: account.KindNumbers, ID: "+10000000000", Delete: true},
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			apply(t, s, base, nil)
			err := s.Write(func(tx *Tx) error { return tx.ApplyChanges(base.Revision+1, tc.changes) })
			if err == nil {
				t.Fatal("ApplyChanges took it")
			}
			if got := errors.Is(err, ErrConflict); got != tc.conflict || (!got && !errors.Is(err, account.ErrBadChange)) {
				t.Errorf("error %v: ErrConflict %v, want %v", err, got, tc.conflict)
			}
			checkSameAsReplace(t, s, base)
			if rev, _ := s.Reader().Revision(ctx); rev != base.Revision {
				t.Errorf("revision %d after a refusal, want %d", rev, base.Revision)
			}
		})
	}
}
