package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-voice/outpost/internal/sqlitemig"
)

// closedStore makes a store with the demo account in a fresh directory,
// closes it and returns its path.
func closedStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	snap, raw := demoSnapshot(t)
	apply(t, s, snap, raw)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

// oldStore makes a database with only the first n migrations applied.
func oldStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := openWriter(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, sqlitemig.CreateTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:n] {
		if err := sqlitemig.Apply(ctx, db, m); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// dirState is every file in dir with its contents, to show that a check
// left the directory as it found it.
func dirState(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		state[e.Name()] = data
	}
	return state
}

func sameState(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestCheckMigrationCurrentStoreChangesNothing(t *testing.T) {
	path := closedStore(t)
	before := dirState(t, filepath.Dir(path))
	scratch := t.TempDir()
	from, to, err := CheckMigration(context.Background(), path, scratch)
	if err != nil {
		t.Fatalf("CheckMigration: %v", err)
	}
	if from != SchemaVersion() || to != SchemaVersion() {
		t.Errorf("versions = %d -> %d, want %d -> %d", from, to, SchemaVersion(), SchemaVersion())
	}
	if after := dirState(t, filepath.Dir(path)); !sameState(before, after) {
		t.Errorf("the store's directory changed: %d files before, %d after", len(before), len(after))
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch directory not cleaned up: %v", left)
	}
}

func TestCheckMigrationOldSchema(t *testing.T) {
	path := oldStore(t, 5)
	from, to, err := CheckMigration(context.Background(), path, t.TempDir())
	if err != nil {
		t.Fatalf("CheckMigration: %v", err)
	}
	if from != 5 || to != SchemaVersion() {
		t.Errorf("versions = %d -> %d, want 5 -> %d", from, to, SchemaVersion())
	}
	// The original is untouched: still at version 5.
	db, err := openWriter(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _, err := schemaVersion(context.Background(), db); err != nil || v != 5 {
		t.Errorf("original at version %d (%v), want 5", v, err)
	}
}

func TestCheckMigrationWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, raw := demoSnapshot(t)
	apply(t, s, snap, raw)
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("want a WAL beside an open store: %v", err)
	}
	from, to, err := CheckMigration(context.Background(), path, t.TempDir())
	if err != nil || from != SchemaVersion() || to != SchemaVersion() {
		t.Fatalf("CheckMigration = %d, %d, %v", from, to, err)
	}
	// The live store goes on working.
	apply(t, s, snap, raw)
	if _, err := s.Reader().Revision(context.Background()); err != nil {
		t.Errorf("Revision after the check: %v", err)
	}
}

func TestCheckMigrationSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '2099-01-01T00:00:00Z')`,
		SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = CheckMigration(context.Background(), path, t.TempDir())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("CheckMigration = %v, want ErrSchemaTooNew", err)
	}
	if _, _, err := MigrateFile(context.Background(), path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("MigrateFile = %v, want ErrSchemaTooNew", err)
	}
}

func TestCheckMigrationDamaged(t *testing.T) {
	notSQLite := filepath.Join(t.TempDir(), "outpost.db")
	if err := os.WriteFile(notSQLite, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}

	// A real store with its pages after the first overwritten.
	scribbled := closedStore(t)
	data, err := os.ReadFile(scribbled)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 3*4096 {
		t.Fatalf("store too small to damage: %d bytes", len(data))
	}
	copy(data[4096:], bytes.Repeat([]byte{0xA5}, len(data)-4096))
	if err := os.WriteFile(scribbled, data, 0o600); err != nil {
		t.Fatal(err)
	}

	for name, path := range map[string]string{"not sqlite": notSQLite, "scribbled": scribbled} {
		_, _, err := CheckMigration(context.Background(), path, t.TempDir())
		if err == nil || errors.Is(err, ErrNoStore) {
			t.Errorf("%s: CheckMigration = %v, want a damaged-store error", name, err)
		}
	}
}

func TestCheckMigrationMissingAndEmpty(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "outpost.db")
	if _, _, err := CheckMigration(context.Background(), missing, t.TempDir()); !errors.Is(err, ErrNoStore) {
		t.Errorf("CheckMigration(missing) = %v, want ErrNoStore", err)
	}
	if _, _, err := MigrateFile(context.Background(), missing); !errors.Is(err, ErrNoStore) {
		t.Errorf("MigrateFile(missing) = %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a check created %s", missing)
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if from, to, err := CheckMigration(context.Background(), empty, t.TempDir()); err != nil || from != 0 || to != SchemaVersion() {
		t.Errorf("CheckMigration(empty) = %d, %d, %v; want 0, %d, nil", from, to, err, SchemaVersion())
	}
}

func TestMigrateFile(t *testing.T) {
	path := oldStore(t, 3)
	from, to, err := MigrateFile(context.Background(), path)
	if err != nil || from != 3 || to != SchemaVersion() {
		t.Fatalf("MigrateFile = %d, %d, %v; want 3, %d, nil", from, to, err, SchemaVersion())
	}
	from, to, err = CheckMigration(context.Background(), path, t.TempDir())
	if err != nil || from != SchemaVersion() || to != SchemaVersion() {
		t.Fatalf("CheckMigration after MigrateFile = %d, %d, %v", from, to, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("MigrateFile left %s behind", filepath.Base(path+suffix))
		}
	}
}
