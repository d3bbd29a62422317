package registrar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

var locT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// locBinding is a binding of aor at site, live until exp, versioned at
// updated.
func locBinding(id, aor, site string, exp, updated time.Time) store.Binding {
	return store.Binding{
		ID: id, AOR: aor, Username: aor[:len(aor)-len("@acme.example")], Site: site,
		Contact: "sip:" + id + "@192.0.2.10", CallID: "call-" + id, CSeq: 1, Transport: "udp",
		Source: "192.0.2.10:5060", Node: regNodeID, Expires: exp, UpdatedAt: updated,
	}
}

func tombstone(b store.Binding, at time.Time) store.Binding {
	b.Deleted, b.UpdatedAt = true, at
	return b
}

func ids(bs []store.Binding) []string {
	out := []string{}
	for _, b := range bs {
		id := b.ID
		if b.Deleted {
			id += "(deleted)"
		}
		out = append(out, id)
	}
	return out
}

// checkCount checks l.Count against want, a count per site (sites absent
// from want must count 0).
func checkCount(t *testing.T, l *Location, want map[string]int) {
	t.Helper()
	total, perSite := l.Count()
	wantTotal := 0
	for _, n := range want {
		wantTotal += n
	}
	if total != wantTotal {
		t.Errorf("Count total = %d, want %d", total, wantTotal)
	}
	for site, n := range perSite {
		if n != want[site] {
			t.Errorf("Count at %q = %d, want %d", site, n, want[site])
		}
	}
	for site, n := range want {
		if perSite[site] != n {
			t.Errorf("Count at %q = %d, want %d", site, perSite[site], n)
		}
	}
}

func TestLocationLoad(t *testing.T) {
	now := locT0
	rows := []store.Binding{
		locBinding("a1", aliceAOR, siteHQ, now.Add(time.Hour), now.Add(-time.Minute)),
		locBinding("a2", aliceAOR, siteHQ, now.Add(time.Minute), now.Add(-time.Minute)),
		tombstone(locBinding("a3", aliceAOR, siteHQ, now.Add(time.Hour), now.Add(-time.Minute)), now),
		locBinding("a4", aliceAOR, siteHQ, now, now.Add(-time.Hour)),                   // expires now: gone
		locBinding("a5", aliceAOR, siteHQ, now.Add(-time.Second), now.Add(-time.Hour)), // expired
		locBinding("b1", "bob@acme.example", siteHQ, now.Add(time.Nanosecond), now),
		locBinding("c1", "carol@acme.example", siteBranch, now.Add(time.Hour), now),
		tombstone(locBinding("c2", "carol@acme.example", siteBranch, now.Add(time.Hour), now), now),
		tombstone(locBinding("d1", "dave@acme.example", "site-gone", now.Add(-time.Hour), now), now),
	}
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	l.Load(rows, now)
	for aor, want := range map[string][]string{
		aliceAOR:             {"a1", "a2"},
		"bob@acme.example":   {"b1"},
		"carol@acme.example": {"c1"},
		"dave@acme.example":  {},
	} {
		if got := ids(l.Lookup(aor, now)); !slices.Equal(got, want) {
			t.Errorf("Lookup(%s) = %q, want %q", aor, got, want)
		}
	}
	checkCount(t, l, map[string]int{siteHQ: 3, siteBranch: 1})
	if got := ids(l.Lookup(aliceAOR, now.Add(time.Minute))); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("Lookup a minute later = %q, want [a1]", got)
	}
	// Loading writes nothing back.
	flushLocation(t, l)
	if got := p.snapshot(); len(got) != 0 {
		t.Errorf("Load persisted %v", got)
	}
}

