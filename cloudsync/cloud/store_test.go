package cloud

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

var t0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

// doc is a minimal document at revision rev with the given users.
func doc(rev int64, users ...string) []byte {
	type user struct {
		ID string `json:"id"`
	}
	us := []user{}
	for _, u := range users {
		us = append(us, user{ID: u})
	}
	b, _ := json.Marshal(map[string]any{"revision": rev, "account": map[string]string{"id": "acme"}, "users": us})
	return b
}

// setDoc is an UpdateFunc giving doc(next, users...).
func setDoc(users ...string) UpdateFunc {
	return func(next int64, _ []byte) ([]byte, error) { return doc(next, users...), nil }
}

func TestStoreRevisions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cloud.db")
	st, err := Open(path, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rev, d := st.Current(); rev != 0 || d != nil {
		t.Fatalf("empty store: revision %d, doc %q", rev, d)
	}
	var cur []byte
	for i, users := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
		rev, err := st.Update(ctx, t0, func(next int64, c []byte) ([]byte, error) {
			if string(c) != string(cur) {
				t.Errorf("update %d saw %s, want %s", i, c, cur)
			}
			return doc(next, users...), nil
		})
		if err != nil || rev != int64(i+1) {
			t.Fatalf("update %d: revision %d, %v", i, rev, err)
		}
		_, cur = st.Current()
	}
	ch, err := st.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ch.Revisions {
		for _, op := range r.Ops {
			got = append(got, fmt.Sprintf("%d %s %s %s", r.Revision, op.Op, op.Kind, op.ID))
		}
	}
	want := []string{"1 set account ", "1 put users a", "2 put users b", "3 delete users a"}
	if ch.From != 0 || ch.To != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes from 0: from %d to %d ops %q, want 0..3 %q", ch.From, ch.To, got, want)
	}
	if ch, err := st.Changes(ctx, 3); err != nil || len(ch.Revisions) != 0 {
		t.Errorf("changes from current: %+v, %v; want none", ch, err)
	}
	if _, err := st.Changes(ctx, 4); !errors.Is(err, ErrAhead) {
		t.Errorf("changes from 4: %v, want ErrAhead", err)
	}

	// An error from the update changes nothing.
	boom := errors.New("boom")
	if _, err := st.Update(ctx, t0, func(int64, []byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failing update: %v", err)
	}
	// Reopened, the store has the same revision and document.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rev, d := st.Current(); rev != 3 || string(d) != string(cur) {
		t.Errorf("reopened: revision %d doc %s, want 3 %s", rev, d, cur)
	}
	if ch, err := st.Changes(ctx, 1); err != nil || len(ch.Revisions) != 2 {
		t.Errorf("reopened changes from 1: %+v, %v", ch, err)
	}
}

