package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/outpost-voice/outpost/internal/sqlitemig"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// backupOf applies snap at applied index idx to a new store and returns
// Backup's output.
func backupOf(t *testing.T, snap *account.Snapshot, idx uint64) []byte {
	t.Helper()
	src := openTest(t)
	err := src.Write(func(tx *Tx) error {
		if err := tx.ReplaceConfig(snap, nil); err != nil {
			return err
		}
		if err := tx.UpsertMember(Member{ID: "node-1", RaftAddr: "10.0.0.1:7000", UpdatedAt: time.Unix(1700000000, 0)}); err != nil {
			return err
		}
		if err := tx.SetMode(ModeSurvivability, time.Unix(1700000100, 0)); err != nil {
			return err
		}
		return tx.SetAppliedIndex(idx)
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Backup(&buf); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), sqliteHeader) {
		t.Fatalf("backup does not start with the SQLite header")
	}
	assertOnlyDBFiles(t, src)
	return buf.Bytes()
}

// assertOnlyDBFiles checks that no temp file is left beside the database.
func assertOnlyDBFiles(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(s.Path())
	for _, e := range entries {
		if name := e.Name(); !slices.Contains([]string{base, base + "-wal", base + "-shm"}, name) {
			t.Errorf("unexpected file %s left beside the database", name)
		}
	}
}

func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	demo, _ := demoSnapshot(t)
	backup := backupOf(t, demo, 42)

	dst := openTest(t)
	apply(t, dst, smallSnapshot(99), nil)
	r := dst.Reader() // taken before the restore: must stay valid
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	assertOnlyDBFiles(t, dst)

	got, err := r.Snapshot(ctx)
	if err != nil || !reflect.DeepEqual(got, demo) {
		t.Errorf("Snapshot() after restore = %+v, %v; want the demo", got, err)
	}
	if i, err := dst.AppliedIndex(); err != nil || i != 42 {
		t.Errorf("AppliedIndex() after restore = %d, %v; want 42", i, err)
	}
	if m, err := r.Members(ctx); err != nil || len(m) != 1 || m[0].ID != "node-1" {
		t.Errorf("Members() after restore = %+v, %v; want node-1", m, err)
	}
	if mode, _, err := r.Mode(ctx); err != nil || mode != ModeSurvivability {
		t.Errorf("Mode() after restore = %q, %v; want survivability", mode, err)
	}
	if tgt, err := r.LookupDial(ctx, "1001"); err != nil || tgt.ID != "u-alice" {
		t.Errorf("LookupDial(1001) after restore = %+v, %v", tgt, err)
	}
	var mode string
	if err := dst.wdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode after restore = %q, %v; want wal", mode, err)
	}
	// The store goes on working, and survives a reopen.
	if err := dst.Write(func(tx *Tx) error { return tx.SetAppliedIndex(43) }); err != nil {
		t.Fatal(err)
	}
	path := dst.Path()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if i, err := again.AppliedIndex(); err != nil || i != 43 {
		t.Errorf("AppliedIndex() after reopen = %d, %v; want 43", i, err)
	}
	if got, err := again.Reader().Snapshot(ctx); err != nil || !reflect.DeepEqual(got, demo) {
		t.Errorf("Snapshot() after reopen differs from the demo (%v)", err)
	}
}

func TestBackupOfBigStoreRestores(t *testing.T) {
	big := bigSnapshot(3000, 3000, 300)
	backup := backupOf(t, big, 7)
	dst := openTest(t)
	if err := dst.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Reader().Snapshot(context.Background())
	if err != nil || !reflect.DeepEqual(got, big) {
		t.Errorf("Snapshot() after restoring a big backup differs (%v)", err)
	}
}

func TestRestoreRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	demo, _ := demoSnapshot(t)
	backup := backupOf(t, demo, 42)

	plain := filepath.Join(t.TempDir(), "plain.db")
	db, err := sql.Open("sqlite3", plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	notOurs, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}

	newer := backupWithVersion(t, backup, SchemaVersion()+1)
	corrupt := bytes.Clone(backup)
	for i := 4096; i < len(corrupt); i++ { // keep page 1, garble the rest
		corrupt[i] ^= 0x5a
	}

	inputs := map[string][]byte{
		"empty":                   {},
		"garbage":                 []byte(strings.Repeat("not a database ", 1000)),
		"header only":             sqliteHeader,
		"truncated to half":       backup[:len(backup)/2],
		"truncated by one page":   backup[:len(backup)-4096],
		"truncated mid-page":      backup[:len(backup)-100],
		"corrupt pages":           corrupt,
		"not an outpost database": notOurs,
		"newer schema":            newer,
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			dst := openTest(t)
			small := smallSnapshot(5)
			apply(t, dst, small, nil)
			if err := dst.Write(func(tx *Tx) error { return tx.SetAppliedIndex(5) }); err != nil {
				t.Fatal(err)
			}
			err := dst.Restore(bytes.NewReader(input))
			if err == nil {
				t.Fatal("Restore succeeded, want an error")
			}
			t.Logf("Restore error: %v", err)
			if name == "newer schema" && !errors.Is(err, ErrSchemaTooNew) {
				t.Errorf("Restore error = %v, want ErrSchemaTooNew", err)
			}
			got, err := dst.Reader().Snapshot(ctx)
			if err != nil || !reflect.DeepEqual(got, small) {
				t.Errorf("Snapshot() after a refused restore = %+v, %v; want the previous state", got, err)
			}
			if i, err := dst.AppliedIndex(); err != nil || i != 5 {
				t.Errorf("AppliedIndex() after a refused restore = %d, %v; want 5", i, err)
			}
			assertOnlyDBFiles(t, dst)
		})
	}
}

