package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// putRotation writes r as the FSM would.
func putRotation(t testing.TB, s *Store, r Rotation) {
	t.Helper()
	if err := s.Write(func(tx *Tx) error { return tx.PutRotation(r) }); err != nil {
		t.Fatalf("PutRotation(%+v): %v", r, err)
	}
}

// A group keeps its newest rotation: a late, older write, or a replay,
// changes nothing; at the same millisecond the greater member wins,
// whatever the order; groups are independent.
func TestRotationsNewestWins(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const sales, desk = "sdg:sdg-sales/route", "sdg:sdg-frontdesk/route"
	r := s.Reader()
	if _, err := r.Rotation(ctx, sales); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rotation of a group never rotated: %v, want ErrNotFound", err)
	}
	get := func(group string) Rotation {
		t.Helper()
		got, err := r.Rotation(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	putRotation(t, s, Rotation{Group: sales, Member: "u-bob", At: at(2 * time.Second)})
	putRotation(t, s, Rotation{Group: sales, Member: "u-carol", At: at(time.Second)}) // late, older
	if got, want := get(sales), (Rotation{Group: sales, Member: "u-bob", At: at(2 * time.Second)}); got != want {
		t.Errorf("after a late older write: %+v, want %+v", got, want)
	}
	// Sub-millisecond parts are dropped; the time reads back in UTC.
	later := at(3 * time.Second).Add(999 * time.Microsecond).In(time.FixedZone("X", 3600))
	putRotation(t, s, Rotation{Group: sales, Member: "u-carol", At: later})
	if got, want := get(sales), (Rotation{Group: sales, Member: "u-carol", At: at(3 * time.Second)}); got != want {
		t.Errorf("after a newer write: %+v, want %+v", got, want)
	}
	putRotation(t, s, Rotation{Group: sales, Member: "u-bob", At: at(2 * time.Second)}) // a replay
	if got := get(sales); got.Member != "u-carol" {
		t.Errorf("a replay moved the group back to %s", got.Member)
	}
	// A tie: the greater member, in either order.
	putRotation(t, s, Rotation{Group: sales, Member: "u-dave", At: at(3 * time.Second)})
	putRotation(t, s, Rotation{Group: sales, Member: "u-alice", At: at(3 * time.Second)})
	if got := get(sales); got.Member != "u-dave" {
		t.Errorf("at the same time: %s, want u-dave (the greater member)", got.Member)
	}
	if !(Rotation{Member: "u-dave", At: at(3 * time.Second)}).Newer(Rotation{Member: "u-carol", At: at(3 * time.Second)}) ||
		(Rotation{Member: "u-zed", At: at(time.Second)}).Newer(Rotation{Member: "u-carol", At: at(3 * time.Second)}) ||
		(Rotation{Member: "u-dave", At: at(3 * time.Second)}).Newer(Rotation{Member: "u-dave", At: at(3 * time.Second)}) {
		t.Error("Rotation.Newer does not follow the store's rule")
	}

	putRotation(t, s, Rotation{Group: desk, Member: "u-erin", At: at(time.Second)})
	all, err := r.Rotations(ctx)
	want := []Rotation{
		{Group: desk, Member: "u-erin", At: at(time.Second)},
		{Group: sales, Member: "u-dave", At: at(3 * time.Second)},
	}
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Errorf("Rotations() = %+v, %v; want %+v", all, err, want)
	}
}

func TestPutRotationRefusesInvalid(t *testing.T) {
	s := openTest(t)
	for name, bad := range map[string]Rotation{
		"no group":  {Member: "u-bob", At: at(time.Second)},
		"no member": {Group: "g", At: at(time.Second)},
		"no time":   {Group: "g", Member: "u-bob"},
	} {
		err := s.Write(func(tx *Tx) error { return tx.PutRotation(bad) })
		if !errors.Is(err, ErrInvalidRotation) {
			t.Errorf("%s: %v, want ErrInvalidRotation", name, err)
		}
	}
	if rs, err := s.Reader().Rotations(context.Background()); err != nil || len(rs) != 0 {
		t.Errorf("Rotations() = %+v, %v; want none", rs, err)
	}
}