func TestLocationUpdate(t *testing.T) {
	a := func(at time.Time) store.Binding { return locBinding("a", aliceAOR, siteHQ, at.Add(time.Hour), at) }
	b := func(at time.Time) store.Binding { return locBinding("b", aliceAOR, siteHQ, at.Add(time.Hour), at) }
	c := func(at time.Time) store.Binding { return locBinding("c", aliceAOR, siteBranch, at.Add(time.Hour), at) }
	t1, t2, t3, t4 := locT0, locT0.Add(time.Second), locT0.Add(2*time.Second), locT0.Add(3*time.Second)
	refused := errors.New("refused")
	steps := []struct {
		name        string
		now         time.Time
		next        func(cur []store.Binding) []store.Binding
		err         error
		wantCur     []string
		wantSite    int // siteCount(siteHQ) seen by fn: bob's binding, not alice's
		wantBound   []string
		wantPersist []store.Binding
		wantCount   map[string]int
	}{
		{"add two", t1, func([]store.Binding) []store.Binding { return []store.Binding{a(t1), b(t1)} }, nil,
			[]string{}, 1, []string{"a", "b"}, []store.Binding{a(t1), b(t1)}, map[string]int{siteHQ: 3}},
		{"unchanged", t2, func(cur []store.Binding) []store.Binding { return cur }, nil,
			[]string{"a", "b"}, 1, []string{"a", "b"}, nil, map[string]int{siteHQ: 3}},
		{"refused", t2, func([]store.Binding) []store.Binding { return nil }, refused,
			[]string{"a", "b"}, 1, []string{"a", "b"}, nil, map[string]int{siteHQ: 3}},
		{"drop a, refresh b, add c", t2, func([]store.Binding) []store.Binding { return []store.Binding{b(t2), c(t2)} }, nil,
			[]string{"a", "b"}, 1, []string{"b", "c"},
			[]store.Binding{b(t2), c(t2), tombstone(a(t1), t2)}, map[string]int{siteHQ: 2, siteBranch: 1}},
		{"remove all", t3, func([]store.Binding) []store.Binding { return nil }, nil,
			[]string{"b", "c"}, 1, []string{},
			[]store.Binding{tombstone(b(t2), t3), tombstone(c(t2), t3)}, map[string]int{siteHQ: 1}},
		{"empty stays empty", t4, func([]store.Binding) []store.Binding { return nil }, nil,
			[]string{}, 1, []string{}, nil, map[string]int{siteHQ: 1}},
	}
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	l.Load([]store.Binding{locBinding("bob", "bob@acme.example", siteHQ, t1.Add(time.Hour), t1)}, t1)
	for i, s := range steps {
		var gotCur []string
		gotSite := -1
		next, err := l.Update(aliceAOR, s.now, func(cur []store.Binding, siteCount func(string) int) ([]store.Binding, error) {
			gotCur, gotSite = ids(cur), siteCount(siteHQ)
			if s.err != nil {
				return nil, s.err
			}
			return s.next(slices.Clone(cur)), nil
		})
		if !errors.Is(err, s.err) {
			t.Fatalf("step %d %s: Update error %v, want %v", i, s.name, err, s.err)
		}
		if !slices.Equal(gotCur, s.wantCur) || gotSite != s.wantSite {
			t.Errorf("step %d %s: fn saw %q and %d at %s, want %q and %d", i, s.name, gotCur, gotSite, siteHQ, s.wantCur, s.wantSite)
		}
		if err == nil && !slices.Equal(ids(next), s.wantBound) {
			t.Errorf("step %d %s: Update returned %q, want %q", i, s.name, ids(next), s.wantBound)
		}
		if got := ids(l.Lookup(aliceAOR, s.now)); !slices.Equal(got, s.wantBound) {
			t.Errorf("step %d %s: Lookup = %q, want %q", i, s.name, got, s.wantBound)
		}
		checkCount(t, l, s.wantCount)
		before := len(p.all())
		flushLocation(t, l)
		if got := p.all()[before:]; !slices.Equal(got, s.wantPersist) {
			t.Errorf("step %d %s: persisted\n %+v\nwant\n %+v", i, s.name, got, s.wantPersist)
		}
	}
}