// backupWithVersion returns backup with a schema_migrations row claiming
// version.
func backupWithVersion(t *testing.T, backup []byte, version int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edit.db")
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '')`, version); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA journal_mode = DELETE`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	edited, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return edited
}

// TestRestoreMigratesOlderBackup restores a backup made at schema version 1
// into a binary that knows a version 2.
func TestRestoreMigratesOlderBackup(t *testing.T) {
	ctx := context.Background()
	demo, _ := demoSnapshot(t)
	backup := backupOf(t, demo, 11)

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(slices.Clip(saved), sqlitemig.Migration{
		Version: len(saved) + 1,
		Name:    "9999_test_extra.sql",
		SQL:     "CREATE TABLE test_extra (x INTEGER NOT NULL) STRICT;",
	})

	dst := openTest(t)
	if err := dst.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	version, _, err := schemaVersion(ctx, dst.Reader().db)
	if err != nil || version != len(saved)+1 {
		t.Errorf("schema version after restore = %d, %v; want %d", version, err, len(saved)+1)
	}
	var n int
	if err := dst.Reader().db.QueryRow("SELECT count(*) FROM test_extra").Scan(&n); err != nil {
		t.Errorf("migrated table missing after restore: %v", err)
	}
	if got, err := dst.Reader().Snapshot(ctx); err != nil || !reflect.DeepEqual(got, demo) {
		t.Errorf("Snapshot() after restoring an older backup differs (%v)", err)
	}
}

