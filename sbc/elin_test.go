package sbc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

const (
	elin1 = "+16505550190"
	elin2 = "+16505550191"
)

func hqSite() account.Site {
	return account.Site{ID: "hq", Name: "Headquarters", Country: "US", AreaCode: "650", MainNumber: "+16505550100",
		Emergency: account.Emergency{Numbers: []string{"911", "933"}, ELINPool: []string{elin1, elin2},
			Address: account.Address{Street: "1 Main St", City: "Palo Alto", Region: "CA", PostalCode: "94301", Country: "US"}}}
}

func TestELINAssignment(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration // after t0
		user string
		want string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first caller gets the first ELIN", []step{{0, "carol", elin1}}},
		{"a second caller gets a free one", []step{{0, "carol", elin1}, {time.Minute, "erin", elin2}}},
		{"a caller keeps their ELIN", []step{{0, "carol", elin1}, {time.Minute, "erin", elin2}, {2 * time.Minute, "carol", elin1}}},
		{"all in use: the oldest mapping is taken over", []step{
			{0, "carol", elin1}, {time.Minute, "erin", elin2}, {2 * time.Minute, "alice", elin1},
			{3 * time.Minute, "bob", elin2}}},
		{"a refreshed mapping is no longer the oldest", []step{
			{0, "carol", elin1}, {time.Minute, "erin", elin2}, {2 * time.Minute, "carol", elin1},
			{3 * time.Minute, "alice", elin2}}},
		{"expired: free again, least recently used first", []step{
			{0, "carol", elin1}, {time.Minute, "erin", elin2}, {3 * time.Hour, "alice", elin1},
			{3*time.Hour + time.Minute, "bob", elin2}}},
		{"own expired mapping preferred over a free one", []step{
			{0, "carol", elin1}, {time.Minute, "erin", elin2}, {3 * time.Hour, "erin", elin2}}},
		{"a never-used ELIN before an expired one", []step{
			{0, "carol", elin1}, {ELINHold + time.Minute, "erin", elin2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewELINs(NewMemoryELINStore(), quiet())
			for i, s := range tc.steps {
				m, err := e.Assign(context.Background(), hqSite(), s.user, t0.Add(s.at))
				if err != nil {
					t.Fatal(err)
				}
				if m.ELIN != s.want {
					t.Fatalf("step %d (%s at %v): ELIN %s, want %s", i, s.user, s.at, m.ELIN, s.want)
				}
				got, ok, err := e.Lookup(context.Background(), s.want, t0.Add(s.at))
				if err != nil || !ok || got.UserID != s.user {
					t.Fatalf("step %d: Lookup(%s) = %+v %v %v, want %s", i, s.want, got, ok, err, s.user)
				}
			}
		})
	}
}

func TestELINExpiry(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e := NewELINs(NewMemoryELINStore(), quiet())
	m, err := e.Assign(context.Background(), hqSite(), "carol", t0)
	if err != nil {
		t.Fatal(err)
	}
	want := ELINMapping{ID: "elin:" + elin1, ELIN: elin1, Site: "hq", UserID: "carol", CalledAt: t0,
		ExpiresAt: t0.Add(2 * time.Hour), UpdatedAt: t0}
	if m != want {
		t.Errorf("mapping\n got %+v\nwant %+v", m, want)
	}
	for _, tc := range []struct {
		elin string
		at   time.Duration
		ok   bool
	}{
		{elin1, 0, true}, {elin1, time.Hour, true}, {elin1, 2*time.Hour - time.Nanosecond, true},
		{elin1, 2 * time.Hour, false}, {elin1, 3 * time.Hour, false},
		{elin2, 0, false}, {"+15555550000", 0, false},
	} {
		got, ok, err := e.Lookup(context.Background(), tc.elin, t0.Add(tc.at))
		if err != nil || ok != tc.ok || (ok && got.UserID != "carol") {
			t.Errorf("Lookup(%s, +%v) = %+v %v %v, want found %v", tc.elin, tc.at, got, ok, err, tc.ok)
		}
	}
}

func TestELINAssignErrors(t *testing.T) {
	e := NewELINs(NewMemoryELINStore(), quiet())
	site := hqSite()
	site.Emergency.ELINPool = nil
	if _, err := e.Assign(context.Background(), site, "carol", time.Now()); !errors.Is(err, ErrNoELIN) {
		t.Errorf("empty pool: %v, want ErrNoELIN", err)
	}
	if _, err := e.Assign(context.Background(), hqSite(), "", time.Now()); err == nil {
		t.Error("no user accepted")
	}
	boom := errors.New("disk full")
	bad := NewELINs(failingStore{err: boom}, quiet())
	if _, err := bad.Assign(context.Background(), hqSite(), "carol", time.Now()); !errors.Is(err, boom) {
		t.Errorf("store failure: %v, want it wrapped", err)
	}
	if _, _, err := bad.Lookup(context.Background(), elin1, time.Now()); !errors.Is(err, boom) {
		t.Errorf("store failure on lookup: %v, want it wrapped", err)
	}
}

