package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// journalRecords are records with these ids.
func journalRecords(ids ...string) []JournalRecord {
	out := make([]JournalRecord, len(ids))
	for i, id := range ids {
		out[i] = JournalRecord{ID: id, JSON: json.RawMessage(`{"id":"` + id + `"}`)}
	}
	return out
}

// numberedIDs is n ids, r-0000 and on.
func numberedIDs(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r-%04d", from+i)
	}
	return ids
}

// idsOf is the ids of records as the store lists them.
func idsOf(t *testing.T, recs []json.RawMessage) []string {
	t.Helper()
	ids := make([]string, len(recs))
	for i, r := range recs {
		var v struct{ ID string }
		decode(t, r, &v)
		ids[i] = v.ID
	}
	return ids
}

// A large batch is stored whole and once, in order; the receipt counts
// the records already stored, by an earlier batch or earlier in this one.
func TestPutJournalLargeBatch(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{Log: slog.New(slog.DiscardHandler)})
	first := numberedIDs(0, 1003)
	if r, _, err := st.PutJournal(ctx, "b1", "k1", journalRecords(first...), t0); err != nil ||
		r != (protocol.JournalReceipt{Accepted: len(first)}) {
		t.Fatalf("first batch: %+v, %v", r, err)
	}
	// The second batch: the last 5 records of the first, 1,000 new ones,
	// then two of those again.
	second := append(numberedIDs(len(first)-5, 5), numberedIDs(10_000, 1000)...)
	second = append(second, "r-10001", "r-10995")
	r, replayed, err := st.PutJournal(ctx, "b1", "k2", journalRecords(second...), t0)
	if err != nil || replayed || r != (protocol.JournalReceipt{Accepted: 1000, Duplicates: 7}) {
		t.Fatalf("second batch: %+v, %v, %v; want 1000 accepted, 7 duplicates", r, replayed, err)
	}
	got, err := st.Journal(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(first), numberedIDs(10_000, 1000)...)
	if ids := idsOf(t, got); !slices.Equal(ids, want) {
		t.Errorf("journal: %d records, want %d, each once in the order received", len(ids), len(want))
	}
	// The same key again: the first answer, nothing stored.
	if r2, replayed, err := st.PutJournal(ctx, "b1", "k2", journalRecords("new"), t0); err != nil || !replayed || r2 != r {
		t.Errorf("replay: %+v, %v, %v; want %+v replayed", r2, replayed, err, r)
	}
}

// The journal is read a page at a time; next is where the next page
// starts, and none follows the last page.
func TestJournalPages(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	if _, _, err := st.PutJournal(ctx, "b1", "k1", journalRecords(numberedIDs(0, 5)...), t0); err != nil {
		t.Fatal(err)
	}
	// Another appliance's records in between are not its pages'.
	if _, _, err := st.PutJournal(ctx, "b2", "k1", journalRecords("other"), t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutJournal(ctx, "b1", "k2", journalRecords(numberedIDs(5, 2)...), t0); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after int64
	pages := 0
	for {
		recs, next, err := st.JournalPage(ctx, "b1", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, idsOf(t, recs)...)
		if next == 0 {
			break
		}
		if pages > 3 {
			t.Fatalf("page %d: %v so far", pages, got)
		}
		after = next
	}
	if want := numberedIDs(0, 7); pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}
	// A page that ends exactly at the end has no next.
	if recs, next, err := st.JournalPage(ctx, "b1", 0, 7); err != nil || len(recs) != 7 || next != 0 {
		t.Errorf("the whole journal in one page: %d records, next %d, %v", len(recs), next, err)
	}
	if recs, next, err := st.JournalPage(ctx, "nobody", 0, 7); err != nil || recs == nil || len(recs) != 0 || next != 0 {
		t.Errorf("no journal: %v, %d, %v; want an empty page", recs, next, err)
	}
	for _, limit := range []int{0, MaxJournalPage + 1} {
		if _, _, err := st.JournalPage(ctx, "b1", 0, limit); err == nil {
			t.Errorf("a page of %d: no error", limit)
		}
	}
}

func TestAdminJournalPaging(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	for i, ids := range [][]string{numberedIDs(0, 4), numberedIDs(4, 3)} {
		resp, body := h.sync(c, http.MethodPost, protocol.PathJournal, journalBatch(ids...),
			http.Header{protocol.HeaderIdempotencyKey: {fmt.Sprint("k", i)}})
		wantStatus(t, "upload", resp, body, http.StatusOK)
	}
	type page struct {
		Records []struct{ ID string } `json:"records"`
		Next    *string               `json:"next"`
	}
	get := func(query string) page {
		t.Helper()
		resp, body := h.admin(http.MethodGet, "/v1/admin/journal?appliance=b1"+query, nil)
		wantStatus(t, "journal"+query, resp, body, http.StatusOK)
		var p page
		decode(t, body, &p)
		return p
	}
	var got []string
	query := "&limit=3"
	for pages := 1; ; pages++ {
		p := get(query)
		for _, r := range p.Records {
			got = append(got, r.ID)
		}
		if p.Next == nil {
			break
		}
		if *p.Next == "" || pages == 3 {
			t.Fatalf("page %d: next %q", pages, *p.Next)
		}
		query = "&limit=3&after=" + *p.Next
	}
	if want := numberedIDs(0, 7); !slices.Equal(got, want) {
		t.Errorf("pages of 3: %v, want %v", got, want)
	}
	// The default page holds them all, with no next.
	if p := get(""); len(p.Records) != 7 || p.Next != nil {
		t.Errorf("default page: %d records, next %v", len(p.Records), p.Next)
	}
	for _, tc := range []struct{ field, value string }{
		{"limit", "0"},
		{"limit", "10001"},
		{"limit", "ten"},
		{"limit", ""},
		{"after", "-1"},
		{"after", "r-0003"},
	} {
		query := "&" + tc.field + "=" + tc.value
		resp, body := h.admin(http.MethodGet, "/v1/admin/journal?appliance=b1"+query, nil)
		wantStatus(t, query, resp, body, http.StatusBadRequest)
		if e := errorBody(t, body); len(e.Problems) != 1 || e.Problems[0].Path != tc.field ||
			!strings.Contains(e.Problems[0].Message, fmt.Sprintf("%q", tc.value)) {
			t.Errorf("%s: %s, want a problem at %q quoting %q", query, body, tc.field, tc.value)
		}
	}
}