func TestStoreHistoryLimit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{History: 3})
	for i := range 6 {
		if _, err := st.Update(ctx, t0, setDoc(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Revisions 4, 5 and 6 are kept: since 3 works, since 2 is gone.
	if oldest, err := st.OldestKept(ctx); err != nil || oldest != 4 {
		t.Errorf("oldest kept = %d, %v; want 4", oldest, err)
	}
	if ch, err := st.Changes(ctx, 3); err != nil || len(ch.Revisions) != 3 || ch.Revisions[0].Revision != 4 {
		t.Errorf("changes from 3: %+v, %v", ch, err)
	}
	for _, since := range []int64{0, 2} {
		if _, err := st.Changes(ctx, since); !errors.Is(err, ErrGone) {
			t.Errorf("changes from %d: %v, want ErrGone", since, err)
		}
	}
}

func TestStoreDeltaBudget(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	st.deltaBudget = 0 // only the snapshot's own size bounds a delta
	var users []string
	for i := range 5 {
		users = append(users, fmt.Sprintf("user-with-a-long-id-%d", i))
		if _, err := st.Update(ctx, t0, setDoc(users...)); err != nil {
			t.Fatal(err)
		}
	}
	// From 0, the ops (the account, 5 puts, each wrapped in an op) weigh
	// more than the document itself: the appliance is sent to it.
	if _, err := st.Changes(ctx, 0); !errors.Is(err, ErrGone) {
		t.Errorf("changes from 0 heavier than the snapshot: %v, want ErrGone", err)
	}
	if ch, err := st.Changes(ctx, 4); err != nil || len(ch.Revisions) != 1 {
		t.Errorf("changes from 4: %+v, %v", ch, err)
	}
}

func TestStoreSeed(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	if _, err := st.Seed(ctx, t0, 0, doc(0)); err == nil {
		t.Error("seed at revision 0 accepted")
	}
	if ok, err := st.Seed(ctx, t0, 42, doc(42, "a")); !ok || err != nil {
		t.Fatalf("seed: %v, %v", ok, err)
	}
	if ok, err := st.Seed(ctx, t0, 50, doc(50, "b")); ok || err != nil {
		t.Errorf("second seed: %v, %v; want ignored", ok, err)
	}
	if rev, _ := st.Current(); rev != 42 {
		t.Errorf("revision %d, want the seed's 42", rev)
	}
	// Before the seed there is no history: the appliance fetches the snapshot.
	if _, err := st.Changes(ctx, 0); !errors.Is(err, ErrGone) {
		t.Errorf("changes from 0: %v, want ErrGone", err)
	}
	if rev, err := st.Update(ctx, t0, setDoc("a", "b")); err != nil || rev != 43 {
		t.Errorf("update after the seed: %d, %v", rev, err)
	}
}

func TestStoreWatchWakes(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	rev, changed := st.Watch()
	if rev != 0 {
		t.Fatalf("revision %d", rev)
	}
	select {
	case <-changed:
		t.Fatal("woken before any revision")
	default:
	}
	if _, err := st.Update(ctx, t0, setDoc("a")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the revision")
	}
}

func TestStorePairingAndAuth(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	if err := st.AddPairingCode(ctx, "branch-1", "abcde-fghjk", t0, t0.Add(PairingCodeTTL)); err != nil {
		t.Fatal(err)
	}
	// Codes are compared normalised: case, dashes and spaces do not matter.
	name, err := st.Pair(ctx, "ABCDE FGHJK", "s3cret", "00ff", t0.Add(time.Hour))
	if err != nil || name != "branch-1" {
		t.Fatalf("pair: %q, %v", name, err)
	}
	if _, err := st.Pair(ctx, "abcdefghjk", "other", "00ff", t0.Add(time.Hour)); !errors.Is(err, ErrPairingRefused) {
		t.Errorf("second use: %v, want ErrPairingRefused", err)
	}
	if err := st.Authenticate(ctx, "branch-1", "s3cret"); err != nil {
		t.Errorf("authenticate: %v", err)
	}
	for _, c := range [][2]string{{"branch-1", "wrong"}, {"branch-2", "s3cret"}, {"", ""}} {
		if err := st.Authenticate(ctx, c[0], c[1]); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("authenticate %q: %v, want ErrUnauthorized", c, err)
		}
	}
	// The secret is stored hashed.
	var stored string
	if err := st.rdb.QueryRowContext(ctx, `SELECT secret_hash FROM appliances`).Scan(&stored); err != nil || stored != hashSecret("s3cret") {
		t.Errorf("stored secret %q, %v; want its SHA-256", stored, err)
	}
	var codes int
	if err := st.rdb.QueryRowContext(ctx, `SELECT count(*) FROM pairing_codes WHERE code_hash LIKE '%ABCDE%'`).Scan(&codes); err != nil || codes != 0 {
		t.Errorf("a pairing code is stored in clear")
	}
	if err := st.Hello(ctx, "nobody", protocol.Hello{}, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("hello of an unknown appliance: %v", err)
	}
}

func TestStoreJournal(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	rec := func(ids ...string) []JournalRecord {
		var out []JournalRecord
		for _, id := range ids {
			out = append(out, JournalRecord{ID: id, JSON: json.RawMessage(`{"id":"` + id + `"}`)})
		}
		return out
	}
	r, replayed, err := st.PutJournal(ctx, "b1", "k1", rec("a", "b", "a"), t0)
	if err != nil || replayed || r != (protocol.JournalReceipt{Accepted: 2, Duplicates: 1}) {
		t.Fatalf("first batch: %+v %v %v", r, replayed, err)
	}
	r, replayed, err = st.PutJournal(ctx, "b1", "k1", rec("x", "y"), t0)
	if err != nil || !replayed || r != (protocol.JournalReceipt{Accepted: 2, Duplicates: 1}) {
		t.Fatalf("same key: %+v %v %v; want the first answer", r, replayed, err)
	}
	r, _, err = st.PutJournal(ctx, "b1", "k2", rec("b", "c"), t0)
	if err != nil || r != (protocol.JournalReceipt{Accepted: 1, Duplicates: 1}) {
		t.Fatalf("overlapping batch: %+v %v", r, err)
	}
	// Another appliance's records and keys are its own.
	if r, replayed, err := st.PutJournal(ctx, "b2", "k1", rec("a"), t0); err != nil || replayed || r.Accepted != 1 {
		t.Fatalf("other appliance: %+v %v %v", r, replayed, err)
	}
	got, err := st.Journal(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%s", got) != `[{"id":"a"} {"id":"b"} {"id":"c"}]` {
		t.Errorf("journal of b1 = %s", got)
	}
}

func TestMigrations(t *testing.T) {
	if SchemaVersion() < 1 {
		t.Fatal("no migrations")
	}

	// A database from a newer binary is refused.
	path := filepath.Join(t.TempDir(), "cloud.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', '')`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("open a newer database: %v, want ErrSchemaTooNew", err)
	}
}

// Readers are not held up while an update builds the next document.
func TestStoreReadsDuringUpdate(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	if _, err := st.Update(ctx, t0, setDoc("a")); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := st.Update(ctx, t0, func(next int64, _ []byte) ([]byte, error) {
			close(inside)
			<-release
			return doc(next, "b"), nil
		})
		done <- err
	}()
	<-inside
	read := make(chan int64, 1)
	go func() {
		rev, _ := st.Current()
		r2, _ := st.Watch()
		read <- rev + r2
	}()
	select {
	case got := <-read:
		if got != 2 {
			t.Errorf("revision read during the update: %d, want 1 twice", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("Current blocked behind an update")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
