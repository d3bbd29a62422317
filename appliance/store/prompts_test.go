package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

const (
	promptSHA1 = "1111111111111111111111111111111111111111111111111111111111111111"
	promptSHA2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

// demoWithPrompts is the demo with two custom prompts.
func demoWithPrompts(t *testing.T) *account.Snapshot {
	t.Helper()
	snap, _ := demoSnapshot(t)
	snap.Prompts = []account.Prompt{
		{Name: "main-menu", Blob: promptSHA1, SHA256: promptSHA1},
		{Name: "callout-greeting", Blob: "greeting-v2", SHA256: promptSHA2},
	}
	return snap
}

// checkStored checks that the store holds the document doc: Snapshot reads
// back what decoding it gives, SnapshotJSON gives it back, and Prompts
// lists its prompts.
func checkStored(t *testing.T, s *Store, doc []byte) {
	t.Helper()
	ctx := context.Background()
	want, err := account.DecodeBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Reader().Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot().Prompts = %#v, want %#v (the whole snapshot must match)", got.Prompts, want.Prompts)
	}
	if back, err := s.Reader().SnapshotJSON(ctx); err != nil || !bytes.Equal(back, doc) {
		t.Errorf("SnapshotJSON() = %.200s, %v; want the stored document %.200s", back, err, doc)
	}
	prompts, err := s.Reader().Prompts(ctx)
	if err != nil || !reflect.DeepEqual(prompts, want.Prompts) {
		t.Errorf("Prompts() = %#v, %v; want %#v", prompts, err, want.Prompts)
	}
}

func TestPromptsRoundTrip(t *testing.T) {
	with := demoWithPrompts(t)
	withDoc, err := with.Encode()
	if err != nil {
		t.Fatal(err)
	}
	demo, demoDoc := demoSnapshot(t)
	// A document may spell the empty list out; it decodes as none.
	emptyDoc := append(bytes.Clone(bytes.TrimSuffix(demoDoc, []byte("}"))), `,"prompts":[]}`...)
	empty := *demo
	empty.Prompts = []account.Prompt{}
	for name, tc := range map[string]struct {
		snap *account.Snapshot
		raw  []byte
		want []byte // what is stored
	}{
		"with prompts":             {with, withDoc, withDoc},
		"with prompts, encoded":    {with, nil, withDoc},
		"none":                     {demo, demoDoc, demoDoc},
		"an empty list":            {&empty, emptyDoc, emptyDoc},
		"an empty list, encoded":   {&empty, nil, demoDoc},
		"a null list, then absent": {demo, nil, demoDoc},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			apply(t, s, tc.snap, tc.raw)
			checkStored(t, s, tc.want)
		})
	}
}

// The cloud's edits of prompts, applied object by object, leave the tables
// as the whole snapshot would.
func TestApplyChangesPrompts(t *testing.T) {
	base, _ := demoSnapshot(t)
	s := openTest(t)
	apply(t, s, base, nil)
	cur := base
	a := account.Prompt{Name: "main-menu", Blob: promptSHA1, SHA256: promptSHA1}
	b := account.Prompt{Name: "callout-greeting", Blob: "greeting-v2", SHA256: promptSHA2}
	a2 := account.Prompt{Name: a.Name, Blob: promptSHA2, SHA256: promptSHA2}
	for i, changes := range [][]account.Change{
		{{Kind: account.KindPrompts, ID: a.Name, Value: a}},     // the first: the list appears
		{{Kind: account.KindPrompts, ID: b.Name, Value: b}},     // appended
		{{Kind: account.KindPrompts, ID: a.Name, Value: a2}},    // replaced in place
		{{Kind: account.KindPrompts, ID: a.Name, Delete: true}}, // removed
		{{Kind: account.KindPrompts, ID: b.Name, Delete: true}}, // the last: none (nil)
		{{Kind: account.KindPrompts, ID: a.Name, Value: a}, {Kind: account.KindUsers, ID: base.Users[0].ID, Value: base.Users[0]}},
	} {
		next, err := cur.WithChanges(changes)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		next.Revision = cur.Revision + 1
		if err := account.Validate(next, cur.Revision); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := s.Write(func(tx *Tx) error { return tx.ApplyChanges(next.Revision, changes) }); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		checkSameAsReplace(t, s, next)
		cur = next
	}
	err := s.Write(func(tx *Tx) error {
		return tx.ApplyChanges(cur.Revision+1, []account.Change{{Kind: account.KindPrompts, ID: "none", Delete: true}})
	})
	if !errors.Is(err, account.ErrBadChange) {
		t.Errorf("a delete of a prompt not there: %v, want ErrBadChange", err)
	}
	checkSameAsReplace(t, s, cur)
}