// Idempotency keys are forgotten after the retention, by the clock of the
// caller: a batch sent again within it gets the first answer, later it is
// stored anew (its records the cloud has count as duplicates).
func TestPruneIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{KeyRetention: time.Hour})
	if _, _, err := st.PutJournal(ctx, "b1", "old", journalRecords("a"), t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutJournal(ctx, "b2", "new", journalRecords("b"), t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := st.PruneIdempotencyKeys(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("prune at the retention: %d, %v; want 0 (kept for the whole hour)", n, err)
	}
	if n, err := st.PruneIdempotencyKeys(ctx, t0.Add(time.Hour+time.Millisecond)); err != nil || n != 1 {
		t.Errorf("prune past the first key's retention: %d, %v; want 1", n, err)
	}
	r, replayed, err := st.PutJournal(ctx, "b1", "old", journalRecords("a"), t0.Add(2*time.Hour))
	if err != nil || replayed || r != (protocol.JournalReceipt{Duplicates: 1}) {
		t.Errorf("a pruned key again: %+v, %v, %v; want a new answer, the record a duplicate", r, replayed, err)
	}
	if _, replayed, err := st.PutJournal(ctx, "b2", "new", journalRecords("c"), t0.Add(time.Hour)); err != nil || !replayed {
		t.Errorf("a kept key again: replayed %v, %v", replayed, err)
	}
	if st := openStore(t, Options{}); st.keyRetention != DefaultKeyRetention {
		t.Errorf("default retention %v, want %v", st.keyRetention, DefaultKeyRetention)
	}
}

// The server prunes by its own clock.
func TestServerPrunesIdempotencyKeys(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	post := func() *http.Response {
		resp, body := h.sync(c, http.MethodPost, protocol.PathJournal, journalBatch("a"),
			http.Header{protocol.HeaderIdempotencyKey: {"k1"}})
		wantStatus(t, "upload", resp, body, http.StatusOK)
		return resp
	}
	post()
	h.clock.Advance(DefaultKeyRetention)
	h.srv.pruneKeys(context.Background())
	if resp := post(); resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the key was forgotten within the retention")
	}
	h.clock.Advance(time.Millisecond)
	h.srv.pruneKeys(context.Background())
	if resp := post(); resp.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the key was kept past the retention")
	}
	if got := h.journal("b1"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("journal %v, want [a] once", got)
	}
}

// BenchmarkPutJournal5000 stores batches of 5,000 records of some 360
// bytes with random (UUIDv4) ids, as an appliance uploads its journal,
// into a journal that grows to 100,000 records (then starts again).
func BenchmarkPutJournal5000(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var st *Store
	recs := make([]JournalRecord, protocol.MaxJournalBatch)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if i%20 == 0 {
			st = openStore(b, Options{Log: slog.New(slog.DiscardHandler)})
		}
		for k := range recs {
			id := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.UintN(1<<16), rng.UintN(1<<12),
				rng.UintN(1<<12), rng.Uint64()&(1<<48-1))
			recs[k] = JournalRecord{ID: id, JSON: json.RawMessage(`{"id":"` + id + `","call_id":"1234567890abcdef@user-1",` +
				`"caller":"user-1","caller_name":"Some User Name","callee":"user-77","dialled":"1077","destination":"user",` +
				`"start":"2026-11-23T09:00:00.123Z","answer":"2026-11-23T09:00:05.123Z","end":"2026-11-23T09:10:00.123Z",` +
				`"disposition":"answered","status":200,"node":"n1","site":"site-3"}`)}
		}
		b.StartTimer()
		if _, _, err := st.PutJournal(ctx, "b1", fmt.Sprint("k", i), recs, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// A serving server prunes the keys at once, then every hour, and stops
// with Shutdown.
func TestServePrunesIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Options{})
	clock := newClock()
	if _, _, err := st.PutJournal(ctx, "b1", "k1", journalRecords("a"), clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultKeyRetention + time.Minute)
	srv := New(Config{Store: st, AdminToken: testToken, Log: testLog(t), Now: clock.Now})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	keys := func() int {
		var n int
		if err := st.rdb.QueryRowContext(ctx, `SELECT count(*) FROM idempotency_keys`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); keys() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the key past the retention is still there 10 s after Serve")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
