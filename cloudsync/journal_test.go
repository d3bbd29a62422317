package cloudsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// memJournal is an outage journal in memory, in id order (a cursor is the
// last id read).
type memJournal struct {
	mu       sync.Mutex
	ids      []string // sorted
	records  map[string]json.RawMessage
	uploaded map[string]bool
	marks    int
	failMark error
	// Hooks, called before the read or the mark, without the lock held.
	onPending func(after string)
	onMark    func(ids []string)
}

func newMemJournal() *memJournal {
	return &memJournal{records: map[string]json.RawMessage{}, uploaded: map[string]bool{}}
}

// add appends n records, rec-0000, rec-0001 and on.
func (j *memJournal) add(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for range n {
		j.insert(fmt.Sprintf("rec-%04d", len(j.ids)))
	}
}

// insert adds a record in its place in id order. j.mu is held.
func (j *memJournal) insert(id string) {
	i, found := slices.BinarySearch(j.ids, id)
	if !found {
		j.ids = slices.Insert(j.ids, i, id)
	}
	j.records[id] = json.RawMessage(fmt.Sprintf(`{"id":%q,"call_id":"c-%s","disposition":"answered"}`, id, id))
}

// addLate adds a record that sorts where id does, behind the cursor of a
// read that has gone past it.
func (j *memJournal) addLate(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.insert(id)
}