func TestReplaceConfigRefusesPromptNameTwice(t *testing.T) {
	snap := demoWithPrompts(t)
	snap.Prompts[1].Name = snap.Prompts[0].Name
	s := openTest(t)
	err := s.Write(func(tx *Tx) error { return tx.ReplaceConfig(snap, nil) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("ReplaceConfig with a prompt name twice: %v, want ErrConflict", err)
	}
	assertEmpty(t, s)
}

// v7Database writes, at path, the database a version 7 node serving the
// demo has: made with this binary, then taken back to schema 7 (the tables
// 0008 and later add dropped).
func v7Database(t *testing.T, path string) []byte {
	t.Helper()
	snap, raw := demoSnapshot(t)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, snap, raw)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := openWriter(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`DROP TABLE prompts`,
		`DROP TABLE sdg_overrides`,
		`ALTER TABLE users DROP COLUMN priority`,
		`DROP TABLE voicemail`, `DROP TABLE local_voicemail`, `ALTER TABLE users DROP COLUMN voicemail`,
		`DELETE FROM schema_migrations WHERE version >= 8`,
		`PRAGMA journal_mode = DELETE`, // one file, as a backup is
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return raw
}

// Opening a version 7 database migrates it: the snapshot it serves reads
// back as before, with no prompts, and prompts can be stored.
func TestOpenMigratesVersion7(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "outpost.db")
	raw := v7Database(t, path)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 7 database: %v", err)
	}
	defer s.Close()
	if version, _, err := schemaVersion(ctx, s.reader.db); err != nil || version != SchemaVersion() || version < 8 {
		t.Errorf("schema version = %d, %v; want %d (at least 8)", version, err, SchemaVersion())
	}
	checkStored(t, s, raw)
	// The document goes; the tables must give it back exactly.
	if err := s.Write(func(tx *Tx) error { return tx.ApplyChanges(2, nil) }); err != nil {
		t.Fatal(err)
	}
	snap, _ := demoSnapshot(t)
	snap.Revision = 2
	checkSameAsReplace(t, s, snap)
	with := demoWithPrompts(t)
	with.Revision = 3
	apply(t, s, with, nil)
	if got, err := s.Reader().Prompts(ctx); err != nil || !reflect.DeepEqual(got, with.Prompts) {
		t.Errorf("Prompts() after migrating = %+v, %v; want %+v", got, err, with.Prompts)
	}
}

// An empty version 7 database migrates to an empty version 8 one, which
// takes a snapshot with prompts.
func TestOpenMigratesEmptyVersion7(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := openWriter(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE prompts`, `DROP TABLE sdg_overrides`, `ALTER TABLE users DROP COLUMN priority`,
		`DROP TABLE voicemail`, `DROP TABLE local_voicemail`, `ALTER TABLE users DROP COLUMN voicemail`,
		`DELETE FROM schema_migrations WHERE version >= 8`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertEmpty(t, s)
	with := demoWithPrompts(t)
	apply(t, s, with, nil)
	doc, err := with.Encode()
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, s, doc)
}

// A Raft snapshot made by a version 7 node restores on a version 8 one: it
// is migrated and serves the same snapshot.
func TestRestoreVersion7Backup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v7.db")
	raw := v7Database(t, path)
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t)
	apply(t, s, demoWithPrompts(t), nil)
	if err := s.Restore(bytes.NewReader(backup)); err != nil {
		t.Fatalf("Restore of a version 7 backup: %v", err)
	}
	checkStored(t, s, raw)
	if strings.Contains(string(raw), "prompts") {
		t.Fatal("the demo has prompts; this test wants a snapshot without")
	}
}