// TestRestoreWhileReading restores two backups in turn while readers run:
// every answer is wholly one backup or the other, and readers never fail.
func TestRestoreWhileReading(t *testing.T) {
	ctx := context.Background()
	demo, _ := demoSnapshot(t)
	backups := [][]byte{backupOf(t, demo, 10), backupOf(t, smallSnapshot(20), 20)}
	dst := openTest(t)
	if err := dst.Restore(bytes.NewReader(backups[0])); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			r := dst.Reader()
			for !stop.Load() {
				snap, err := r.Snapshot(ctx)
				if err != nil {
					errs <- err
					return
				}
				switch {
				case snap.Revision == demo.Revision && len(snap.Users) == len(demo.Users):
				case snap.Revision == 20 && len(snap.Users) == 1:
				default:
					errs <- fmt.Errorf("snapshot mixes two backups: revision %d, %d users", snap.Revision, len(snap.Users))
					return
				}
			}
		})
	}
	for i := range 20 {
		if err := dst.Restore(bytes.NewReader(backups[i%2])); err != nil {
			t.Errorf("Restore %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if i, err := dst.AppliedIndex(); err != nil || i != 20 {
		t.Errorf("AppliedIndex() = %d, %v; want 20", i, err)
	}
}

// TestBackupWhileWriting takes backups while another goroutine replaces the
// config: each backup holds one whole revision.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	src := openTest(t)
	big := bigSnapshot(2000, 2000, 100)
	apply(t, src, big, nil)

	done := make(chan error)
	go func() {
		for rev := int64(1); rev <= 20; rev++ {
			snap := smallSnapshot(rev)
			if rev%2 == 0 {
				c := *big
				c.Revision = rev
				snap = &c
			}
			if err := src.Write(func(tx *Tx) error {
				if err := tx.ReplaceConfig(snap, nil); err != nil {
					return err
				}
				return tx.SetAppliedIndex(uint64(rev))
			}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	dst := openTest(t)
	for range 5 {
		var buf bytes.Buffer
		if err := src.Backup(&buf); err != nil {
			t.Fatal(err)
		}
		if err := dst.Restore(&buf); err != nil {
			t.Fatal(err)
		}
		snap, err := dst.Reader().Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := dst.AppliedIndex()
		if err != nil {
			t.Fatal(err)
		}
		wantUsers := 1
		if snap.Revision%2 == 0 || snap.Revision == big.Revision {
			wantUsers = len(big.Users)
		}
		if len(snap.Users) != wantUsers || (idx != 0 && int64(idx) != snap.Revision) {
			t.Errorf("backup holds revision %d with %d users at applied index %d: mixed state", snap.Revision, len(snap.Users), idx)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRestoreKeepsOwnLocalBindings restores node A's snapshot on node B: B
// takes A's replicated tables but keeps its own local bindings, and never
// imports A's.
func TestRestoreKeepsOwnLocalBindings(t *testing.T) {
	ctx := context.Background()
	now := at(time.Minute)
	a := openTest(t)
	aLocal := testBinding("a-1", "alice@acme.example", "hq", "a-local", at(time.Second))
	aLocal.Node = "node-a"
	putLocal(t, a, aLocal)
	replicated := []Binding{
		testBinding("r-1", "rita@acme.example", "hq", "r1", at(time.Second)),
		tombstone(testBinding("r-2", "rita@acme.example", "hq", "r2", at(time.Second)), at(2*time.Second)),
	}
	putReplicated(t, a, replicated...)
	if err := a.Write(func(tx *Tx) error { return tx.SetAppliedIndex(7) }); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := a.Backup(&backup); err != nil {
		t.Fatal(err)
	}

	// The backup carries both tables.
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	var nLocal, nRepl int
	err = db.QueryRow(`SELECT (SELECT count(*) FROM local_bindings), (SELECT count(*) FROM bindings)`).Scan(&nLocal, &nRepl)
	db.Close()
	if err != nil || nLocal != 1 || nRepl != 2 {
		t.Errorf("backup holds %d local and %d replicated bindings (%v); want 1 and 2", nLocal, nRepl, err)
	}

	b := openTest(t)
	bLocal := []Binding{
		testBinding("b-1", "bob@acme.example", "branch", "b-local", at(3*time.Second)),
		tombstone(testBinding("b-2", "bob@acme.example", "branch", "b-gone", at(time.Second)), at(4*time.Second)),
	}
	putLocal(t, b, bLocal...)
	putReplicated(t, b, testBinding("old", "olga@acme.example", "hq", "old", at(time.Second)))
	before := tableRows(t, b, tableLocalBindings)

	if err := b.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	assertOnlyDBFiles(t, b)
	if got := tableRows(t, b, tableLocalBindings); !reflect.DeepEqual(got, before) {
		t.Errorf("local bindings after restore = %v, want the receiver's own %v", contacts(got), contacts(before))
	}
	if got, want := tableRows(t, b, tableBindings), tableRows(t, a, tableBindings); !reflect.DeepEqual(got, want) {
		t.Errorf("replicated bindings after restore = %v, want the backup's %v", contacts(got), contacts(want))
	}
	if i, err := b.AppliedIndex(); err != nil || i != 7 {
		t.Errorf("AppliedIndex() after restore = %d, %v; want 7", i, err)
	}
	all, err := b.Reader().AllBindings(ctx, now)
	if got, want := contacts(all), []string{"b-local", "r1"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("AllBindings() after restore = %v, %v; want %v", got, err, want)
	}
	// The registrar goes on writing.
	putLocal(t, b, testBinding("b-3", "bob@acme.example", "branch", "b-new", at(5*time.Second)))
	if got := tableRows(t, b, tableLocalBindings); len(got) != 3 {
		t.Errorf("local rows after a write following restore = %d, want 3", len(got))
	}

	// A node with no local bindings of its own ends with none.
	c := openTest(t)
	if err := c.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := tableRows(t, c, tableLocalBindings); len(got) != 0 {
		t.Errorf("an empty node imported %d local bindings from another node's snapshot", len(got))
	}
}

// TestRestoreVersion1Backup restores a backup made before bindings existed:
// it is migrated, and the receiver keeps its local bindings.
func TestRestoreVersion1Backup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	v1Database(t, path)
	backup := foldedFile(t, path)

	s := openTest(t)
	own := testBinding("b-1", "alice@acme.example", "hq", "own", at(time.Second))
	putLocal(t, s, own)
	putReplicated(t, s, testBinding("b-2", "alice@acme.example", "hq", "repl", at(time.Second)))
	if err := s.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore of a version 1 backup: %v", err)
	}
	if got := contacts(tableRows(t, s, tableLocalBindings)); !reflect.DeepEqual(got, []string{"own"}) {
		t.Errorf("local bindings = %v, want [own]", got)
	}
	if got := tableRows(t, s, tableBindings); len(got) != 0 {
		t.Errorf("replicated bindings = %v, want none (the backup had none)", contacts(got))
	}
}

// foldedFile is the database file at path as Backup's copy would be: the
// WAL folded into the file, read whole.
func foldedFile(t *testing.T, path string) []byte {
	t.Helper()
	db, err := openWriter(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA journal_mode = DELETE`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return backup
}

// databaseAt creates a database at path migrated to schema version n only,
// as an outpost of that version left it, open for the caller to fill.
func databaseAt(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := openWriter(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, sqlitemig.CreateTable); err != nil {
		db.Close()
		t.Fatal(err)
	}
	for _, m := range migrations[:n] {
		if err := sqlitemig.Apply(ctx, db, m); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	return db
}
