package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bt0 is a whole millisecond, so bindings versioned from it read back equal.
var bt0 = time.UnixMilli(1_700_000_000_000).UTC()

// at is bt0 plus d.
func at(d time.Duration) time.Time { return bt0.Add(d) }

// testBinding is a live binding of aor at site, versioned at updated and
// expiring an hour later; contact tells versions apart in tests.
func testBinding(id, aor, site, contact string, updated time.Time) Binding {
	return Binding{
		ID: id, AOR: aor, UserID: "u-" + aor, Username: aor, Site: site,
		Contact: contact, CallID: "call-" + id, CSeq: 1, Transport: "udp",
		Source: "192.0.2.1:5060", Node: "node-1",
		Expires: updated.Add(time.Hour), UpdatedAt: updated,
	}
}

// tombstone is b unregistered at updated.
func tombstone(b Binding, updated time.Time) Binding {
	b.Deleted, b.UpdatedAt = true, updated
	return b
}

// benchBindings is n bindings of n/2 AORs (two phones each) at site-0..9,
// held by node, versioned at updated.
func benchBindings(n int, node string, updated time.Time) []Binding {
	bs := make([]Binding, n)
	for i := range bs {
		user := i / 2
		aor := fmt.Sprintf("user%05d@acme.example", user)
		bs[i] = Binding{
			ID:         fmt.Sprintf("b-%s-%d", aor, i%2),
			AOR:        aor,
			UserID:     fmt.Sprintf("u-%05d", user),
			Username:   fmt.Sprintf("user%05d", user),
			Site:       fmt.Sprintf("site-%d", user%10),
			Contact:    fmt.Sprintf("sip:user%05d@10.1.%d.%d:5060;transport=tcp;ob", user, i/250%250, i%250),
			InstanceID: fmt.Sprintf("<urn:uuid:00000000-0000-4000-8000-%012d>", i),
			RegID:      1,
			CallID:     fmt.Sprintf("%08x-reg@10.1.%d.%d", i, i/250%250, i%250),
			CSeq:       uint32(i),
			Transport:  "tcp",
			Source:     fmt.Sprintf("10.1.%d.%d:%d", i/250%250, i%250, 40000+i%20000),
			Node:       node,
			UserAgent:  "Yealink SIP-T54W 96.86.0.70",
			Expires:    updated.Add(time.Hour),
			UpdatedAt:  updated,
		}
	}
	return bs
}

// putReplicated writes bs to the replicated table as the FSM would.
func putReplicated(t testing.TB, s *Store, bs ...Binding) {
	t.Helper()
	if err := s.Write(func(tx *Tx) error { return tx.PutBindings(bs) }); err != nil {
		t.Fatalf("PutBindings: %v", err)
	}
}

func putLocal(t testing.TB, s *Store, bs ...Binding) {
	t.Helper()
	if err := s.PutLocalBindings(bs); err != nil {
		t.Fatalf("PutLocalBindings: %v", err)
	}
}

