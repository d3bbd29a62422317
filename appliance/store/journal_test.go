package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// testRoute is a call record's route through an SDG.
const testRoute = "sdg:sdg-frontdesk > group:simultaneous > member:u-bob"

// testCall is an answered call to an SDG that ended at end, handled by
// node-1.
func testCall(id string, end time.Time) CallRecord {
	return CallRecord{
		ID: id, CallID: "call-" + id + "@192.0.2.1", Caller: "alice", CallerName: "Alice",
		Callee: "bob", Dialled: "1002", Destination: "sdg",
		Start: end.Add(-time.Minute), Answer: end.Add(-50 * time.Second), End: end,
		Disposition: "answered", Status: 200, Node: "node-1", Site: "hq", Route: testRoute,
	}
}

func putLocalCalls(t testing.TB, s *Store, rs ...CallRecord) {
	t.Helper()
	if err := s.PutLocalCallRecords(rs); err != nil {
		t.Fatalf("PutLocalCallRecords: %v", err)
	}
}

// putReplicatedCalls writes rs to call_records as the FSM would.
func putReplicatedCalls(t testing.TB, s *Store, rs ...CallRecord) {
	t.Helper()
	if err := s.Write(func(tx *Tx) error { return tx.PutCallRecords(rs) }); err != nil {
		t.Fatalf("PutCallRecords: %v", err)
	}
}

