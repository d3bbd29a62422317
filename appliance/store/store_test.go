package store

import (
	"context"
	"errors"
	"github.com/outpost-voice/outpost/internal/sqlitemig"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

const demoPath = "../../../shared/contract/demo-snapshot.json"

// openTest opens a store in a fresh temporary directory and closes it when
// the test ends.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "data", "outpost.db"), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// demoSnapshot decodes the contract's demo snapshot; raw is its canonical
// encoding.
func demoSnapshot(t testing.TB) (snap *account.Snapshot, raw []byte) {
	t.Helper()
	data, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatalf("read demo snapshot: %v", err)
	}
	snap, err = account.DecodeBytes(data)
	if err != nil {
		t.Fatalf("decode demo snapshot: %v", err)
	}
	raw, err = snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return snap, raw
}

// apply replaces the store's config with snap in its own write.
func apply(t testing.TB, s *Store, snap *account.Snapshot, raw []byte) {
	t.Helper()
	if err := s.Write(func(tx *Tx) error { return tx.ReplaceConfig(snap, raw) }); err != nil {
		t.Fatalf("ReplaceConfig: %v", err)
	}
}

func TestOpenMigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx := context.Background()
	if got, want := s.Path(), path; got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk, sync int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Errorf("synchronous = %d (%v), want 1 (NORMAL)", sync, err)
	}
	for _, table := range append([]string{"meta", "members", "schema_migrations", "local_bindings", "bindings"}, configTables...) {
		var n int
		if err := s.reader.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s, err = Open(path, nil)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var rows, version int
		if err := s.wdb.QueryRow("SELECT count(*), max(version) FROM schema_migrations").Scan(&rows, &version); err != nil {
			t.Fatal(err)
		}
		if rows != len(migrations) || version != SchemaVersion() {
			t.Errorf("schema_migrations: %d rows, version %d; want %d rows, version %d", rows, version, len(migrations), SchemaVersion())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '')`,
		SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded, want an error")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open error = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error %q does not say the schema is newer", err)
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	if got, want := migrations[0].Name, "0001_config.sql"; got != want {
		t.Errorf("first migration = %q, want %q", got, want)
	}
}

func TestReaderCannotWrite(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, stmt := range []string{
		`INSERT INTO meta (key, value) VALUES ('x', 1)`,
		`DELETE FROM schema_migrations`,
		`CREATE TABLE evil (x INTEGER)`,
	} {
		if _, err := s.Reader().db.ExecContext(ctx, stmt); err == nil {
			t.Errorf("reader executed %q, want an error", stmt)
		}
	}
	var n int
	if err := s.wdb.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Errorf("schema_migrations rows = %d (%v), want %d", n, err, len(migrations))
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	s := openTest(t)
	snap, raw := demoSnapshot(t)
	boom := errors.New("boom")
	err := s.Write(func(tx *Tx) error {
		if err := tx.ReplaceConfig(snap, raw); err != nil {
			return err
		}
		if err := tx.SetAppliedIndex(9); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want %v", err, boom)
	}
	assertEmpty(t, s)

	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in Write was swallowed")
			}
		}()
		s.Write(func(tx *Tx) error {
			if err := tx.SetAppliedIndex(9); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	assertEmpty(t, s)
	// The writer is usable after both.
	if err := s.Write(func(tx *Tx) error { return tx.SetAppliedIndex(3) }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AppliedIndex(); err != nil || got != 3 {
		t.Errorf("AppliedIndex() = %d, %v; want 3", got, err)
	}
}

// assertEmpty checks that no config, index, member or mode is recorded.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	r := s.Reader()
	if snap, err := r.Snapshot(ctx); err != nil || snap != nil {
		t.Errorf("Snapshot() = %v, %v; want nil, nil", snap, err)
	}
	if doc, err := r.SnapshotJSON(ctx); err != nil || doc != nil {
		t.Errorf("SnapshotJSON() = %q, %v; want nil, nil", doc, err)
	}
	if rev, err := r.Revision(ctx); err != nil || rev != 0 {
		t.Errorf("Revision() = %d, %v; want 0", rev, err)
	}
	if i, err := s.AppliedIndex(); err != nil || i != 0 {
		t.Errorf("AppliedIndex() = %d, %v; want 0", i, err)
	}
	if c, err := r.Counts(ctx); err != nil || c != (Counts{}) {
		t.Errorf("Counts() = %+v, %v; want zero", c, err)
	}
	if m, err := r.Members(ctx); err != nil || len(m) != 0 {
		t.Errorf("Members() = %v, %v; want none", m, err)
	}
	if mode, since, err := r.Mode(ctx); err != nil || mode != ModeNormal || !since.IsZero() {
		t.Errorf("Mode() = %q, %v, %v; want normal, zero time", mode, since, err)
	}
}

func TestSavepoint(t *testing.T) {
	s := openTest(t)
	snap, raw := demoSnapshot(t)
	boom := errors.New("boom")
	err := s.Write(func(tx *Tx) error {
		// A failed command inside a batch changes nothing...
		err := tx.Savepoint(func() error {
			if err := tx.ReplaceConfig(snap, raw); err != nil {
				return err
			}
			if err := tx.UpsertMember(Member{ID: "n1"}); err != nil {
				return err
			}
			if err := tx.SetMode(ModeSurvivability, time.Now()); err != nil {
				return err
			}
			// ... including a nested unit that succeeded.
			if err := tx.Savepoint(func() error { return tx.SetAppliedIndex(99) }); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Savepoint error = %v, want %v", err, boom)
		}
		if rev, err := tx.Revision(); err != nil || rev != 0 {
			t.Errorf("Revision() inside the transaction = %d, %v; want 0", rev, err)
		}
		// ... while the batch goes on and commits.
		return tx.SetAppliedIndex(7)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := s.AppliedIndex(); err != nil || got != 7 {
		t.Errorf("AppliedIndex() = %d, %v; want 7", got, err)
	}
	if snap, err := s.Reader().Snapshot(ctx); err != nil || snap != nil {
		t.Errorf("Snapshot() = %v, %v; want nil", snap, err)
	}
	if m, err := s.Reader().Members(ctx); err != nil || len(m) != 0 {
		t.Errorf("Members() = %v, %v; want none", m, err)
	}
	if mode, _, err := s.Reader().Mode(ctx); err != nil || mode != ModeNormal {
		t.Errorf("Mode() = %q, %v; want normal", mode, err)
	}

	// A successful savepoint keeps its changes.
	err = s.Write(func(tx *Tx) error {
		return tx.Savepoint(func() error { return tx.ReplaceConfig(snap, raw) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := s.Reader().Revision(ctx); err != nil || rev != snap.Revision {
		t.Errorf("Revision() = %d, %v; want %d", rev, err, snap.Revision)
	}
}

func TestAppliedIndex(t *testing.T) {
	s := openTest(t)
	for _, i := range []uint64{1, 42, 1 << 40} {
		if err := s.Write(func(tx *Tx) error { return tx.SetAppliedIndex(i) }); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AppliedIndex(); err != nil || got != i {
			t.Errorf("AppliedIndex() = %d, %v; want %d", got, err, i)
		}
	}
	if err := s.Write(func(tx *Tx) error { return tx.SetAppliedIndex(1 << 63) }); err == nil {
		t.Error("SetAppliedIndex(1<<63) succeeded, want an error")
	}
}

func TestMembers(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	n2 := Member{ID: "node-2", RaftAddr: "10.0.0.2:7000", HTTPAddr: "10.0.0.2:8080", SIPAddr: "10.0.0.2:5060", Site: "hq", UpdatedAt: t0}
	n1 := Member{ID: "node-1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", SIPAddr: "10.0.0.1:5060", Site: "hq", UpdatedAt: t0}
	n1b := n1
	n1b.SIPAddr, n1b.Site, n1b.UpdatedAt = "10.0.0.9:5060", "branch", t0.Add(time.Minute)
	err := s.Write(func(tx *Tx) error {
		for _, m := range []Member{n2, n1, n1b} {
			if err := tx.UpsertMember(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Reader().Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{n1b, n2}
	if len(got) != len(want) {
		t.Fatalf("Members() = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("member %s UpdatedAt = %v, want %v", w.ID, g.UpdatedAt, w.UpdatedAt)
		}
		g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("member %d = %+v, want %+v", i, g, w)
		}
	}

	err = s.Write(func(tx *Tx) error {
		if err := tx.RemoveMember("node-1"); err != nil {
			return err
		}
		return tx.RemoveMember("never-there")
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Reader().Members(ctx)
	if err != nil || len(got) != 1 || got[0].ID != "node-2" {
		t.Errorf("Members() after remove = %+v, %v; want node-2 only", got, err)
	}
	if err := s.Write(func(tx *Tx) error { return tx.UpsertMember(Member{}) }); err == nil {
		t.Error("UpsertMember with an empty id succeeded")
	}
}

func TestMode(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if mode, since, err := s.Reader().Mode(ctx); err != nil || mode != ModeNormal || !since.IsZero() {
		t.Errorf("Mode() of a new store = %q, %v, %v; want normal, zero time", mode, since, err)
	}
	since := time.Date(2025, 6, 1, 12, 30, 0, 5, time.UTC)
	for _, mode := range []string{ModeSurvivability, ModeRecovering, ModeNormal} {
		if err := s.Write(func(tx *Tx) error { return tx.SetMode(mode, since) }); err != nil {
			t.Fatal(err)
		}
		got, gotSince, err := s.Reader().Mode(ctx)
		if err != nil || got != mode || !gotSince.Equal(since) {
			t.Errorf("Mode() = %q, %v, %v; want %q, %v", got, gotSince, err, mode, since)
		}
		since = since.Add(time.Hour)
	}
	if err := s.Write(func(tx *Tx) error { return tx.SetMode("panic", since) }); err == nil {
		t.Error("SetMode(\"panic\") succeeded, want an error")
	}
}

func TestSizeBytes(t *testing.T) {
	s := openTest(t)
	before, err := s.SizeBytes()
	if err != nil || before <= 0 {
		t.Fatalf("SizeBytes() = %d, %v; want > 0", before, err)
	}
	big := bigSnapshot(2000, 2000, 100)
	apply(t, s, big, nil)
	after, err := s.SizeBytes()
	if err != nil || after <= before {
		t.Errorf("SizeBytes() after a 2,000-user snapshot = %d, %v; want more than %d", after, err, before)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Reader()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := s.Write(func(*Tx) error { return nil }); err == nil {
		t.Error("Write on a closed store succeeded")
	}
	if _, err := r.Revision(context.Background()); err == nil {
		t.Error("Reader on a closed store succeeded")
	}
}

func TestOpenRefusesNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a non-database file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error %q does not name the file", err)
	}
}

// v1Database writes a database at schema version 1 (config plane only), as
// an older outpost left it, with one member recorded.
func v1Database(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := openWriter(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, sqlitemig.CreateTable); err != nil {
		t.Fatal(err)
	}
	if err := sqlitemig.Apply(ctx, db, migrations[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO members (id, raft_addr, http_addr, sip_addr, site, updated_at)
		VALUES ('node-1', '10.0.0.1:7000', '', '', 'hq', ?)`, formatTime(bt0)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outpost.db")
	v1Database(t, path)

	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	defer s.Close()
	version, _, err := schemaVersion(ctx, s.reader.db)
	if err != nil || version != SchemaVersion() || version < 2 {
		t.Errorf("schema version = %d, %v; want %d (at least 2)", version, err, SchemaVersion())
	}
	if m, err := s.Reader().Members(ctx); err != nil || len(m) != 1 || m[0].ID != "node-1" {
		t.Errorf("Members() after migrating = %+v, %v; want node-1", m, err)
	}
	putLocal(t, s, testBinding("b-1", "alice@acme.example", "hq", "v1", at(time.Second)))
	putReplicated(t, s, testBinding("b-2", "alice@acme.example", "hq", "v2", at(time.Second)))
	if got, err := s.Reader().Bindings(ctx, "alice@acme.example", at(time.Minute)); err != nil || len(got) != 2 {
		t.Errorf("Bindings() after migrating = %v, %v; want 2", contacts(got), err)
	}
}

func TestUserByID(t *testing.T) {
	s := openTest(t)
	demo, raw := demoSnapshot(t)
	apply(t, s, demo, raw)
	u, err := s.Reader().UserByID(t.Context(), "u-alice")
	if err != nil || u.SIP.Username != "alice" || u.Extension != "1001" {
		t.Fatalf("UserByID(u-alice) = %+v, %v", u, err)
	}
	if _, err := s.Reader().UserByID(t.Context(), "u-nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}