// tableRows is every row of a binding table, tombstones included, by id.
func tableRows(t testing.TB, s *Store, table string) []Binding {
	t.Helper()
	bs, err := queryBindings(context.Background(), s.reader.db,
		`SELECT `+bindingColumns+` FROM `+table+` ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return bs
}

// contacts lists the bindings' contacts, to compare versions briefly.
func contacts(bs []Binding) []string {
	out := []string{}
	for _, b := range bs {
		out = append(out, b.Contact)
	}
	return out
}

func TestBindingRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	in := Binding{
		ID:         "b-1",
		AOR:        "alice@acme.example",
		UserID:     "u-alice",
		Username:   "alice",
		Site:       "hq",
		Contact:    `<sip:alice@198.51.100.7:5061;transport=tls>;+sip.instance="<urn:uuid:1>"`,
		InstanceID: "<urn:uuid:00000000-0000-4000-8000-000000000001>",
		RegID:      2,
		CallID:     "a84b4c76e66710@pc33.acme.example",
		CSeq:       4294967295,
		Transport:  "tls",
		Source:     "198.51.100.7:40123",
		Node:       "node-2",
		UserAgent:  "Ünïcode \"quoted\" \\ tab\t newline\n \x01 bad utf-8 \xff\xfe",
		Expires:    time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.FixedZone("CET", 3600)),
		UpdatedAt:  time.Date(2026, 3, 1, 11, 0, 0, 999_999_999, time.UTC),
	}
	putLocal(t, s, in)
	want := in
	want.Expires = time.Date(2026, 3, 1, 11, 0, 0, 123_000_000, time.UTC)
	want.UpdatedAt = time.Date(2026, 3, 1, 11, 0, 0, 999_000_000, time.UTC)

	got, err := s.Reader().LocalBindings(ctx)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("LocalBindings() = %+v, %v;\nwant [%+v]", got, err, want)
	}

	// The same binding replicated, and a tombstone with a zero expiry.
	putReplicated(t, s, in)
	if got := tableRows(t, s, tableBindings); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("bindings rows = %+v;\nwant [%+v]", got, want)
	}
	gone := Binding{ID: "b-2", AOR: "bob@acme.example", UpdatedAt: bt0, Deleted: true}
	putLocal(t, s, gone)
	got, err = s.Reader().LocalBindings(ctx)
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], gone) {
		t.Errorf("LocalBindings()[0] = %+v, %v; want %+v", got, err, gone)
	}
}

// TestPutBindingsLastWriterWins runs the same story against both tables.
func TestPutBindingsLastWriterWins(t *testing.T) {
	for _, table := range []string{tableLocalBindings, tableBindings} {
		t.Run(table, func(t *testing.T) {
			s := openTest(t)
			put := func(bs ...Binding) {
				t.Helper()
				if table == tableLocalBindings {
					putLocal(t, s, bs...)
				} else {
					putReplicated(t, s, bs...)
				}
			}
			b := func(contact string, updated time.Time) Binding {
				return testBinding("b-1", "alice@acme.example", "hq", contact, updated)
			}
			steps := []struct {
				name  string
				batch []Binding
				want  string
			}{
				{"first", []Binding{b("v1", at(10*time.Second))}, "v1"},
				{"older is ignored", []Binding{b("older", at(5*time.Second))}, "v1"},
				{"equal is ignored", []Binding{b("equal", at(10*time.Second))}, "v1"},
				{"one millisecond newer wins", []Binding{b("v2", at(10*time.Second+time.Millisecond))}, "v2"},
				{"newer wins", []Binding{b("v3", at(20*time.Second))}, "v3"},
				{"sub-millisecond newer is equal", []Binding{b("sub", at(20*time.Second+500*time.Microsecond))}, "v3"},
				{"batch in order", []Binding{b("v4", at(30*time.Second)), b("v5", at(31*time.Second))}, "v5"},
				{"batch out of order", []Binding{b("v7", at(41*time.Second)), b("v6", at(40*time.Second))}, "v7"},
			}
			for _, step := range steps {
				put(step.batch...)
				rows := tableRows(t, s, table)
				if got := contacts(rows); !reflect.DeepEqual(got, []string{step.want}) {
					t.Errorf("%s: stored %v, want [%s]", step.name, got, step.want)
				}
			}
		})
	}
}

func TestTombstoneBlocksResurrection(t *testing.T) {
	ctx := context.Background()
	for _, table := range []string{tableLocalBindings, tableBindings} {
		t.Run(table, func(t *testing.T) {
			s := openTest(t)
			put := func(bs ...Binding) {
				t.Helper()
				if table == tableLocalBindings {
					putLocal(t, s, bs...)
				} else {
					putReplicated(t, s, bs...)
				}
			}
			const aor = "alice@acme.example"
			live := testBinding("b-1", aor, "hq", "v1", at(time.Second))
			put(live)
			put(tombstone(live, at(2*time.Second)))
			// A late copy of an older registration arrives.
			put(testBinding("b-1", aor, "hq", "late", at(1500*time.Millisecond)))

			rows := tableRows(t, s, table)
			if len(rows) != 1 || !rows[0].Deleted || rows[0].Contact != "v1" || !rows[0].UpdatedAt.Equal(at(2*time.Second)) {
				t.Errorf("rows after a late older upsert = %+v; want the tombstone", rows)
			}
			if got, err := s.Reader().Bindings(ctx, aor, at(time.Minute)); err != nil || len(got) != 0 {
				t.Errorf("Bindings() = %v, %v; want none", contacts(got), err)
			}
			// Registering again, later, brings it back.
			put(testBinding("b-1", aor, "hq", "v2", at(3*time.Second)))
			if got, err := s.Reader().Bindings(ctx, aor, at(time.Minute)); err != nil || !reflect.DeepEqual(contacts(got), []string{"v2"}) {
				t.Errorf("Bindings() after re-registering = %v, %v; want [v2]", contacts(got), err)
			}
		})
	}
}

func TestPruneBindings(t *testing.T) {
	bs := func() []Binding {
		expiring := func(id string, expires time.Time, deleted bool) Binding {
			b := testBinding(id, "alice@acme.example", "hq", id, at(-2*time.Hour))
			b.Expires, b.Deleted = expires, deleted
			return b
		}
		return []Binding{
			expiring("expired", at(-time.Hour), false),
			expiring("tombstone", at(-time.Minute), true),
			expiring("at-cutoff", bt0, false),
			expiring("ms-after-cutoff", bt0.Add(time.Millisecond), false),
			expiring("live-tombstone", at(time.Hour), true),
			expiring("live", at(time.Hour), false),
		}
	}
	want := []string{"at-cutoff", "live", "live-tombstone", "ms-after-cutoff"}

	s := openTest(t)
	putLocal(t, s, bs()...)
	n, err := s.PruneLocalBindings(bt0)
	if err != nil || n != 2 {
		t.Errorf("PruneLocalBindings() = %d, %v; want 2", n, err)
	}
	if got := contacts(tableRows(t, s, tableLocalBindings)); !reflect.DeepEqual(got, want) {
		t.Errorf("local rows after prune = %v, want %v", got, want)
	}
	// A cutoff inside a millisecond takes the binding expiring at its start.
	if n, err := s.PruneLocalBindings(bt0.Add(500 * time.Microsecond)); err != nil || n != 1 {
		t.Errorf("PruneLocalBindings(+0.5ms) = %d, %v; want 1", n, err)
	}
	if n, err := s.PruneLocalBindings(bt0); err != nil || n != 0 {
		t.Errorf("PruneLocalBindings() again = %d, %v; want 0", n, err)
	}

	putReplicated(t, s, bs()...)
	if err := s.Write(func(tx *Tx) error { return tx.PruneBindings(bt0) }); err != nil {
		t.Fatal(err)
	}
	if got := contacts(tableRows(t, s, tableBindings)); !reflect.DeepEqual(got, want) {
		t.Errorf("replicated rows after prune = %v, want %v", got, want)
	}
}

// TestBindingsUnion checks how a node merges its own bindings with the
// replicated ones: per ID the newest version wins (local on a tie), and a
// winning tombstone or expired binding hides both.
func TestBindingsUnion(t *testing.T) {
	ctx := context.Background()
	now := at(time.Minute)
	type version struct {
		updated time.Duration
		deleted bool
		expired bool
	}
	tests := []struct {
		name        string
		local, repl *version
		want        string // contact of the winner, "" when hidden
	}{
		{"local only", &version{updated: 1}, nil, "local"},
		{"replicated only", nil, &version{updated: 1}, "repl"},
		{"replicated newer", &version{updated: 1}, &version{updated: 2}, "repl"},
		{"local newer", &version{updated: 2}, &version{updated: 1}, "local"},
		{"tie goes to local", &version{updated: 1}, &version{updated: 1}, "local"},
		{"newer local tombstone hides", &version{updated: 2, deleted: true}, &version{updated: 1}, ""},
		{"newer replicated tombstone hides", &version{updated: 1}, &version{updated: 2, deleted: true}, ""},
		{"older local tombstone", &version{updated: 1, deleted: true}, &version{updated: 2}, "repl"},
		{"older replicated tombstone", &version{updated: 2}, &version{updated: 1, deleted: true}, "local"},
		{"newer local expired hides", &version{updated: 2, expired: true}, &version{updated: 1}, ""},
		{"newer replicated expired hides", &version{updated: 1}, &version{updated: 2, expired: true}, ""},
		{"only expired", &version{updated: 1, expired: true}, nil, ""},
		{"only tombstones", &version{updated: 1, deleted: true}, &version{updated: 2, deleted: true}, ""},
	}
	s := openTest(t)
	mk := func(i int, v *version, contact string) Binding {
		b := testBinding(fmt.Sprintf("b-%02d", i), fmt.Sprintf("user%02d@acme.example", i), "hq", contact, at(v.updated*time.Second))
		b.Deleted = v.deleted
		if v.expired {
			b.Expires = now
		}
		return b
	}
	var local, repl []Binding
	for i, tc := range tests {
		if tc.local != nil {
			local = append(local, mk(i, tc.local, "local"))
		}
		if tc.repl != nil {
			repl = append(repl, mk(i, tc.repl, "repl"))
		}
	}
	putLocal(t, s, local...)
	putReplicated(t, s, repl...)

	r := s.Reader()
	var wantAll []string
	for i, tc := range tests {
		aor := fmt.Sprintf("user%02d@acme.example", i)
		got, err := r.Bindings(ctx, aor, now)
		if err != nil {
			t.Fatalf("%s: Bindings: %v", tc.name, err)
		}
		want := []string{}
		if tc.want != "" {
			want = []string{tc.want}
			wantAll = append(wantAll, aor+" "+tc.want)
		}
		if !reflect.DeepEqual(contacts(got), want) {
			t.Errorf("%s: Bindings(%s) = %v, want %v", tc.name, aor, contacts(got), want)
		}
	}
	all, err := r.AllBindings(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var gotAll []string
	for _, b := range all {
		gotAll = append(gotAll, b.AOR+" "+b.Contact)
	}
	if !reflect.DeepEqual(gotAll, wantAll) {
		t.Errorf("AllBindings() = %v, want %v", gotAll, wantAll)
	}
	if total, _, err := r.BindingCounts(ctx, now); err != nil || total != len(wantAll) {
		t.Errorf("BindingCounts() total = %d, %v; want %d", total, err, len(wantAll))
	}
}

func TestBindingCountsAndAllBindings(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	r := s.Reader()
	now := at(time.Minute)

	total, perSite, err := r.BindingCounts(ctx, now)
	if err != nil || total != 0 || len(perSite) != 0 {
		t.Errorf("BindingCounts() of an empty store = %d, %v, %v; want 0, none", total, perSite, err)
	}
	if all, err := r.AllBindings(ctx, now); err != nil || len(all) != 0 {
		t.Errorf("AllBindings() of an empty store = %v, %v; want none", all, err)
	}

	expired := testBinding("c-expired", "carol@acme.example", "hq", "x", at(-2*time.Hour))
	putLocal(t, s,
		testBinding("b-desk", "bob@acme.example", "hq", "desk", at(time.Second)),
		testBinding("a-phone", "alice@acme.example", "hq", "phone", at(time.Second)),
		testBinding("shared", "alice@acme.example", "hq", "shared-local", at(time.Second)),
		expired,
		tombstone(testBinding("c-gone", "carol@acme.example", "hq", "x", at(time.Second)), at(2*time.Second)),
	)
	putReplicated(t, s,
		testBinding("shared", "alice@acme.example", "hq", "shared-repl", at(2*time.Second)),
		testBinding("b-mobile", "bob@acme.example", "hq", "mobile", at(time.Second)),
		testBinding("d-1", "dave@acme.example", "branch", "dave", at(time.Second)),
		testBinding("d-2", "dave@acme.example", "branch", "dave2", at(time.Second)),
	)

	total, perSite, err = r.BindingCounts(ctx, now)
	if wantSites := map[string]int{"hq": 4, "branch": 2}; err != nil || total != 6 || !reflect.DeepEqual(perSite, wantSites) {
		t.Errorf("BindingCounts() = %d, %v, %v; want 6, %v", total, perSite, err, wantSites)
	}
	all, err := r.AllBindings(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range all {
		got = append(got, b.AOR+" "+b.ID+" "+b.Contact)
	}
	want := []string{
		"alice@acme.example a-phone phone",
		"alice@acme.example shared shared-repl",
		"bob@acme.example b-desk desk",
		"bob@acme.example b-mobile mobile",
		"dave@acme.example d-1 dave",
		"dave@acme.example d-2 dave2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AllBindings() =\n%q\nwant\n%q", got, want)
	}
	if got, err := r.Bindings(ctx, "bob@acme.example", now); err != nil || !reflect.DeepEqual(contacts(got), []string{"desk", "mobile"}) {
		t.Errorf("Bindings(bob) = %v, %v; want [desk mobile] (sorted by id)", contacts(got), err)
	}
	if got, err := r.Bindings(ctx, "nobody@acme.example", now); err != nil || len(got) != 0 {
		t.Errorf("Bindings(nobody) = %v, %v; want none", got, err)
	}

	// An hour later only the binding refreshed last is still live: counts
	// follow the clock passed in.
	later := at(time.Hour + 1500*time.Millisecond)
	total, perSite, err = r.BindingCounts(ctx, later)
	if wantSites := map[string]int{"hq": 1}; err != nil || total != 1 || !reflect.DeepEqual(perSite, wantSites) {
		t.Errorf("BindingCounts(later) = %d, %v, %v; want 1, %v", total, perSite, err, wantSites)
	}
}

func TestLocalBindingsSince(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	b := func(id string, updated time.Duration) Binding {
		return testBinding(id, "alice@acme.example", "hq", id, at(updated))
	}
	putLocal(t, s, b("c", 3*time.Second), b("a", 1*time.Second))
	putLocal(t, s, tombstone(b("d", 0), at(4*time.Second)), b("b", 2*time.Second), b("b2", 2*time.Second))
	r := s.Reader()

	all, err := r.LocalBindings(ctx)
	if want := []string{"a", "b", "b2", "c", "d"}; err != nil || !reflect.DeepEqual(contacts(all), want) {
		t.Errorf("LocalBindings() = %v, %v; want %v", contacts(all), err, want)
	}
	tests := []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"a", "b", "b2", "c", "d"}},
		{at(time.Second), []string{"b", "b2", "c", "d"}},
		{at(time.Second + 500*time.Microsecond), []string{"b", "b2", "c", "d"}},
		{at(2*time.Second - 500*time.Microsecond), []string{"b", "b2", "c", "d"}},
		{at(2 * time.Second), []string{"c", "d"}},
		{at(4 * time.Second), []string{}},
	}
	for _, tc := range tests {
		got, err := r.LocalBindingsSince(ctx, tc.since)
		if err != nil || !reflect.DeepEqual(contacts(got), tc.want) {
			t.Errorf("LocalBindingsSince(%v) = %v, %v; want %v", tc.since, contacts(got), err, tc.want)
		}
	}
	if got, _ := r.LocalBindingsSince(ctx, at(3*time.Second)); len(got) != 1 || !got[0].Deleted {
		t.Errorf("LocalBindingsSince(3s) = %+v; want the tombstone", got)
	}
}

func TestPutBindingsRefusesInvalid(t *testing.T) {
	ok := testBinding("b-1", "alice@acme.example", "hq", "ok", at(time.Second))
	bad := map[string]Binding{
		"empty id":     testBinding("", "alice@acme.example", "hq", "x", at(time.Second)),
		"empty aor":    testBinding("b-2", "", "hq", "x", at(time.Second)),
		"zero version": testBinding("b-3", "alice@acme.example", "hq", "x", time.Time{}),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			err := s.PutLocalBindings([]Binding{ok, b})
			if !errors.Is(err, ErrInvalidBinding) {
				t.Errorf("PutLocalBindings error = %v, want ErrInvalidBinding", err)
			}
			err = s.Write(func(tx *Tx) error { return tx.PutBindings([]Binding{ok, b}) })
			if !errors.Is(err, ErrInvalidBinding) {
				t.Errorf("PutBindings error = %v, want ErrInvalidBinding", err)
			}
			if rows := tableRows(t, s, tableLocalBindings); len(rows) != 0 {
				t.Errorf("a refused batch wrote %d local rows", len(rows))
			}
			if rows := tableRows(t, s, tableBindings); len(rows) != 0 {
				t.Errorf("a refused batch wrote %d replicated rows", len(rows))
			}
		})
	}
	s := openTest(t)
	if err := s.PutLocalBindings(nil); err != nil {
		t.Errorf("PutLocalBindings(nil) = %v, want nil", err)
	}
}

// TestBindingsConcurrent runs the registrar's group commits, the FSM's
// writes, pruning, backups and readers at once (meant for -race).
func TestBindingsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const rounds, perRound = 20, 100
	now := at(time.Minute)

	var stop atomic.Bool
	var readers, writers sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	writers.Go(func() { // the registrar
		for i := range rounds {
			if err := s.PutLocalBindings(benchBindings(perRound, "node-1", at(time.Duration(i)*time.Second))); err != nil {
				report(err)
				return
			}
			if _, err := s.PruneLocalBindings(bt0); err != nil {
				report(err)
				return
			}
		}
	})
	writers.Go(func() { // the FSM
		for i := range rounds {
			err := s.Write(func(tx *Tx) error {
				bs := benchBindings(2*perRound, "node-2", at(time.Duration(i)*time.Second+time.Millisecond))
				if err := tx.PutBindings(bs[perRound:]); err != nil {
					return err
				}
				if err := tx.PruneBindings(bt0); err != nil {
					return err
				}
				return tx.SetAppliedIndex(uint64(i + 1))
			})
			if err != nil {
				report(err)
				return
			}
		}
	})
	writers.Go(func() { // snapshots
		for range 3 {
			if err := s.Backup(&bytes.Buffer{}); err != nil {
				report(err)
				return
			}
		}
	})
	for range 3 {
		readers.Go(func() {
			r := s.Reader()
			for !stop.Load() {
				bs, err := r.Bindings(ctx, "user00001@acme.example", now)
				if err == nil && len(bs) > 2 {
					err = fmt.Errorf("user00001 has %d bindings, want at most 2", len(bs))
				}
				if err == nil {
					var total int
					total, _, err = r.BindingCounts(ctx, now)
					if err == nil && total > 2*perRound {
						err = fmt.Errorf("%d bindings counted, want at most %d", total, 2*perRound)
					}
				}
				if err == nil {
					_, err = r.AllBindings(ctx, now)
				}
				if err == nil {
					_, err = r.LocalBindingsSince(ctx, at(5*time.Second))
				}
				if err != nil {
					report(err)
					return
				}
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r := s.Reader()
	if total, perSite, err := r.BindingCounts(ctx, now); err != nil || total != 2*perRound || perSite["site-0"] != 2*perRound/10 {
		t.Errorf("BindingCounts() = %d, %v, %v; want %d, %d at site-0", total, perSite, err, 2*perRound, 2*perRound/10)
	}
	local, err := r.LocalBindings(ctx)
	if err != nil || len(local) != perRound || !local[0].UpdatedAt.Equal(at((rounds-1)*time.Second)) {
		t.Errorf("LocalBindings() = %d rows, %v; want %d at the last version", len(local), err, perRound)
	}
}