// TestLocationVersions checks that every change of a binding is persisted,
// with an UpdatedAt newer, at the store's millisecond precision, than the
// version persisted before, even when the clock has not moved or stepped
// back: the store ignores a version that is not newer.
func TestLocationVersions(t *testing.T) {
	now := locT0.Add(123456 * time.Nanosecond)
	a := locBinding("a", aliceAOR, siteHQ, now.Add(time.Hour), now)
	changed := func(b store.Binding, cseq uint32, at time.Time) store.Binding {
		b.CSeq, b.Contact, b.UpdatedAt = cseq, fmt.Sprintf("sip:a@192.0.2.%d", cseq), at
		return b
	}
	steps := []struct {
		name string
		now  time.Time
		next []store.Binding // a's bindings after the step; none: a is removed
	}{
		{"add", now, []store.Binding{a}},
		{"change 1 ms later", now.Add(time.Millisecond), []store.Binding{changed(a, 2, now.Add(time.Millisecond))}},
		{"change 1 µs later", now.Add(time.Millisecond + time.Microsecond), []store.Binding{changed(a, 3, now.Add(time.Millisecond+time.Microsecond))}},
		{"change 1 s later", now.Add(time.Second), []store.Binding{changed(a, 4, now.Add(time.Second))}},
		{"change at the same instant", now.Add(time.Second), []store.Binding{changed(a, 5, now.Add(time.Second))}},
		{"change with the clock stepped back", now, []store.Binding{changed(a, 6, now)}},
		{"remove at the same instant", now, nil},
		{"add back at the same instant", now, []store.Binding{changed(a, 7, now)}},
		{"remove 5 s later", now.Add(5 * time.Second), nil},
		{"add back 1 µs later", now.Add(5*time.Second + time.Microsecond), []store.Binding{changed(a, 8, now.Add(5*time.Second+time.Microsecond))}},
	}
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	var last store.Binding
	for i, s := range steps {
		if _, err := l.Update(aliceAOR, s.now, func([]store.Binding, func(string) int) ([]store.Binding, error) {
			return slices.Clone(s.next), nil
		}); err != nil {
			t.Fatal(err)
		}
		before := len(p.all())
		flushLocation(t, l)
		got := p.all()[before:]
		if len(got) != 1 {
			t.Errorf("step %d %s: persisted %d versions, want 1", i, s.name, len(got))
			continue
		}
		v := got[0]
		wantDeleted, wantCSeq := len(s.next) == 0, last.CSeq
		if !wantDeleted {
			wantCSeq = s.next[0].CSeq
		}
		if v.Deleted != wantDeleted || v.CSeq != wantCSeq {
			t.Errorf("step %d %s: persisted cseq %d deleted %v, want cseq %d deleted %v", i, s.name, v.CSeq, v.Deleted, wantCSeq, wantDeleted)
		}
		if i > 0 && v.UpdatedAt.UnixMilli() <= last.UpdatedAt.UnixMilli() {
			t.Errorf("step %d %s: version %v is not newer than the last persisted, %v: the store would ignore it",
				i, s.name, v.UpdatedAt, last.UpdatedAt)
		}
		if held := l.Lookup(aliceAOR, s.now); len(held) == 1 && held[0].UpdatedAt != v.UpdatedAt {
			t.Errorf("step %d %s: memory holds version %v, the store %v", i, s.name, held[0].UpdatedAt, v.UpdatedAt)
		}
		last = v
	}
}

