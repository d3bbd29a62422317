package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

func TestEmptyStoreReads(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := s.Reader()
	assertEmpty(t, s)
	if a, err := r.Account(ctx); err != nil || a != (account.Account{}) {
		t.Errorf("Account() = %+v, %v; want zero", a, err)
	}
	if users, err := r.Users(ctx); err != nil || len(users) != 0 {
		t.Errorf("Users() = %v, %v; want none", users, err)
	}
	if _, err := r.Site(ctx, "hq"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Site(hq) error = %v, want ErrNotFound", err)
	}
	if _, err := r.UserByUsername(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByUsername(alice) error = %v, want ErrNotFound", err)
	}
	if _, err := r.LookupDial(ctx, "1001"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupDial(1001) error = %v, want ErrNotFound", err)
	}
}

func TestReplaceConfigDemo(t *testing.T) {
	s := openTest(t)
	snap, raw := demoSnapshot(t)
	apply(t, s, snap, raw)
	ctx := context.Background()
	r := s.Reader()

	if rev, err := r.Revision(ctx); err != nil || rev != snap.Revision {
		t.Errorf("Revision() = %d, %v; want %d", rev, err, snap.Revision)
	}
	err := s.Write(func(tx *Tx) error {
		rev, err := tx.Revision()
		if err == nil && rev != snap.Revision {
			t.Errorf("Tx.Revision() = %d, want %d", rev, snap.Revision)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s =\n%+v\nwant\n%+v", name, got, want)
		}
	}
	a, err := r.Account(ctx)
	check("Account()", a, snap.Account, err)
	sites, err := r.Sites(ctx)
	check("Sites()", sites, snap.Sites, err)
	site, err := r.Site(ctx, "branch")
	check("Site(branch)", site, snap.Sites[1], err)
	users, err := r.Users(ctx)
	check("Users()", users, snap.Users, err)
	for _, want := range snap.Users {
		u, err := r.UserByUsername(ctx, want.SIP.Username)
		check("UserByUsername("+want.SIP.Username+")", u, want, err)
	}
	sdgs, err := r.SDGs(ctx)
	check("SDGs()", sdgs, snap.SDGs, err)
	numbers, err := r.Numbers(ctx)
	check("Numbers()", numbers, snap.Numbers, err)
	trunks, err := r.Trunks(ctx)
	check("Trunks()", trunks, snap.Trunks, err)
	callout, err := r.Callout(ctx)
	check("Callout()", callout, snap.Callout, err)
	admins, err := r.Admins(ctx)
	check("Admins()", admins, snap.Admins, err)
	embed, err := r.Embed(ctx)
	check("Embed()", embed, snap.Embed, err)
	counts, err := r.Counts(ctx)
	// 3 users have a DID, plus 2 numbers[] entries.
	check("Counts()", counts, Counts{Sites: 2, Users: 5, SDGs: 4, Numbers: 5, Trunks: 2, Admins: 1}, err)

	if _, err := r.Site(ctx, "nowhere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Site(nowhere) error = %v, want ErrNotFound", err)
	}
	if _, err := r.Site(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Site(\"\") error = %v, want ErrNotFound", err)
	}
	if _, err := r.UserByUsername(ctx, "mallory"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByUsername(mallory) error = %v, want ErrNotFound", err)
	}
	// Carol has no DID: an empty list, not nil, as the document has [].
	carol, err := r.UserByUsername(ctx, "carol")
	if err != nil || carol.Numbers == nil || len(carol.Numbers) != 0 {
		t.Errorf("carol's numbers = %#v, %v; want []string{}", carol.Numbers, err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	demo, demoRaw := demoSnapshot(t)
	nulls := smallSnapshot(7)
	nulls.Sites[0].Emergency.Numbers = nil
	nulls.Users = append(nulls.Users, account.User{ID: "u-nil", Extension: "1501", SIP: account.SIPCredentials{Username: "nil"}})
	nulls.SDGs = []account.SDG{{ID: "sdg-none", Extension: "1900"}} // no route at all
	nulls.Numbers, nulls.Trunks, nulls.Admins = nil, nil, nil
	nulls.Trunks = []account.Trunk{{ID: "t1"}, {ID: "t2", Codecs: []string{}}}
	nulls.Callout.CallerIDs, nulls.Embed.AllowedOrigins = nil, nil
	policies := smallSnapshot(9)
	policies.Sites[0].Outbound = &account.Outbound{International: account.InternationalList,
		AllowedCountries: []string{"GB", "+353"}, AllowPremium: true, MaxCallsPerUser: 5}
	policies.Sites = append(policies.Sites, account.Site{ID: "empty-policy", Outbound: &account.Outbound{}})
	policies.Trunks = []account.Trunk{{ID: "t-sdes", SRTP: account.SRTPSDES}, {ID: "t-off", SRTP: account.SRTPOff}, {ID: "t-none"}}

	for name, snap := range map[string]*account.Snapshot{
		"demo":       demo,
		"null lists": nulls,
		"policies":   policies,
		"big":        bigSnapshot(300, 300, 30),
		"zero":       {},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			raw, err := snap.Encode()
			if err != nil {
				t.Fatal(err)
			}
			apply(t, s, snap, raw)
			// What the document decodes to is the reference.
			want, err := account.DecodeBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Reader().Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Snapshot() =\n%#v\nwant\n%#v", got, want)
			}
			if name == "demo" && !reflect.DeepEqual(got, snap) {
				t.Errorf("Snapshot() differs from the decoded demo input")
			}
			doc, err := s.Reader().SnapshotJSON(ctx)
			if err != nil || !bytes.Equal(doc, raw) {
				t.Errorf("SnapshotJSON() = %d bytes, %v; want the %d stored bytes", len(doc), err, len(raw))
			}
			again, err := got.Encode()
			if err != nil || !bytes.Equal(again, raw) {
				t.Errorf("re-encoded Snapshot() differs from the canonical document")
			}
		})
	}
	_ = demoRaw
}