// v6Database writes a database at schema version 6, before routes and
// rotations, as an older outpost left it: one call record in each journal
// table and one local binding.
func v6Database(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db := databaseAt(t, path, 6)
	defer db.Close()
	const v6Columns = `id, call_id, caller, caller_name, callee, dialled, destination,
		start_ms, answer_ms, end_ms, disposition, status, node, site`
	for _, row := range []struct{ table, id string }{{tableLocalCallRecords, "v6-local"}, {tableCallRecords, "v6-repl"}} {
		c := testCall(row.id, at(time.Minute))
		if _, err := db.ExecContext(ctx, `INSERT INTO `+row.table+` (`+v6Columns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.CallID, c.Caller, c.CallerName, c.Callee,
			c.Dialled, c.Destination, c.Start.UnixMilli(), c.Answer.UnixMilli(), c.End.UnixMilli(), c.Disposition,
			c.Status, c.Node, c.Site); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.PrepareContext(ctx, upsertLocalBindingsSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := execBindings(ctx, st, []Binding{testBinding("b-v6", "alice@acme.example", "hq", "v6", at(time.Second))}); err != nil {
		t.Fatal(err)
	}
}

// v6Record is what v6Database stored as id, read back: no route.
func v6Record(id string) CallRecord {
	c := testCall(id, at(time.Minute))
	c.Route = ""
	return c
}

// Opening a version 6 database migrates it: its call records are kept,
// with no route, new ones keep theirs, and rotations can be stored.
func TestOpenMigratesVersion6(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outpost.db")
	v6Database(t, path)

	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 6 database: %v", err)
	}
	defer s.Close()
	version, _, err := schemaVersion(ctx, s.reader.db)
	if err != nil || version != SchemaVersion() || version < 7 {
		t.Errorf("schema version = %d, %v; want %d (at least 7)", version, err, SchemaVersion())
	}
	if got, want := callRows(t, s, tableLocalCallRecords), []CallRecord{v6Record("v6-local")}; !reflect.DeepEqual(got, want) {
		t.Errorf("local call records after migrating =\n%+v\nwant\n%+v", got, want)
	}
	if got, want := callRows(t, s, tableCallRecords), []CallRecord{v6Record("v6-repl")}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicated call records after migrating =\n%+v\nwant\n%+v", got, want)
	}
	if got := contacts(tableRows(t, s, tableLocalBindings)); !reflect.DeepEqual(got, []string{"v6"}) {
		t.Errorf("local bindings after migrating = %v, want [v6]", got)
	}
	routed := testCall("new", at(2*time.Minute))
	putLocalCalls(t, s, routed)
	if got, err := s.Reader().CallRecords(ctx, at(2*time.Minute), 0); err != nil || len(got) != 1 || got[0].Route != testRoute {
		t.Errorf("a record written after migrating reads back %+v, %v; want route %q", got, err, testRoute)
	}
	putRotation(t, s, Rotation{Group: "sdg:sdg-sales/route", Member: "u-bob", At: at(time.Second)})
	if got, err := s.Reader().Rotation(ctx, "sdg:sdg-sales/route"); err != nil || got.Member != "u-bob" {
		t.Errorf("Rotation after migrating = %+v, %v; want u-bob", got, err)
	}
}

// A Raft snapshot made by a version 6 node restores on a version 7 one: it
// is migrated, the receiver keeps its own local call records (routes
// included), takes the backup's replicated ones (without routes) and
// starts with the backup's rotations: none.
func TestRestoreVersion6Backup(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v6.db")
	v6Database(t, path)
	backup := foldedFile(t, path)

	s := openTest(t)
	own := testCall("own", at(time.Second))
	putLocalCalls(t, s, own)
	putReplicatedCalls(t, s, testCall("repl", at(time.Second)))
	putRotation(t, s, Rotation{Group: "sdg:sdg-sales/route", Member: "u-bob", At: at(time.Second)})
	if err := s.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore of a version 6 backup: %v", err)
	}
	if got := callRows(t, s, tableLocalCallRecords); !reflect.DeepEqual(got, []CallRecord{own}) {
		t.Errorf("local call records = %+v, want the receiver's own, route kept", got)
	}
	if got, want := callRows(t, s, tableCallRecords), []CallRecord{v6Record("v6-repl")}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicated call records = %+v, want the backup's %+v", got, want)
	}
	if rs, err := s.Reader().Rotations(ctx); err != nil || len(rs) != 0 {
		t.Errorf("Rotations() = %+v, %v; want the backup's: none", rs, err)
	}
}

// A snapshot carries the rotations, like every replicated table.
func TestRestoreTakesRotations(t *testing.T) {
	ctx := context.Background()
	a := openTest(t)
	want := Rotation{Group: "sdg:sdg-sales/route", Member: "u-bob", At: at(time.Second)}
	putRotation(t, a, want)
	var backup bytes.Buffer
	if err := a.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	b := openTest(t)
	putRotation(t, b, Rotation{Group: "sdg:sdg-other/route", Member: "u-carol", At: at(time.Second)})
	if err := b.Restore(&backup); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Reader().Rotations(ctx); err != nil || !reflect.DeepEqual(got, []Rotation{want}) {
		t.Errorf("Rotations() after restore = %+v, %v; want the backup's %+v", got, err, want)
	}
}
