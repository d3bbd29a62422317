package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/appliance/store"
)

// migrateConfig writes a configuration whose data_dir is a fresh directory
// and whose http.listen is addr (a free port when empty, so no node
// answers there). It returns the file and the store's path.
func migrateConfig(t *testing.T) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath = filepath.Join(dir, "outpost.yaml")
	doc := fmt.Sprintf("data_dir: %s\n", dataDir)
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, filepath.Join(dataDir, "outpost.db")
}

// makeStore creates a current store at path; newer adds a schema version
// this binary does not know.
func makeStore(t *testing.T, path string, newer bool) {
	t.Helper()
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !newer {
		return
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '2099-01-01T00:00:00Z')`,
		store.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
}

func oneLineFailure(t *testing.T, args []string, stderr string, code int, want string) {
	t.Helper()
	if code != 1 || !strings.HasPrefix(stderr, "outpost: ") ||
		strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, want) {
		t.Errorf("%q: exit %d, stderr %q; want 1 and one line with %q", args, code, stderr, want)
	}
}

func TestMigrateCheckGoodStore(t *testing.T) {
	cfg, db := migrateConfig(t)
	makeStore(t, db, false)
	args := []string{"migrate", "--check", "--config", cfg}
	stdout, stderr, code := runCLI(t, args...)
	want := fmt.Sprintf("schema version %d, up to date: ok", store.SchemaVersion())
	if code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and %q", args, code, stdout, stderr, want)
	}
}

func TestMigrateCheckNewerStore(t *testing.T) {
	cfg, db := migrateConfig(t)
	makeStore(t, db, true)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"migrate", "--check", "--config", cfg},
		{"migrate", "--config", cfg},
	} {
		_, stderr, code := runCLI(t, args...)
		oneLineFailure(t, args, stderr, code, "newer than this binary supports")
	}
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the store changed (%v)", err)
	}
}

func TestMigrateCheckCorruptStore(t *testing.T) {
	cfg, db := migrateConfig(t)
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"migrate", "--check", "--config", cfg}
	_, stderr, code := runCLI(t, args...)
	oneLineFailure(t, args, stderr, code, "the store is not a SQLite database")
}

func TestMigrateMissingStore(t *testing.T) {
	cfg, db := migrateConfig(t)
	for _, args := range [][]string{
		{"migrate", "--check", "--config", cfg},
		{"migrate", "--config", cfg},
	} {
		stdout, stderr, code := runCLI(t, args...)
		if code != 0 || !strings.Contains(stdout, "nothing to migrate") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and nothing to migrate", args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("migrate created %s (%v)", db, err)
	}
}

func TestMigrateInPlace(t *testing.T) {
	cfg, db := migrateConfig(t)
	makeStore(t, db, false)
	args := []string{"migrate", "--config", cfg}
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and up to date", args, code, stdout, stderr)
	}
}

func TestMigrateRefusesRunningNode(t *testing.T) {
	cfg, db := migrateConfig(t)
	makeStore(t, db, false)
	unlock, err := store.LockDir(filepath.Dir(db)) // what a running node holds
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	args := []string{"migrate", "--config", cfg}
	_, stderr, code := runCLI(t, args...)
	oneLineFailure(t, args, stderr, code, "a node is running")

	// --check works on a copy: it runs beside a live node.
	args = []string{"migrate", "--check", "--config", cfg}
	if stdout, stderr, code := runCLI(t, args...); code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0", args, code, stdout, stderr)
	}
}

func TestMigrateUsageAndConfigErrors(t *testing.T) {
	if _, stderr, code := runCLI(t, "migrate", "extra"); code != 2 || !strings.Contains(stderr, "usage: outpost") {
		t.Errorf("migrate extra: exit %d, stderr %q; want 2 with usage", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("sip:\n  udp: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"migrate", "--check", "--config", bad}
	_, stderr, code := runCLI(t, args...)
	oneLineFailure(t, args, stderr, code, "sip.udp")
}
