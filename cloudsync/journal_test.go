package cloudsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// memJournal is an outage journal in memory, oldest first.
type memJournal struct {
	mu       sync.Mutex
	ids      []string
	records  map[string]json.RawMessage
	uploaded map[string]bool
	marks    int
	failMark error
}

func newMemJournal() *memJournal {
	return &memJournal{records: map[string]json.RawMessage{}, uploaded: map[string]bool{}}
}

func (j *memJournal) add(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for range n {
		id := fmt.Sprintf("rec-%04d", len(j.ids))
		j.ids = append(j.ids, id)
		j.records[id] = json.RawMessage(fmt.Sprintf(`{"id":%q,"call_id":"c-%s","disposition":"answered"}`, id, id))
	}
}

func (j *memJournal) Pending(_ context.Context, limit int) ([]json.RawMessage, []string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var recs []json.RawMessage
	var ids []string
	for _, id := range j.ids {
		if len(ids) == limit {
			break
		}
		if !j.uploaded[id] {
			recs = append(recs, j.records[id])
			ids = append(ids, id)
		}
	}
	return recs, ids, nil
}

func (j *memJournal) MarkUploaded(_ context.Context, ids []string) error {
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
	return len(j.ids) - len(j.uploaded)
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