// callRows is every row of a call record table, by id.
func callRows(t testing.TB, s *Store, table string) []CallRecord {
	t.Helper()
	rs, err := queryCallRecords(context.Background(), s.reader.db,
		`SELECT `+callRecordColumns+` FROM `+table+` ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return rs
}

func callIDs(rs []CallRecord) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestCallRecordRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	answered := testCall("c-1", at(time.Minute))
	// Sub-millisecond parts are dropped; times come back in UTC.
	answered.End = answered.End.Add(999 * time.Microsecond).In(time.FixedZone("X", 3600))
	missed := testCall("c-2", at(2*time.Minute))
	missed.Answer, missed.Callee, missed.Disposition, missed.Status, missed.CallerName = time.Time{}, "", "no_answer", 480, ""
	missed.Destination, missed.Route = "user", "" // a plain call has no route
	putLocalCalls(t, s, answered, missed)

	got, err := s.Reader().LocalCallRecordsSince(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	answered.End = at(time.Minute)
	if want := []CallRecord{answered, missed}; !reflect.DeepEqual(got, want) {
		t.Errorf("LocalCallRecordsSince(zero) =\n%+v\nwant\n%+v", got, want)
	}
	if !got[1].Answer.IsZero() {
		t.Errorf("unanswered call reads back Answer %v, want zero", got[1].Answer)
	}
}

func TestPutCallRecordsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	first := testCall("c-1", at(time.Minute))
	second := first
	second.Disposition, second.Status = "busy", 486
	putLocalCalls(t, s, first)
	putLocalCalls(t, s, second, first)
	putReplicatedCalls(t, s, second)
	putReplicatedCalls(t, s, first, second) // twice in one batch
	if got := callRows(t, s, tableLocalCallRecords); !reflect.DeepEqual(got, []CallRecord{first}) {
		t.Errorf("local rows = %+v, want the first write only", got)
	}
	if got := callRows(t, s, tableCallRecords); !reflect.DeepEqual(got, []CallRecord{second}) {
		t.Errorf("replicated rows = %+v, want the first write only", got)
	}
	if n, err := s.Reader().CountCallRecords(ctx); err != nil || n != 1 {
		t.Errorf("CountCallRecords() = %d, %v; want 1", n, err)
	}
	// The union shows one row, the local copy.
	if got, err := s.Reader().CallRecords(ctx, time.Time{}, 0); err != nil || !reflect.DeepEqual(got, []CallRecord{first}) {
		t.Errorf("CallRecords() = %+v, %v; want the local copy", got, err)
	}
	// Empty batches are no-ops.
	if err := s.PutLocalCallRecords(nil); err != nil {
		t.Error(err)
	}
	if err := s.Write(func(tx *Tx) error { return tx.PutCallRecords(nil) }); err != nil {
		t.Error(err)
	}
}

func TestCallRecordsUnion(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	putLocalCalls(t, s, testCall("l-1", at(1*time.Second)), testCall("both", at(3*time.Second)), testCall("l-5", at(5*time.Second)))
	putReplicatedCalls(t, s, testCall("r-2", at(2*time.Second)), testCall("both", at(3*time.Second)),
		testCall("r-5", at(5*time.Second)), testCall("r-6", at(6*time.Second)))
	r := s.Reader()

	if n, err := r.CountCallRecords(ctx); err != nil || n != 6 {
		t.Errorf("CountCallRecords() = %d, %v; want 6", n, err)
	}
	for _, tc := range []struct {
		since time.Time
		limit int
		want  []string
	}{
		{time.Time{}, 0, []string{"r-6", "l-5", "r-5", "both", "r-2", "l-1"}},
		{time.Time{}, -1, []string{"r-6", "l-5", "r-5", "both", "r-2", "l-1"}},
		{time.Time{}, 3, []string{"r-6", "l-5", "r-5"}},
		{at(3 * time.Second), 0, []string{"r-6", "l-5", "r-5", "both"}},          // inclusive
		{at(3*time.Second + time.Microsecond), 0, []string{"r-6", "l-5", "r-5"}}, // sub-ms since
		{at(3*time.Second - time.Microsecond), 10, []string{"r-6", "l-5", "r-5", "both"}},
		{at(time.Hour), 0, nil}, // nothing
		{at(0), 1, []string{"r-6"}},
		{at(0).Add(-time.Hour), 100, []string{"r-6", "l-5", "r-5", "both", "r-2", "l-1"}},
		{at(2 * time.Second), 2, []string{"r-6", "l-5"}},
		{at(5 * time.Second), 0, []string{"r-6", "l-5", "r-5"}}, // tie by id
		{at(6 * time.Second), 0, []string{"r-6"}},
		{at(6*time.Second + time.Millisecond), 0, nil},
		{at(1 * time.Second).In(time.FixedZone("Y", -7200)), 0, []string{"r-6", "l-5", "r-5", "both", "r-2", "l-1"}}, // zone-free
	} {
		got, err := r.CallRecords(ctx, tc.since, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if ids := callIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("CallRecords(%v, %d) = %v, want %v", tc.since, tc.limit, ids, tc.want)
		}
	}
}

func TestCallRecordsDefaultLimit(t *testing.T) {
	s := openTest(t)
	rs := make([]CallRecord, defaultCallRecordsLimit+5)
	for i := range rs {
		rs[i] = testCall(fmt.Sprintf("c-%05d", i), at(time.Duration(i)*time.Millisecond))
	}
	putReplicatedCalls(t, s, rs...)
	got, err := s.Reader().CallRecords(context.Background(), time.Time{}, 0)
	if err != nil || len(got) != defaultCallRecordsLimit {
		t.Fatalf("CallRecords(zero, 0) = %d records, %v; want %d", len(got), err, defaultCallRecordsLimit)
	}
	if got[0].End != at(time.Duration(len(rs)-1)*time.Millisecond) {
		t.Errorf("first record ends %v, want the newest", got[0].End)
	}
}

func TestLocalCallRecordsSince(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	putLocalCalls(t, s, testCall("c-3", at(3*time.Second)), testCall("c-1", at(1*time.Second)),
		testCall("b-2", at(2*time.Second)), testCall("a-2", at(2*time.Second)))
	putReplicatedCalls(t, s, testCall("r-9", at(9*time.Second))) // never shared back
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"c-1", "a-2", "b-2", "c-3"}},
		{at(time.Second), []string{"a-2", "b-2", "c-3"}}, // strict
		{at(2 * time.Second), []string{"c-3"}},
		{at(2*time.Second - time.Microsecond), []string{"a-2", "b-2", "c-3"}},
		{at(2*time.Second + time.Microsecond), []string{"c-3"}},
		{at(3 * time.Second), []string{}},
	} {
		got, err := s.Reader().LocalCallRecordsSince(ctx, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		if ids := callIDs(got); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("LocalCallRecordsSince(%v) = %v, want %v", tc.since, ids, tc.want)
		}
	}
}

func TestPutCallRecordsRefusesInvalid(t *testing.T) {
	s := openTest(t)
	good := testCall("good", at(time.Second))
	noID := testCall("", at(time.Second))
	noStart := testCall("no-start", at(time.Second))
	noStart.Start = time.Time{}
	noEnd := testCall("no-end", at(time.Second))
	noEnd.End = time.Time{}
	for name, bad := range map[string]CallRecord{"no id": noID, "no start": noStart, "no end": noEnd} {
		if err := s.PutLocalCallRecords([]CallRecord{good, bad}); !errors.Is(err, ErrInvalidCallRecord) {
			t.Errorf("%s: PutLocalCallRecords = %v, want ErrInvalidCallRecord", name, err)
		}
		err := s.Write(func(tx *Tx) error { return tx.PutCallRecords([]CallRecord{good, bad}) })
		if !errors.Is(err, ErrInvalidCallRecord) {
			t.Errorf("%s: PutCallRecords = %v, want ErrInvalidCallRecord", name, err)
		}
	}
	if n, err := s.Reader().CountCallRecords(context.Background()); err != nil || n != 0 {
		t.Errorf("CountCallRecords() after refused batches = %d, %v; want 0", n, err)
	}
}

// TestRestoreKeepsOwnLocalCallRecords restores node A's snapshot on node B:
// B takes A's replicated journal but keeps its own local call records, and
// never imports A's.
func TestRestoreKeepsOwnLocalCallRecords(t *testing.T) {
	ctx := context.Background()
	a := openTest(t)
	aLocal := testCall("a-1", at(time.Second))
	aLocal.Node = "node-a"
	putLocalCalls(t, a, aLocal)
	putLocal(t, a, testBinding("ab-1", "alice@acme.example", "hq", "a-local", at(time.Second)))
	putReplicatedCalls(t, a, testCall("r-1", at(2*time.Second)), testCall("r-2", at(3*time.Second)))
	var backup bytes.Buffer
	if err := a.Backup(&backup); err != nil {
		t.Fatal(err)
	}

	b := openTest(t)
	bLocal := []CallRecord{testCall("b-1", at(4*time.Second)), testCall("b-2", at(5*time.Second))}
	putLocalCalls(t, b, bLocal...)
	putReplicatedCalls(t, b, testCall("old", at(time.Second)))
	putLocal(t, b, testBinding("bb-1", "bob@acme.example", "branch", "b-local", at(time.Second)))
	before := callRows(t, b, tableLocalCallRecords)
	beforeBindings := tableRows(t, b, tableLocalBindings)

	if err := b.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	assertOnlyDBFiles(t, b)
	if got := callRows(t, b, tableLocalCallRecords); !reflect.DeepEqual(got, before) {
		t.Errorf("local call records after restore = %v, want the receiver's own %v", callIDs(got), callIDs(before))
	}
	if got, want := callRows(t, b, tableCallRecords), callRows(t, a, tableCallRecords); !reflect.DeepEqual(got, want) {
		t.Errorf("replicated call records after restore = %v, want the backup's %v", callIDs(got), callIDs(want))
	}
	if got := tableRows(t, b, tableLocalBindings); !reflect.DeepEqual(got, beforeBindings) {
		t.Errorf("local bindings after restore = %v, want the receiver's own %v", contacts(got), contacts(beforeBindings))
	}
	all, err := b.Reader().CallRecords(ctx, time.Time{}, 0)
	if got, want := callIDs(all), []string{"b-2", "b-1", "r-2", "r-1"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CallRecords() after restore = %v, %v; want %v", got, err, want)
	}
	// The node goes on writing.
	putLocalCalls(t, b, testCall("b-3", at(6*time.Second)))
	if got := callRows(t, b, tableLocalCallRecords); len(got) != 3 {
		t.Errorf("local rows after a write following restore = %d, want 3", len(got))
	}

	// A node with no local call records of its own ends with none.
	c := openTest(t)
	if err := c.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := callRows(t, c, tableLocalCallRecords); len(got) != 0 {
		t.Errorf("an empty node imported %d local call records from another node's snapshot", len(got))
	}
}

// v2Database writes a database at schema version 2 (config plane and
// bindings, no journal), as an older outpost left it, with one member and
// one local binding.
func v2Database(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db := databaseAt(t, path, 2)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO members (id, raft_addr, http_addr, sip_addr, site, updated_at)
		VALUES ('node-1', '10.0.0.1:7000', '', '', 'hq', ?)`, formatTime(bt0)); err != nil {
		t.Fatal(err)
	}
	b := testBinding("b-v2", "alice@acme.example", "hq", "v2", at(time.Second))
	st, err := db.PrepareContext(ctx, upsertLocalBindingsSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := execBindings(ctx, st, []Binding{b}); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMigratesVersion2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outpost.db")
	v2Database(t, path)

	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 2 database: %v", err)
	}
	defer s.Close()
	version, _, err := schemaVersion(ctx, s.reader.db)
	if err != nil || version != SchemaVersion() || version < 3 {
		t.Errorf("schema version = %d, %v; want %d (at least 3)", version, err, SchemaVersion())
	}
	if m, err := s.Reader().Members(ctx); err != nil || len(m) != 1 || m[0].ID != "node-1" {
		t.Errorf("Members() after migrating = %+v, %v; want node-1", m, err)
	}
	if got := contacts(tableRows(t, s, tableLocalBindings)); !reflect.DeepEqual(got, []string{"v2"}) {
		t.Errorf("local bindings after migrating = %v, want [v2]", got)
	}
	if n, err := s.Reader().CountCallRecords(ctx); err != nil || n != 0 {
		t.Errorf("CountCallRecords() after migrating = %d, %v; want 0", n, err)
	}
	putLocalCalls(t, s, testCall("c-1", at(time.Second)))
	putReplicatedCalls(t, s, testCall("c-2", at(2*time.Second)))
	if got, err := s.Reader().CallRecords(ctx, time.Time{}, 0); err != nil || !reflect.DeepEqual(callIDs(got), []string{"c-2", "c-1"}) {
		t.Errorf("CallRecords() after migrating = %v, %v; want [c-2 c-1]", callIDs(got), err)
	}
}