func TestSiteReadsOutboundPolicy(t *testing.T) {
	ctx := context.Background()
	snap := smallSnapshot(3)
	snap.Sites[0].Outbound = &account.Outbound{International: account.InternationalAll, MaxCallsPerUser: -1}
	s := openTest(t)
	apply(t, s, snap, nil)
	got, err := s.Reader().Site(ctx, snap.Sites[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Outbound, snap.Sites[0].Outbound) {
		t.Errorf("Site(%s).Outbound = %+v, want %+v", snap.Sites[0].ID, got.Outbound, snap.Sites[0].Outbound)
	}
}

func TestReplaceConfigStoresEncodingWhenRawNil(t *testing.T) {
	s := openTest(t)
	snap, raw := demoSnapshot(t)
	apply(t, s, snap, nil)
	doc, err := s.Reader().SnapshotJSON(context.Background())
	if err != nil || !bytes.Equal(doc, raw) {
		t.Errorf("SnapshotJSON() = %q, %v; want the canonical encoding", doc, err)
	}
}

func TestReplaceConfigWithSmallerSnapshot(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	demo, raw := demoSnapshot(t)
	apply(t, s, demo, raw)
	small := smallSnapshot(demo.Revision + 1)
	apply(t, s, small, nil)

	r := s.Reader()
	got, err := r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, small) {
		t.Errorf("Snapshot() =\n%+v\nwant\n%+v", got, small)
	}
	counts, err := r.Counts(ctx)
	if want := (Counts{Sites: 1, Users: 1, Numbers: 1}); err != nil || counts != want {
		t.Errorf("Counts() = %+v, %v; want %+v", counts, err, want)
	}
	for _, dial := range []string{"1001", "+16505550101", "1900", "+13125550200"} {
		if _, err := r.LookupDial(ctx, dial); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupDial(%s) after replace: error = %v, want ErrNotFound", dial, err)
		}
	}
	if _, err := r.UserByUsername(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByUsername(alice) after replace: error = %v, want ErrNotFound", err)
	}
	if _, err := r.Site(ctx, "branch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Site(branch) after replace: error = %v, want ErrNotFound", err)
	}
	for _, table := range []string{"site_emergency_numbers", "site_elins", "user_numbers", "callout_caller_ids", "embed_origins"} {
		var n int
		if err := r.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"site_emergency_numbers": 1, "user_numbers": 1}[table]; n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
}