type failingStore struct{ err error }

func (f failingStore) GetELINs(context.Context, []string) ([]ELINMapping, error) { return nil, f.err }
func (f failingStore) PutELIN(context.Context, ELINMapping) error                { return f.err }

func TestELINClockBehindLastWriter(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	store := NewMemoryELINStore()
	e := NewELINs(store, quiet())
	site := hqSite()
	site.Emergency.ELINPool = []string{elin1}
	if _, err := e.Assign(context.Background(), site, "carol", t0); err != nil {
		t.Fatal(err)
	}
	// Another node, its clock 5 s behind, takes the only ELIN over.
	m, err := e.Assign(context.Background(), site, "erin", t0.Add(-5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !m.UpdatedAt.After(t0) {
		t.Errorf("UpdatedAt %v does not supersede %v", m.UpdatedAt, t0)
	}
	got, ok, _ := e.Lookup(context.Background(), elin1, t0)
	if !ok || got.UserID != "erin" {
		t.Errorf("Lookup = %+v, want erin's newer mapping", got)
	}
}

func TestELINMerge(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a := ELINMapping{ID: "elin:" + elin1, ELIN: elin1, Site: "hq", UserID: "carol", CalledAt: t0, ExpiresAt: t0.Add(ELINHold), UpdatedAt: t0}
	b := a
	b.UserID, b.UpdatedAt = "erin", t0.Add(time.Second)
	tie := a
	tie.UserID = "zed"
	for _, tc := range []struct {
		name string
		x, y ELINMapping
		want ELINMapping
	}{
		{"newer wins", a, b, b}, {"newer wins, either order", b, a, b},
		{"idempotent", a, a, a}, {"tie broken the same on every node", a, tie, tie}, {"tie, other order", tie, a, tie},
		{"zero loses", ELINMapping{}, a, a},
	} {
		if got := Merge(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: Merge = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// Replaying updates in any order converges.
	s1, s2 := NewMemoryELINStore(), NewMemoryELINStore()
	for _, m := range []ELINMapping{a, b, tie} {
		_ = s1.PutELIN(context.Background(), m)
	}
	for _, m := range []ELINMapping{b, tie, a, b} {
		_ = s2.PutELIN(context.Background(), m)
	}
	g1, _ := s1.GetELINs(context.Background(), []string{elin1})
	g2, _ := s2.GetELINs(context.Background(), []string{elin1})
	if len(g1) != 1 || len(g2) != 1 || g1[0] != g2[0] || g1[0] != b {
		t.Errorf("replicas diverged: %+v vs %+v", g1, g2)
	}
}

func TestChooseELINPure(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pool := []string{"e1", "e2", "e3"}
	mk := func(elin, user string, ago time.Duration) ELINMapping {
		at := t0.Add(-ago)
		return ELINMapping{ELIN: elin, UserID: user, CalledAt: at, ExpiresAt: at.Add(ELINHold), UpdatedAt: at}
	}
	for _, tc := range []struct {
		name     string
		known    []ELINMapping
		user     string
		want     string
		prevUser string
	}{
		{"nothing known: pool order", nil, "u", "e1", ""},
		{"never-used before used-and-expired", []ELINMapping{mk("e1", "x", 3*time.Hour)}, "u", "e2", ""},
		{"least recently used among expired", []ELINMapping{mk("e1", "x", 3*time.Hour), mk("e2", "y", 5*time.Hour), mk("e3", "z", 4*time.Hour)}, "u", "e2", "y"},
		{"own active", []ELINMapping{mk("e3", "u", time.Minute)}, "u", "e3", "u"},
		{"own latest of two", []ELINMapping{mk("e1", "u", 5*time.Hour), mk("e2", "u", 3*time.Hour)}, "u", "e2", "u"},
		{"all active: oldest", []ELINMapping{mk("e1", "x", time.Minute), mk("e2", "y", time.Hour), mk("e3", "z", 30*time.Minute)}, "u", "e2", "y"},
		{"mappings outside the pool are ignored", []ELINMapping{mk("e9", "u", time.Minute)}, "u", "e1", ""},
	} {
		got, prev := ChooseELIN(pool, tc.known, tc.user, t0)
		if got != tc.want || prev.UserID != tc.prevUser {
			t.Errorf("%s: ChooseELIN = %s (previous %q), want %s (%q)", tc.name, got, prev.UserID, tc.want, tc.prevUser)
		}
	}
}