// An expired binding is not offered to fn and, dropped, leaves no
// tombstone: it is simply no longer live, and a tombstone stamped now could
// hide a newer registration of the same phone on another node.
func TestLocationUpdateDropsExpired(t *testing.T) {
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	old := locBinding("old", aliceAOR, siteHQ, locT0.Add(time.Minute), locT0)
	live := locBinding("live", aliceAOR, siteHQ, locT0.Add(time.Hour), locT0)
	l.Load([]store.Binding{old, live}, locT0)
	now := locT0.Add(2 * time.Minute)
	_, err := l.Update(aliceAOR, now, func(cur []store.Binding, siteCount func(string) int) ([]store.Binding, error) {
		if got := ids(cur); !slices.Equal(got, []string{"live"}) {
			t.Errorf("fn saw %q, want [live]", got)
		}
		if n := siteCount(siteHQ); n != 0 {
			t.Errorf("siteCount(%s) = %d, want 0: both bindings are alice's", siteHQ, n)
		}
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCount(t, l, map[string]int{siteHQ: 1})
	flushLocation(t, l)
	if got := p.all(); len(got) != 0 {
		t.Errorf("persisted %+v, want nothing", got)
	}
}

// expire forgets expired bindings and fixes the counts; it persists
// nothing (see TestLocationUpdateDropsExpired).
func TestLocationExpire(t *testing.T) {
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	soon, later := locT0.Add(10*time.Second), locT0.Add(100*time.Second)
	a := locBinding("a", aliceAOR, siteHQ, soon, locT0)
	b := locBinding("b", aliceAOR, siteHQ, later, locT0)
	c := locBinding("c", "carol@acme.example", siteBranch, soon, locT0)
	d := locBinding("d", "bob@acme.example", siteHQ, soon.Add(-time.Nanosecond), locT0)
	l.Load([]store.Binding{a, b, c, d}, locT0)
	steps := []struct {
		now       time.Time
		wantCount map[string]int
		wantAOR   map[string][]string // Lookup at locT0: expiry removed them, whatever the time
	}{
		{soon.Add(-2 * time.Nanosecond), map[string]int{siteHQ: 3, siteBranch: 1},
			map[string][]string{aliceAOR: {"a", "b"}, "bob@acme.example": {"d"}, "carol@acme.example": {"c"}}},
		{soon, map[string]int{siteHQ: 1},
			map[string][]string{aliceAOR: {"b"}, "bob@acme.example": {}, "carol@acme.example": {}}},
		{soon.Add(time.Second), map[string]int{siteHQ: 1},
			map[string][]string{aliceAOR: {"b"}, "bob@acme.example": {}, "carol@acme.example": {}}},
		{later, map[string]int{},
			map[string][]string{aliceAOR: {}, "bob@acme.example": {}, "carol@acme.example": {}}},
	}
	for i, s := range steps {
		l.expire(s.now)
		checkCount(t, l, s.wantCount)
		for aor, want := range s.wantAOR {
			if got := ids(l.Lookup(aor, locT0)); !slices.Equal(got, want) {
				t.Errorf("step %d: Lookup(%s) = %q, want %q", i, aor, got, want)
			}
		}
	}
	flushLocation(t, l)
	if got := p.all(); len(got) != 0 {
		t.Errorf("expire persisted %+v", got)
	}
	// A new binding after the expiry counts from zero.
	if _, err := l.Update(aliceAOR, later, func(_ []store.Binding, siteCount func(string) int) ([]store.Binding, error) {
		if n := siteCount(siteHQ); n != 0 {
			t.Errorf("siteCount(%s) = %d after every binding expired", siteHQ, n)
		}
		return []store.Binding{locBinding("e", aliceAOR, siteHQ, later.Add(time.Hour), later)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	checkCount(t, l, map[string]int{siteHQ: 1})
}

// TestLocationPersistRetry calls flush, which Run calls after every change
// and when its context ends, directly: each call is one attempt.
func TestLocationPersistRetry(t *testing.T) {
	p := &batchRecorder{failNext: 2}
	l := NewLocation(p.persist, testLog)
	add := func(id string, now time.Time) store.Binding {
		t.Helper()
		b := locBinding(id, id+"@acme.example", siteHQ, now.Add(time.Hour), now)
		if _, err := l.Update(b.AOR, now, func([]store.Binding, func(string) int) ([]store.Binding, error) {
			return []store.Binding{b}, nil
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := add("a", locT0)
	l.flush() // fails
	b := add("b", locT0.Add(time.Second))
	l.flush() // fails again
	if got := p.snapshot(); len(got) != 0 {
		t.Fatalf("failed batches recorded: %v", got)
	}
	c := add("c", locT0.Add(2*time.Second))
	l.flush()
	if got, want := p.snapshot(), [][]store.Binding{{a, b, c}}; len(got) != 1 || !slices.Equal(got[0], want[0]) {
		t.Errorf("batches %v, want %v: the failed changes first, in order", got, want)
	}
	l.flush()
	if got := len(p.snapshot()); got != 1 {
		t.Errorf("%d batches after a flush with nothing pending, want 1", got)
	}
	if p.calls != 3 {
		t.Errorf("persist called %d times, want 3", p.calls)
	}
}

// A batch the store refuses as invalid is dropped: retrying it would fail
// for ever and hold back every later change.
func TestLocationPersistInvalidDropped(t *testing.T) {
	p := &batchRecorder{failNext: 1, failErr: fmt.Errorf("binding %q: %w", "", store.ErrInvalidBinding)}
	l := NewLocation(p.persist, testLog)
	update := func(id string) store.Binding {
		b := locBinding(id, aliceAOR, siteHQ, locT0.Add(time.Hour), locT0)
		if _, err := l.Update(b.AOR, locT0, func(cur []store.Binding, _ func(string) int) ([]store.Binding, error) {
			return append(cur, b), nil
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	update("bad")
	flushLocation(t, l)
	b := update("b")
	flushLocation(t, l)
	if got := p.all(); !slices.Equal(got, []store.Binding{b}) {
		t.Errorf("persisted %+v, want only %+v", got, b)
	}
}

// Many changes are persisted in chunks of persistChunk; a failure retries
// from the chunk that failed.
func TestLocationPersistChunks(t *testing.T) {
	const n = 2*persistChunk + persistChunk/2
	p := &batchRecorder{}
	calls := 0
	l := NewLocation(func(b []store.Binding) error {
		calls++
		if calls == 2 {
			return errors.New("database is locked")
		}
		return p.persist(b)
	}, testLog)
	var want []store.Binding
	for i := range n {
		b := locBinding(fmt.Sprint("b", i), fmt.Sprintf("u%d@acme.example", i), siteHQ, locT0.Add(time.Hour), locT0)
		want = append(want, b)
		if _, err := l.Update(b.AOR, locT0, func([]store.Binding, func(string) int) ([]store.Binding, error) {
			return []store.Binding{b}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	l.flush() // the first chunk, then a failure
	l.flush() // the rest
	var sizes []int
	for _, b := range p.snapshot() {
		sizes = append(sizes, len(b))
	}
	if want := []int{persistChunk, persistChunk, persistChunk / 2}; !slices.Equal(sizes, want) {
		t.Errorf("chunk sizes %v, want %v", sizes, want)
	}
	if got := p.all(); !slices.Equal(got, want) {
		t.Errorf("persisted %d bindings, want the %d in order, each once", len(got), len(want))
	}
}

// Run persists soon after a change, without waiting for its context to end.
func TestLocationRunPersistsChanges(t *testing.T) {
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	now := time.Now()
	b := locBinding("a", aliceAOR, siteHQ, now.Add(time.Hour), now)
	if _, err := l.Update(aliceAOR, now, func([]store.Binding, func(string) int) ([]store.Binding, error) {
		return []store.Binding{b}, nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(p.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.all(); !slices.Equal(got, []store.Binding{b}) {
		t.Errorf("persisted %+v, want %+v", got, b)
	}
}

// Run expires bindings on its own (once a second, by the wall clock).
func TestLocationRunExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Run's one-second expiry tick")
	}
	t.Parallel()
	p := &batchRecorder{}
	l := NewLocation(p.persist, testLog)
	now := time.Now()
	b := locBinding("a", aliceAOR, siteHQ, now.Add(50*time.Millisecond), now)
	if _, err := l.Update(aliceAOR, now, func([]store.Binding, func(string) int) ([]store.Binding, error) {
		return []store.Binding{b}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for total, _ := l.Count(); total != 0 && time.Now().Before(deadline); total, _ = l.Count() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	checkCount(t, l, map[string]int{})
	if got := p.all(); !slices.Equal(got, []store.Binding{b}) {
		t.Errorf("persisted %+v, want only %+v", got, b)
	}
}

// Live lists every live binding, oldest refresh first (ties by ID), and
// leaves expired ones out.
func TestLocationLive(t *testing.T) {
	l := NewLocation(func([]store.Binding) error { return nil }, testLog)
	l.Load([]store.Binding{
		locBinding("b2", "bob@acme.example", "hq", locT0.Add(time.Hour), locT0.Add(-time.Minute)),
		locBinding("a1", "alice@acme.example", "hq", locT0.Add(time.Hour), locT0.Add(-2*time.Minute)),
		locBinding("a2", "alice@acme.example", "hq", locT0.Add(time.Second), locT0.Add(-time.Minute)),
		locBinding("c1", "carol@acme.example", "branch", locT0.Add(time.Hour), locT0.Add(-3*time.Minute)),
	}, locT0)
	if got, want := ids(l.Live(locT0)), []string{"c1", "a1", "a2", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Live = %v, want %v", got, want)
	}
	if got, want := ids(l.Live(locT0.Add(time.Second))), []string{"c1", "a1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("Live a second later = %v, want %v", got, want)
	}
	if got := NewLocation(nil, testLog).Live(locT0); len(got) != 0 {
		t.Errorf("Live of an empty location = %v", got)
	}
}