func TestReplaceConfigRejectsConflicts(t *testing.T) {
	demo, raw := demoSnapshot(t)
	for name, mutate := range map[string]func(s *account.Snapshot){
		"extension used twice": func(s *account.Snapshot) { s.SDGs[0].Extension = s.Users[0].Extension },
		"DID is a number too":  func(s *account.Snapshot) { s.Numbers[0].Number = s.Users[1].Numbers[0] },
		"duplicate username":   func(s *account.Snapshot) { s.Users[1].SIP.Username = s.Users[0].SIP.Username },
		"duplicate site id":    func(s *account.Snapshot) { s.Sites[1].ID = s.Sites[0].ID },
	} {
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			apply(t, s, demo, raw)
			bad, err := account.DecodeBytes(raw)
			if err != nil {
				t.Fatal(err)
			}
			bad.Revision++
			mutate(bad)
			err = s.Write(func(tx *Tx) error {
				if err := tx.ReplaceConfig(bad, nil); err == nil {
					t.Error("ReplaceConfig succeeded, want an error")
				}
				// The failure left the transaction as it was.
				return tx.SetAppliedIndex(5)
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Reader().Snapshot(context.Background())
			if err != nil || !reflect.DeepEqual(got, demo) {
				t.Errorf("Snapshot() after a refused replace differs from the demo (%v)", err)
			}
		})
	}
}

func TestLookupDial(t *testing.T) {
	s := openTest(t)
	demo, raw := demoSnapshot(t)
	apply(t, s, demo, raw)
	ctx := context.Background()
	tests := []struct {
		dial string
		want Target
	}{
		{"1001", Target{Kind: TargetUser, ID: "u-alice", Site: "hq"}},
		{"2002", Target{Kind: TargetUser, ID: "u-erin", Site: "branch"}},
		{"+16505550101", Target{Kind: TargetUser, ID: "u-alice", Site: "hq"}},
		{"+13125550201", Target{Kind: TargetUser, ID: "u-dave", Site: "branch"}},
		{"1900", Target{Kind: TargetSDG, ID: "sdg-frontdesk", Site: "hq"}},
		{"2900", Target{Kind: TargetSDG, ID: "sdg-branch-sales", Site: "branch"}},
		{"+16505550100", Target{Kind: TargetNumber, ID: "+16505550100", Site: "hq"}},
		{"+13125550200", Target{Kind: TargetNumber, ID: "+13125550200", Site: "branch"}},
	}
	for _, tt := range tests {
		got, err := s.Reader().LookupDial(ctx, tt.dial)
		if err != nil || got != tt.want {
			t.Errorf("LookupDial(%q) = %+v, %v; want %+v", tt.dial, got, err, tt.want)
		}
	}
	for _, dial := range []string{"", "1004", "911", "6505550101", "+14155550123"} {
		if got, err := s.Reader().LookupDial(ctx, dial); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupDial(%q) = %+v, %v; want ErrNotFound", dial, got, err)
		}
	}
}

func TestReplaceConfigBig(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	big := bigSnapshot(10000, 10000, 1000)
	raw, err := big.Encode()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	apply(t, s, big, raw)
	t.Logf("ReplaceConfig of 10,000 users / 20,000 numbers / 1,000 SDGs: %v", time.Since(start))

	counts, err := s.Reader().Counts(ctx)
	if want := (Counts{Sites: 10, Users: 10000, SDGs: 1000, Numbers: 20000, Trunks: 10, Admins: 1}); err != nil || counts != want {
		t.Errorf("Counts() = %+v, %v; want %+v", counts, err, want)
	}
	got, err := s.Reader().Snapshot(ctx)
	if err != nil || !reflect.DeepEqual(got, big) {
		t.Errorf("Snapshot() of the big account differs from the input (%v)", err)
	}
	if tgt, err := s.Reader().LookupDial(ctx, big.Users[9999].Numbers[0]); err != nil || tgt.ID != big.Users[9999].ID {
		t.Errorf("LookupDial(last DID) = %+v, %v", tgt, err)
	}
}