func (j *memJournal) Pending(ctx context.Context, after string, limit int) (PendingBatch, error) {
	if j.onPending != nil {
		j.onPending(after)
	}
	if err := ctx.Err(); err != nil {
		return PendingBatch{}, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	b := PendingBatch{Next: after}
	for _, id := range j.ids {
		if len(b.IDs) == limit {
			break
		}
		if id > after && !j.uploaded[id] {
			b.Records = append(b.Records, j.records[id])
			b.IDs = append(b.IDs, id)
			b.Next = id
		}
	}
	return b, nil
}

func (j *memJournal) MarkUploaded(_ context.Context, ids []string) error {
	if j.onMark != nil {
		j.onMark(ids)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failMark != nil {
		err := j.failMark
		j.failMark = nil
		return err
	}
	j.marks++
	for _, id := range ids {
		j.uploaded[id] = true
	}
	return nil
}

func (j *memJournal) pendingCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, id := range j.ids {
		if !j.uploaded[id] {
			n++
		}
	}
	return n
}

func newTestUploader(t *testing.T, fc *fakeCloud, j Journal, batch int) (*Uploader, *timers) {
	t.Helper()
	tm := &timers{}
	u, err := NewUploader(UploaderConfig{
		Client: fc.client(t), Journal: j, Batch: batch, Log: testLogger(t),
		Backoff: NewBackoff(constRand(0.5)), After: tm.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u, tm
}

func journalKeys(fc *fakeCloud) []string {
	var keys []string
	for _, r := range fc.requestList(protocol.PathJournal) {
		keys = append(keys, r.Header.Get(protocol.HeaderIdempotencyKey))
	}
	return keys
}

func TestJournalKey(t *testing.T) {
	a := JournalKey([]string{"r1", "r2", "r3"})
	if b := JournalKey([]string{"r3", "r1", "r2"}); a != b {
		t.Errorf("the key depends on the order: %s, %s", a, b)
	}
	if b := JournalKey([]string{"r1", "r2"}); a == b {
		t.Errorf("two batches, one key")
	}
	if b := JournalKey([]string{"r1r2", "r3"}); a == b {
		t.Errorf("ids run together give the same key")
	}
	if len(a) != 64 {
		t.Errorf("key %q, want 64 hex digits", a)
	}
	ids := []string{"b", "a"}
	JournalKey(ids)
	if ids[0] != "b" {
		t.Errorf("JournalKey sorted its argument")
	}
}

func TestUploadPendingInBatches(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(5)
	u, _ := newTestUploader(t, fc, j, 2)
	n, err := u.UploadPending(context.Background())
	if err != nil || n != 5 {
		t.Fatalf("uploaded %d, %v; want 5", n, err)
	}
	keys := journalKeys(fc)
	want := []string{
		JournalKey([]string{"rec-0000", "rec-0001"}),
		JournalKey([]string{"rec-0002", "rec-0003"}),
		JournalKey([]string{"rec-0004"}),
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if got := fc.journalIDs(); len(got) != 5 {
		t.Errorf("the cloud holds %d records, want 5", len(got))
	}
	if j.pendingCount() != 0 {
		t.Errorf("%d still pending", j.pendingCount())
	}
	st := u.Status()
	if st.Uploaded != 5 || !st.Drained || st.LastError != "" || st.LastUploadAt.IsZero() {
		t.Errorf("status %+v", st)
	}
	// Nothing pending: no request.
	if n, err := u.UploadPending(context.Background()); n != 0 || err != nil || len(journalKeys(fc)) != 3 {
		t.Errorf("an empty journal: %d, %v, %d requests", n, err, len(journalKeys(fc)))
	}
}

func TestUploadMarksOnlyAfterTheCloudTookIt(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(3)
	u, _ := newTestUploader(t, fc, j, 0)
	fc.failNext(protocol.PathJournal, 500)
	if _, err := u.UploadPending(context.Background()); err == nil || !Retryable(err) {
		t.Fatalf("upload against a failing cloud: %v, want a retryable error", err)
	}
	if j.pendingCount() != 3 {
		t.Fatalf("records marked after a 500")
	}
	st := u.Status()
	if st.Drained || !strings.Contains(st.LastError, "injected failure 500") {
		t.Errorf("status %+v", st)
	}

	// The cloud stores the batch but its answer is lost: still not marked;
	// the retry reuses the key and gets the first answer.
	fc.loseNextAnswer(protocol.PathJournal, 1)
	if _, err := u.UploadPending(context.Background()); err == nil {
		t.Fatal("a lost answer counted as success")
	}
	if j.pendingCount() != 3 {
		t.Fatalf("records marked without an answer")
	}
	if n, err := u.UploadPending(context.Background()); err != nil || n != 3 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	keys := journalKeys(fc)
	if len(keys) != 3 || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("keys across retries %q, want one key", keys)
	}
	if got := len(fc.journalIDs()); got != 3 {
		t.Errorf("the cloud holds %d records, want 3", got)
	}
	if j.pendingCount() != 0 {
		t.Errorf("%d still pending", j.pendingCount())
	}
}

func TestUploadRetriesWhenMarkingFails(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(2)
	j.failMark = errors.New("disk full")
	u, _ := newTestUploader(t, fc, j, 0)
	if _, err := u.UploadPending(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("marking failure: %v", err)
	}
	if n, err := u.UploadPending(context.Background()); err != nil || n != 2 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	keys := journalKeys(fc)
	if len(keys) != 2 || keys[0] != keys[1] {
		t.Errorf("keys %q, want the same key twice", keys)
	}
}

func TestUploadRefusedBatchIsNotRetryable(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(1)
	j.records["rec-0000"] = json.RawMessage(`{"call_id":"no id"}`)
	u, _ := newTestUploader(t, fc, j, 0)
	_, err := u.UploadPending(context.Background())
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || Retryable(err) || len(he.Problems) != 1 {
		t.Fatalf("malformed record: %v", err)
	}
	if j.pendingCount() != 1 {
		t.Errorf("a refused record was marked")
	}
}

// stuckJournal keeps returning the same batch.
type stuckJournal struct{ *memJournal }

func (s *stuckJournal) MarkUploaded(context.Context, []string) error { return nil }

func TestUploadStopsOnAJournalThatDoesNotMark(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := &stuckJournal{newMemJournal()}
	j.add(1)
	u, _ := newTestUploader(t, fc, j, 0)
	if _, err := u.UploadPending(context.Background()); err == nil || !strings.Contains(err.Error(), "still pending") {
		t.Errorf("a journal that never marks: %v", err)
	}
	if n := len(journalKeys(fc)); n != 1 {
		t.Errorf("%d uploads, want 1", n)
	}
}

func TestUploaderRunKickAndBackoff(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(2)
	fc.failNext(protocol.PathJournal, 503)
	u, tm := newTestUploader(t, fc, j, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	eventually(t, "the failed upload", func() bool { return len(tm.list()) == 1 })
	if got := tm.list()[0]; got != time.Second {
		t.Errorf("retry in %v, want 1s", got)
	}
	tm.fire()
	eventually(t, "the upload", func() bool { return j.pendingCount() == 0 })
	eventually(t, "the wait for new records", func() bool { return len(tm.list()) == 2 })
	if got := tm.list()[1]; got != 30*time.Second {
		t.Errorf("next look in %v, want the interval (30s)", got)
	}
	j.add(1)
	u.Kick()
	eventually(t, "the kicked upload", func() bool { return j.pendingCount() == 0 })
	if got := len(fc.journalIDs()); got != 3 {
		t.Errorf("the cloud holds %d records, want 3", got)
	}
}

// journalGate stands between the uploader and the fake cloud: it hands
// each journal upload (numbered from 1) to hold, which may wait for
// something, or answer the request itself and return false (the cloud
// then never sees it); the rest goes to the cloud.
type journalGate struct {
	mu      sync.Mutex
	uploads int
	hold    func(n int, w http.ResponseWriter, r *http.Request) bool
}

func startJournalGate(t *testing.T, fc *fakeCloud, hold func(n int, w http.ResponseWriter, r *http.Request) bool) *Client {
	t.Helper()
	g := &journalGate{hold: hold}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == protocol.PathJournal {
			g.mu.Lock()
			g.uploads++
			n := g.uploads
			g.mu.Unlock()
			if !g.hold(n, w, r) {
				return
			}
		}
		fc.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	creds := fc.creds()
	creds.URL = srv.URL
	c, err := NewClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor waits for ch to close; false when it does not within 10 s.
func waitFor(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// The batches are pipelined: the next batch is read while one uploads,
// and the last one is marked while the next uploads. The cloud holds each
// upload until the overlap it looks for has happened, so an uploader that
// did one thing at a time would wait for nothing.
func TestUploadPipelinesTheBatches(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(6)
	readAhead, marking := make(chan struct{}), make(chan struct{})
	var readOnce, markOnce sync.Once
	j.onPending = func(after string) {
		if after == "rec-0001" {
			readOnce.Do(func() { close(readAhead) })
		}
	}
	j.onMark = func(ids []string) {
		if ids[0] == "rec-0000" {
			markOnce.Do(func() { close(marking) })
		}
	}
	client := startJournalGate(t, fc, func(n int, _ http.ResponseWriter, _ *http.Request) bool {
		switch n {
		case 1:
			if !waitFor(readAhead) {
				t.Error("batch 1 uploaded, batch 2 not read meanwhile")
			}
		case 2:
			if !waitFor(marking) {
				t.Error("batch 2 uploaded, batch 1 not marked meanwhile")
			}
		}
		return true
	})
	u, err := NewUploader(UploaderConfig{Client: client, Journal: j, Batch: 2, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := u.UploadPending(context.Background()); err != nil || n != 6 {
		t.Fatalf("uploaded %d, %v; want 6", n, err)
	}
	want := []string{
		JournalKey([]string{"rec-0000", "rec-0001"}),
		JournalKey([]string{"rec-0002", "rec-0003"}),
		JournalKey([]string{"rec-0004", "rec-0005"}),
	}
	if keys := journalKeys(fc); !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q: oldest first, each once", keys, want)
	}
	if j.pendingCount() != 0 || j.marks != 3 {
		t.Errorf("%d pending, %d marks; want 0 and 3", j.pendingCount(), j.marks)
	}
	if st := u.Status(); st.Uploaded != 6 || !st.Drained {
		t.Errorf("status %+v", st)
	}
}

// A record that arrives during the upload with an older place than the
// cursor has reached is found by the pass from the start that ends the
// upload.
func TestUploadFindsALateOlderRecord(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(4)
	var once sync.Once
	j.onMark = func([]string) { once.Do(func() { j.addLate("rec-0000-late") }) }
	u, _ := newTestUploader(t, fc, j, 2)
	if n, err := u.UploadPending(context.Background()); err != nil || n != 5 {
		t.Fatalf("uploaded %d, %v; want 5", n, err)
	}
	if got := len(fc.journalIDs()); got != 5 || j.pendingCount() != 0 {
		t.Errorf("the cloud holds %d records, %d pending; want 5 and 0", got, j.pendingCount())
	}
	if keys := journalKeys(fc); len(keys) != 3 || keys[2] != JournalKey([]string{"rec-0000-late"}) {
		t.Errorf("keys %q, want the two batches then the late record's", keys)
	}
}

// A failed upload stops the pipeline: the batch before it, which the cloud
// took, is still marked; the failed one and the one read ahead are not
// (nor sent). The retry sends the failed batch under the same key.
func TestUploadFailureInThePipeline(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(6)
	failedKey := make(chan string, 1)
	client := startJournalGate(t, fc, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 2 {
			failedKey <- r.Header.Get(protocol.HeaderIdempotencyKey)
			writeError(w, http.StatusServiceUnavailable, "injected failure 503")
			return false
		}
		return true
	})
	u, err := NewUploader(UploaderConfig{Client: client, Journal: j, Batch: 2, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := u.UploadPending(context.Background())
	if err == nil || !Retryable(err) || n != 2 {
		t.Fatalf("upload with the second batch failing: %d, %v; want 2 and a retryable error", n, err)
	}
	if j.pendingCount() != 4 {
		t.Errorf("%d pending, want 4: the first batch marked, no other", j.pendingCount())
	}
	if st := u.Status(); st.Drained || !strings.Contains(st.LastError, "injected failure 503") || st.Uploaded != 2 {
		t.Errorf("status %+v", st)
	}
	if n, err := u.UploadPending(context.Background()); err != nil || n != 4 {
		t.Fatalf("retry: %d, %v; want 4", n, err)
	}
	second := JournalKey([]string{"rec-0002", "rec-0003"})
	if k := <-failedKey; k != second {
		t.Errorf("the failed upload's key %q, want the second batch's", k)
	}
	if keys := journalKeys(fc); len(keys) != 3 || keys[1] != second || keys[2] != JournalKey([]string{"rec-0004", "rec-0005"}) {
		t.Errorf("keys the cloud answered %q, want the second batch's again, then the third's", keys)
	}
	if got := len(fc.journalIDs()); got != 6 || j.pendingCount() != 0 {
		t.Errorf("the cloud holds %d records, %d pending; want 6 and 0", got, j.pendingCount())
	}
}

// A failed mark stops the pipeline too: the batch that uploaded meanwhile
// is not marked either, and the retry sends both again under their keys
// (the cloud answers them from its first answers, storing nothing twice).
func TestUploadMarkFailureInThePipeline(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	j := newMemJournal()
	j.add(6)
	j.failMark = errors.New("disk full")
	u, _ := newTestUploader(t, fc, j, 2)
	n, err := u.UploadPending(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") || n != 0 {
		t.Fatalf("upload with the first mark failing: %d, %v", n, err)
	}
	if j.pendingCount() != 6 {
		t.Errorf("%d pending, want 6", j.pendingCount())
	}
	sent := len(journalKeys(fc))
	if sent != 2 {
		t.Errorf("%d batches sent, want 2: the failed mark's and the one uploading meanwhile", sent)
	}
	if n, err := u.UploadPending(context.Background()); err != nil || n != 6 {
		t.Fatalf("retry: %d, %v; want 6", n, err)
	}
	keys := journalKeys(fc)
	if len(keys) != 5 || keys[2] != keys[0] || keys[3] != keys[1] {
		t.Errorf("keys %q, want the first two again, then the third", keys)
	}
	if got := len(fc.journalIDs()); got != 6 || j.pendingCount() != 0 {
		t.Errorf("the cloud holds %d records, %d pending; want 6 and 0", got, j.pendingCount())
	}
}
