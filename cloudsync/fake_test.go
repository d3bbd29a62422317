package cloudsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// demoPath is the contract's reference snapshot (shared/ is part of the
// repository's tree).
const demoPath = "../../shared/contract/demo-snapshot.json"

func demoDoc(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatalf("read the reference snapshot: %v", err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeCloud is a small cloud side of the sync protocol, enough for the
// client's tests: pairing codes, one appliance, revisions kept as ops with
// the snapshot at each, a long poll, acks and an idempotent journal. It
// records every request, and fails on demand.
type fakeCloud struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	appliance string
	secret    string
	pushKey   string
	codes     map[string]bool // code -> used
	pairs     int
	rev       int64
	docs      map[int64][]byte // the snapshot at each revision
	revs      map[int64]protocol.Revision
	oldest    int64         // changes since a revision before this answer 410
	changed   chan struct{} // closed when the revision moves
	acks      []protocol.Ack
	records   map[string]json.RawMessage // the journal, by record id
	receipts  map[string]protocol.JournalReceipt
	requests  []fakeRequest
	fail      map[string][]int // path -> statuses to answer next, in turn
	garbage   map[string]int   // path -> how many next answers are "{not json"
	dropAfter map[string]int   // path -> how many next answers are lost (500) after the work is done
	held      int              // changes polls being held now
}

type fakeRequest struct {
	Method, Path, Query string
	Header              http.Header
}

func newFakeCloud(t *testing.T, doc []byte) *fakeCloud {
	t.Helper()
	doc, err := protocol.SetRevision(doc, 1)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCloud{
		t:         t,
		appliance: "acme-hq",
		secret:    "initial-secret",
		pushKey:   "0123456789abcdef",
		codes:     map[string]bool{},
		rev:       1,
		docs:      map[int64][]byte{1: doc},
		revs:      map[int64]protocol.Revision{},
		changed:   make(chan struct{}),
		records:   map[string]json.RawMessage{},
		receipts:  map[string]protocol.JournalReceipt{},
		fail:      map[string][]int{},
		garbage:   map[string]int{},
		dropAfter: map[string]int{},
	}
	fc.srv = httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(fc.srv.Close)
	return fc
}

// creds are the appliance's current credentials.
func (fc *fakeCloud) creds() Credentials {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return Credentials{URL: fc.srv.URL, ApplianceID: fc.appliance, Secret: fc.secret, PushKey: fc.pushKey, PairedAt: time.Unix(0, 0).UTC()}
}

func (fc *fakeCloud) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(fc.creds(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (fc *fakeCloud) addCode(code string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.codes[code] = false
}

// publish makes the next revision from ops, and wakes held polls.
func (fc *fakeCloud) publish(ops ...protocol.Op) int64 {
	fc.t.Helper()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	doc, err := protocol.Apply(fc.docs[fc.rev], ops)
	if err != nil {
		fc.t.Fatalf("fake cloud: publish: %v", err)
	}
	fc.rev++
	if doc, err = protocol.SetRevision(doc, fc.rev); err != nil {
		fc.t.Fatal(err)
	}
	fc.docs[fc.rev] = doc
	fc.revs[fc.rev] = protocol.Revision{Revision: fc.rev, Ops: ops}
	close(fc.changed)
	fc.changed = make(chan struct{})
	return fc.rev
}

// forget drops the history before rev (changes since earlier answer 410).
func (fc *fakeCloud) forget(rev int64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.oldest = rev
}

// failNext answers the next requests to path with these statuses.
func (fc *fakeCloud) failNext(path string, statuses ...int) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.fail[path] = append(fc.fail[path], statuses...)
}

func (fc *fakeCloud) garbageNext(path string, n int) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.garbage[path] += n
}

func (fc *fakeCloud) loseNextAnswer(path string, n int) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.dropAfter[path] += n
}

func (fc *fakeCloud) doc(rev int64) []byte {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.docs[rev]
}

func (fc *fakeCloud) ackList() []protocol.Ack {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]protocol.Ack(nil), fc.acks...)
}

func (fc *fakeCloud) requestList(path string) []fakeRequest {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []fakeRequest
	for _, r := range fc.requests {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (fc *fakeCloud) heldPolls() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.held
}

func (fc *fakeCloud) journalIDs() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var ids []string
	for id := range fc.records {
		ids = append(ids, id)
	}
	return ids
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, protocol.Error{Error: msg})
}