// TestConcurrentReadersDuringWrites alternates two revisions while readers
// check that every answer is wholly one or the other.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	demo, _ := demoSnapshot(t)
	even := func(rev int64) *account.Snapshot { // the demo, 5 users
		c := *demo
		c.Revision = rev
		return &c
	}
	apply(t, s, even(2), nil)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 16)
	for range 4 {
		wg.Go(func() {
			r := s.Reader()
			for !stop.Load() {
				snap, err := r.Snapshot(ctx)
				if err != nil {
					errs <- err
					return
				}
				if want := map[bool]int{true: 5, false: 1}[snap.Revision%2 == 0]; len(snap.Users) != want {
					errs <- errors.New("snapshot mixes two revisions")
					return
				}
				users, err := r.Users(ctx)
				if err != nil || (len(users) != 5 && len(users) != 1) {
					errs <- errors.Join(errors.New("users mixes two revisions"), err)
					return
				}
				if _, err := r.LookupDial(ctx, "1500"); err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
				reads.Add(1)
			}
		})
	}
	for rev := int64(3); rev < 60; rev++ {
		snap := even(rev)
		if rev%2 == 1 {
			snap = smallSnapshot(rev)
		}
		if err := s.Write(func(tx *Tx) error {
			if err := tx.ReplaceConfig(snap, nil); err != nil {
				return err
			}
			return tx.SetAppliedIndex(uint64(rev))
		}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reads.Load() == 0 {
		t.Error("readers completed no reads")
	}
	if rev, err := s.Reader().Revision(ctx); err != nil || rev != 59 {
		t.Errorf("Revision() = %d, %v; want 59", rev, err)
	}
}

func TestReplaceConfigNil(t *testing.T) {
	s := openTest(t)
	err := s.Write(func(tx *Tx) error { return tx.ReplaceConfig(nil, nil) })
	if err == nil || !strings.Contains(err.Error(), "nil snapshot") {
		t.Errorf("ReplaceConfig(nil) error = %v, want one naming the nil snapshot", err)
	}
}

// TestUserPriorityStored: users[].priority survives the store (schema 10),
// read back by the registrar's lookups and in the snapshot.
func TestUserPriorityStored(t *testing.T) {
	s := openTest(t)
	snap, _ := demoSnapshot(t)
	snap.Users[0].Priority = account.PriorityEmergency
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, snap, raw)
	ctx := context.Background()
	u, err := s.Reader().UserByUsername(ctx, snap.Users[0].SIP.Username)
	if err != nil || u.Priority != account.PriorityEmergency {
		t.Fatalf("UserByUsername: %+v, %v", u, err)
	}
	back, err := s.Reader().Snapshot(ctx)
	if err != nil || back.Users[0].Priority != account.PriorityEmergency || back.Users[1].Priority != "" {
		t.Fatalf("Snapshot users: %+v, %v", back.Users[:2], err)
	}
}

// TestUserVoicemailStored: users[].voicemail survives the store (schema
// 11), read back by the lookups and in the snapshot; a user without one
// reads back nil.
func TestUserVoicemailStored(t *testing.T) {
	s := openTest(t)
	snap, _ := demoSnapshot(t)
	off := false
	snap.Users[0].Voicemail = &account.Voicemail{Enabled: &off, NoAnswerS: 9}
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, snap, raw)
	ctx := context.Background()
	u, err := s.Reader().UserByID(ctx, snap.Users[0].ID)
	if err != nil || u.Voicemail == nil || u.VoicemailSettings().Enabled || u.Voicemail.NoAnswerS != 9 {
		t.Fatalf("UserByID: %+v, %v", u, err)
	}
	back, err := s.Reader().Snapshot(ctx)
	if err != nil || back.Users[0].Voicemail == nil || back.Users[1].Voicemail != nil {
		t.Fatalf("Snapshot users: %+v, %v", back.Users[:2], err)
	}
}