// TestRestoreVersion2Backup restores a backup made before the journal
// existed: it is migrated, and the receiver keeps its local call records.
func TestRestoreVersion2Backup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	v2Database(t, path)
	backup := foldedFile(t, path)

	s := openTest(t)
	putLocalCalls(t, s, testCall("own", at(time.Second)))
	putReplicatedCalls(t, s, testCall("repl", at(time.Second)))
	if err := s.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore of a version 2 backup: %v", err)
	}
	if got := callIDs(callRows(t, s, tableLocalCallRecords)); !reflect.DeepEqual(got, []string{"own"}) {
		t.Errorf("local call records = %v, want [own]", got)
	}
	if got := callRows(t, s, tableCallRecords); len(got) != 0 {
		t.Errorf("replicated call records = %v, want none (the backup had none)", callIDs(got))
	}
	if n, err := s.Reader().CountCallRecords(ctx); err != nil || n != 1 {
		t.Errorf("CountCallRecords() = %d, %v; want 1", n, err)
	}
}

// The journal still to upload is both tables, one row per id, less what
// was marked uploaded, oldest first; marks are idempotent and may name ids
// the node has no record of yet (that record then never counts as pending).
func TestPendingCallRecords(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	putLocalCalls(t, s, testCall("l-1", at(1*time.Second)), testCall("both", at(3*time.Second)))
	putReplicatedCalls(t, s, testCall("r-2", at(2*time.Second)), testCall("both", at(3*time.Second)),
		testCall("r-4", at(4*time.Second)))
	r := s.Reader()
	pending := func(limit int) []string {
		t.Helper()
		rs, err := r.PendingCallRecords(ctx, JournalCursor{}, limit)
		if err != nil {
			t.Fatal(err)
		}
		return callIDs(rs)
	}
	count := func() int {
		t.Helper()
		n, err := r.CountPendingCallRecords(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := pending(0), []string{"l-1", "r-2", "both", "r-4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
	if got, want := pending(2), []string{"l-1", "r-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending(2) = %v, want %v", got, want)
	}
	mark := func(ids ...string) error {
		return s.Write(func(tx *Tx) error { return tx.MarkCallRecordsUploaded(ids, at(10*time.Second)) })
	}
	if err := mark("l-1", "both", "not-yet-here"); err != nil {
		t.Fatal(err)
	}
	if err := mark("l-1"); err != nil { // again: harmless
		t.Fatal(err)
	}
	if got, want := pending(0), []string{"r-2", "r-4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("pending after marks = %v, want %v", got, want)
	}
	if n := count(); n != 2 {
		t.Errorf("CountPendingCallRecords() = %d, want 2", n)
	}
	putReplicatedCalls(t, s, testCall("not-yet-here", at(5*time.Second)))
	if n := count(); n != 2 {
		t.Errorf("a record marked before it arrived counts as pending: %d, want 2", n)
	}
	// An empty id is refused and marks nothing.
	if err := mark("r-2", ""); !errors.Is(err, ErrInvalidCallRecord) {
		t.Errorf("mark with an empty id: %v, want ErrInvalidCallRecord", err)
	}
	if n := count(); n != 2 {
		t.Errorf("a refused mark changed the pending count to %d", n)
	}
}

// Reading on from the last record's cursor goes through the pending
// records a batch at a time, in order, whatever was marked meanwhile; a
// record that arrives with an older end than the cursor is behind it, and
// the next read from the start finds it.
func TestPendingCallRecordsAfterCursor(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	// Two records end at the same millisecond: the cursor orders them by id.
	putLocalCalls(t, s, testCall("a", at(1*time.Second)), testCall("c", at(3*time.Second)))
	putReplicatedCalls(t, s, testCall("b1", at(2*time.Second)), testCall("b2", at(2*time.Second)),
		testCall("c", at(3*time.Second)), testCall("d", at(4*time.Second)), testCall("e", at(5*time.Second)))
	r := s.Reader()
	read := func(after JournalCursor, limit int) []CallRecord {
		t.Helper()
		rs, err := r.PendingCallRecords(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	var got []string
	var after JournalCursor
	for batches := 0; ; batches++ {
		rs := read(after, 2)
		if len(rs) == 0 {
			break
		}
		if batches > 5 {
			t.Fatalf("still reading after %d batches: %v", batches, got)
		}
		got = append(got, callIDs(rs)...)
		after = CursorOf(rs[len(rs)-1])
		if batches == 0 {
			// The first batch is marked while the next are read: it
			// changes nothing after the cursor.
			if err := s.Write(func(tx *Tx) error { return tx.MarkCallRecordsUploaded(callIDs(rs), at(time.Minute)) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{"a", "b1", "b2", "c", "d", "e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("read after cursors: %v, want %v", got, want)
	}
	if got := callIDs(read(JournalCursor{End: at(2 * time.Second), ID: "b1"}, 0)); !reflect.DeepEqual(got, []string{"b2", "c", "d", "e"}) {
		t.Errorf("after (2s, b1): %v, want [b2 c d e]", got)
	}
	// A late record, older than the cursor: not after it, but found from
	// the start, after the marked batch.
	putReplicatedCalls(t, s, testCall("late", at(1500*time.Millisecond)))
	if rs := read(after, 0); len(rs) != 0 {
		t.Errorf("after the last cursor: %v, want nothing", callIDs(rs))
	}
	if got, want := callIDs(read(JournalCursor{}, 3)), []string{"late", "b2", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("from the start: %v, want %v", got, want)
	}
	if !(JournalCursor{}).IsZero() || CursorOf(testCall("a", at(0))).IsZero() {
		t.Errorf("IsZero is wrong")
	}
}

// benchCalls is n call records as a busy day journals them: UUIDv4 ids,
// ending some 0.3 s apart with calls of up to 15 minutes.
func benchCalls(n int) []CallRecord {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	rs := make([]CallRecord, n)
	for i := range rs {
		var u [16]byte
		for k := range u {
			u[k] = byte(rng.UintN(256))
		}
		u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
		id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
		end := base.Add(time.Duration(i)*288*time.Millisecond + time.Duration(rng.IntN(900_000))*time.Millisecond)
		rs[i] = testCall(id, end)
	}
	return rs
}

// BenchmarkPendingCallRecords reads the journal of 100,000 replicated
// records as the upload does, 5,000 at a time, with half of it marked
// uploaded: on from the cursor of the last batch (cursor), from the start
// (start: what a read without a cursor costs, the marked half passed
// record by record), and counts what is pending (count).
func BenchmarkPendingCallRecords(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	rs := benchCalls(100_000)
	for i := 0; i < len(rs); i += 5000 {
		putReplicatedCalls(b, s, rs[i:i+5000]...)
	}
	r := s.Reader()
	var after JournalCursor
	for range 10 {
		batch, err := r.PendingCallRecords(ctx, after, 5000)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Write(func(tx *Tx) error { return tx.MarkCallRecordsUploaded(callIDs(batch), bt0) }); err != nil {
			b.Fatal(err)
		}
		after = CursorOf(batch[len(batch)-1])
	}
	read := func(b *testing.B, from JournalCursor) {
		for b.Loop() {
			if rs, err := r.PendingCallRecords(ctx, from, 5000); err != nil || len(rs) != 5000 {
				b.Fatalf("read %d, %v", len(rs), err)
			}
		}
	}
	b.Run("cursor", func(b *testing.B) { read(b, after) })
	b.Run("start", func(b *testing.B) { read(b, JournalCursor{}) })
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			if n, err := r.CountPendingCallRecords(ctx); err != nil || n != 50_000 {
				b.Fatalf("count %d, %v", n, err)
			}
		}
	})
}

// AppendJSON writes what json.Marshal writes, byte for byte, whatever the
// strings hold and wherever the times are.
func TestCallRecordAppendJSON(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	plain := testCall("0b6e3a52-8f0e-4c61-9d55-2f1c3a4b5d6e", at(90*time.Minute+123*time.Millisecond))
	noRoute := plain
	noRoute.Route = "" // a plain call: no "route"
	records := []CallRecord{plain, noRoute, {}, {Route: testRoute}}
	for _, s := range []string{"", "Zoë Ünal", "a \"quoted\" \\name", "<script>&amp;", "tab\tnew\nline\x01\x7f",
		"line\u2028sep\u2029", "bad \xff\xfe utf-8", "日本語", "emoji 📞", "a>b&c<d\"e\\f>", ">"} {
		r := plain
		r.CallerName, r.Caller, r.Site, r.Route = s, s, s, s
		records = append(records, r)
	}
	r := plain
	r.Answer = time.Time{} // never answered: no "answer"
	r.Start = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	r.End = time.Date(2026, 11, 23, 9, 0, 1, 120_000_000, paris)
	r.Status = -1
	records = append(records, r)
	r.End = time.Date(2026, 11, 23, 9, 0, 1, 999_999_999, time.FixedZone("", -(3*3600+30*60)))
	records = append(records, r)
	for i, r := range records {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON([]byte("prefix"))
		if err != nil || string(got) != "prefix"+string(want) {
			t.Errorf("record %d: AppendJSON = %s, %v\nwant prefix%s", i, got, err, want)
		}
	}
	if b, _ := plain.AppendJSON(nil); !bytes.HasSuffix(b, []byte(`,"site":"hq","route":"sdg:sdg-frontdesk \u003e group:simultaneous \u003e member:u-bob"}`)) {
		t.Errorf("a routed record: %s, want its route last", b)
	}
	if b, _ := noRoute.AppendJSON(nil); bytes.Contains(b, []byte(`"route"`)) {
		t.Errorf("a plain call: %s, want no route", b)
	}
	r.End = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := json.Marshal(r); err == nil {
		t.Fatal("json.Marshal of the year 10000 works now: AppendJSON should too")
	}
	if b, err := r.AppendJSON(nil); err == nil {
		t.Errorf("the year 10000: %s, want an error as json.Marshal gives", b)
	}
}

// BenchmarkCallRecordJSON encodes 5,000 records, as a batch of the upload.
func BenchmarkCallRecordJSON(b *testing.B) {
	rs := benchCalls(5000)
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			for _, r := range rs {
				if _, err := json.Marshal(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for _, r := range rs {
				var err error
				if buf, err = r.AppendJSON(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