func (fc *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	fc.requests = append(fc.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
	if st := fc.fail[r.URL.Path]; len(st) > 0 {
		fc.fail[r.URL.Path] = st[1:]
		fc.mu.Unlock()
		writeError(w, st[0], fmt.Sprintf("injected failure %d", st[0]))
		return
	}
	if fc.garbage[r.URL.Path] > 0 {
		fc.garbage[r.URL.Path]--
		fc.mu.Unlock()
		w.Header().Set(protocol.HeaderRevision, "1")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"from": 1, "to": 2, "revisions": [{"revision": 2, "ops": [{"op": "put"`))
		return
	}
	authorized := r.Header.Get(protocol.HeaderAppliance) == fc.appliance && r.Header.Get("Authorization") == "Bearer "+fc.secret
	fc.mu.Unlock()

	if r.URL.Path == protocol.PathPair {
		fc.pair(w, r)
		return
	}
	if !authorized {
		writeError(w, http.StatusUnauthorized, "unknown appliance or wrong secret")
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "POST " + protocol.PathHello:
		fc.mu.Lock()
		rev := fc.rev
		fc.mu.Unlock()
		writeJSON(w, http.StatusOK, protocol.HelloResponse{Revision: rev, Time: time.Unix(1795395372, 0).UTC()})
	case "GET " + protocol.PathSnapshot:
		fc.snapshot(w, r)
	case "GET " + protocol.PathChanges:
		fc.changes(w, r)
	case "POST " + protocol.PathAck:
		var a protocol.Ack
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			writeError(w, http.StatusBadRequest, "ack: "+err.Error())
			return
		}
		fc.mu.Lock()
		fc.acks = append(fc.acks, a)
		fc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "POST " + protocol.PathJournal:
		fc.journal(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such endpoint")
	}
}

func (fc *fakeCloud) pair(w http.ResponseWriter, r *http.Request) {
	var req protocol.PairRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "pair: "+err.Error())
		return
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	used, ok := fc.codes[req.Code]
	if !ok || used {
		writeError(w, http.StatusForbidden, "pairing code unknown, used or expired")
		return
	}
	fc.codes[req.Code] = true
	fc.pairs++
	fc.secret = fmt.Sprintf("secret-%d", fc.pairs)
	writeJSON(w, http.StatusOK, protocol.PairResponse{ApplianceID: fc.appliance, Secret: fc.secret, PushKey: fc.pushKey, Revision: fc.rev})
}

func (fc *fakeCloud) snapshot(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	rev, doc := fc.rev, fc.docs[fc.rev]
	fc.mu.Unlock()
	etag := fmt.Sprintf(`"r%d"`, rev)
	w.Header().Set("ETag", etag)
	w.Header().Set(protocol.HeaderRevision, strconv.FormatInt(rev, 10))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

func (fc *fakeCloud) changes(w http.ResponseWriter, r *http.Request) {
	since, err1 := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	wait, err2 := strconv.Atoi(r.URL.Query().Get("wait"))
	if err1 != nil || err2 != nil || wait < 0 || wait > 60 {
		writeError(w, http.StatusBadRequest, "since and wait (0-60) are required")
		return
	}
	fc.mu.Lock()
	if since == fc.rev && wait > 0 {
		changed := fc.changed
		fc.held++
		fc.mu.Unlock()
		select {
		case <-changed:
		case <-r.Context().Done():
		case <-time.After(time.Duration(wait) * time.Second):
		}
		fc.mu.Lock()
		fc.held--
	}
	defer fc.mu.Unlock()
	w.Header().Set(protocol.HeaderRevision, strconv.FormatInt(fc.rev, 10))
	switch {
	case since > fc.rev:
		writeError(w, http.StatusConflict, "since is ahead of the cloud")
	case since < fc.oldest:
		writeJSON(w, http.StatusGone, protocol.Error{Error: "history before this revision is gone; fetch the snapshot", Current: fc.rev})
	case since == fc.rev:
		w.WriteHeader(http.StatusNoContent)
	default:
		ch := protocol.Changes{From: since, To: fc.rev}
		for rev := since + 1; rev <= fc.rev; rev++ {
			ch.Revisions = append(ch.Revisions, fc.revs[rev])
		}
		writeJSON(w, http.StatusOK, ch)
	}
}

func (fc *fakeCloud) journal(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(protocol.HeaderIdempotencyKey)
	if key == "" {
		writeError(w, http.StatusBadRequest, "Idempotency-Key is required")
		return
	}
	var batch protocol.JournalBatch
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		writeError(w, http.StatusBadRequest, "journal: "+err.Error())
		return
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	receipt, seen := fc.receipts[key]
	if !seen {
		var problems []protocol.Problem
		ids := make([]string, len(batch.Records))
		for i, rec := range batch.Records {
			var k struct{ ID string }
			if json.Unmarshal(rec, &k) != nil || k.ID == "" {
				problems = append(problems, protocol.Problem{Path: fmt.Sprintf("records[%d].id", i), Message: "required"})
			}
			ids[i] = k.ID
		}
		if len(problems) > 0 {
			writeJSON(w, http.StatusBadRequest, protocol.Error{Error: "batch refused", Problems: problems})
			return
		}
		for i, id := range ids {
			if _, dup := fc.records[id]; dup {
				receipt.Duplicates++
				continue
			}
			fc.records[id] = batch.Records[i]
			receipt.Accepted++
		}
		fc.receipts[key] = receipt
	}
	if fc.dropAfter[r.URL.Path] > 0 {
		fc.dropAfter[r.URL.Path]--
		writeError(w, http.StatusBadGateway, "the answer was lost")
		return
	}
	writeJSON(w, http.StatusOK, receipt)
}

// memApplier is the cluster as the Syncer sees it: one snapshot in
// memory, validated like the node validates (account.Validate), changes
// applied only at their base.
type memApplier struct {
	mu       sync.Mutex
	rev      int64
	snap     *account.Snapshot
	applies  int     // entries applied (whole or changes)
	changes  int     // of which changes
	failNext []error // errors Apply returns next, in turn, before validating
}

func (a *memApplier) CurrentRevision(context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rev, nil
}

func (a *memApplier) CurrentSnapshot(context.Context) (*account.Snapshot, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snap, nil
}

func (a *memApplier) Apply(_ context.Context, snap *account.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.take(snap)
}

func (a *memApplier) ApplyChanges(_ context.Context, base int64, ops []protocol.Op, next *account.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if base != a.rev {
		return ErrStale
	}
	// The ops must make next from what is served, as the FSM would.
	if a.snap != nil {
		made, err := protocol.ApplySnapshot(a.snap, ops)
		if err != nil {
			return fmt.Errorf("ops do not apply to what is served: %w", err)
		}
		made.Revision = next.Revision
		if !reflect.DeepEqual(made, next) {
			return errors.New("ops do not make the snapshot validated")
		}
	}
	if err := a.take(next); err != nil {
		return err
	}
	a.changes++
	return nil
}

func (a *memApplier) take(snap *account.Snapshot) error {
	if len(a.failNext) > 0 {
		err := a.failNext[0]
		a.failNext = a.failNext[1:]
		return err
	}
	if err := account.Validate(snap, a.rev); err != nil {
		return err
	}
	a.rev, a.snap = snap.Revision, snap
	a.applies++
	return nil
}

func (a *memApplier) changeCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changes
}

// state is the revision served, its document and the entries applied.
func (a *memApplier) state() (int64, []byte, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var doc []byte
	if a.snap != nil {
		doc, _ = a.snap.Encode()
	}
	return a.rev, doc, a.applies
}

// timers stands for time.After: each wait is recorded and fires only when
// the test says.
type timers struct {
	mu    sync.Mutex
	waits []time.Duration
	chans []chan time.Time
}

func (tm *timers) After(d time.Duration) <-chan time.Time {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	c := make(chan time.Time, 1)
	tm.waits = append(tm.waits, d)
	tm.chans = append(tm.chans, c)
	return c
}

func (tm *timers) list() []time.Duration {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]time.Duration(nil), tm.waits...)
}

// fire ends every wait so far.
func (tm *timers) fire() {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for _, c := range tm.chans {
		select {
		case c <- time.Time{}:
		default:
		}
	}
	tm.chans = nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sameJSON compares two snapshot documents as snapshots.
func sameJSON(t *testing.T, got, want []byte) bool {
	t.Helper()
	g, err := account.DecodeBytes(got)
	if err != nil {
		t.Fatalf("not a snapshot: %v", err)
	}
	w, err := account.DecodeBytes(want)
	if err != nil {
		t.Fatalf("not a snapshot: %v", err)
	}
	return reflect.DeepEqual(g, w)
}

// errNotLeader stands for the cluster's own failures (retried, not acked).
var errNotLeader = errors.New("not the leader")
