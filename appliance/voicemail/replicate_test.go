package voicemail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// fakeClock is a Replicator's clock: the test sees every wait the worker
// asks for and ends it by advancing the time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), waits: make(chan fakeWait, 64)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := fakeWait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// wait is the next wait the worker asks for.
func (c *fakeClock) wait(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the worker asked for no wait within 10 s")
		return fakeWait{}
	}
}

// elapse moves the time past w and ends it.
func (c *fakeClock) elapse(w fakeWait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

// recorder is a fetcher that serves rec's audio, failing while fail says
// so, and counts what it was asked.
type recorder struct {
	rec  *Box
	mu   sync.Mutex
	fail func(hash string, try int) bool
	n    map[string]int
	done chan string // each successful fetch's hash
}

func newRecorder(rec *Box) *recorder {
	return &recorder{rec: rec, n: map[string]int{}, done: make(chan string, 64)}
}

func (r *recorder) VoicemailPeers(context.Context) ([]string, error) { return []string{"node-1"}, nil }

func (r *recorder) FetchVoicemail(_ context.Context, _, hash string) ([]byte, error) {
	r.mu.Lock()
	r.n[hash]++
	try := r.n[hash]
	r.mu.Unlock()
	if r.fail != nil && r.fail(hash, try) {
		return nil, errors.New("connection refused")
	}
	data, err := r.rec.AudioFile(hash)
	if err == nil {
		r.done <- hash
	}
	return data, err
}

func (r *recorder) count(hash string) int { r.mu.Lock(); defer r.mu.Unlock(); return r.n[hash] }

// replicated waits for the fetch of hash.
func (r *recorder) replicated(t *testing.T, hash string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case h := <-r.done:
			if h == hash {
				return
			}
		case <-deadline:
			t.Fatalf("the audio %s was not fetched within 10 s", hash[:8])
		}
	}
}

// deposit leaves a message of secs seconds on rec and applies it to the
// stores of others, as the FSM does.
func deposit(t *testing.T, rec *Box, secs int, others ...*store.Store) store.VoicemailMessage {
	t.Helper()
	m, err := rec.Deposit(Deposit{Mailbox: "u-carol", Caller: fmt.Sprint(1000 + secs), Samples: make([]int16, secs*8000)})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range others {
		if err := st.Write(func(tx *store.Tx) error { return tx.PutVoicemail([]store.VoicemailMessage{m}) }); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// waitFor polls cond until it holds (10 s at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runReplicator(t *testing.T, r *Replicator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A message learnt of several times (the FSM's hook, the sweep) and a
// message whose audio this node holds are fetched once and not at all;
// the copy is kept and the queue empties.
func TestReplicatorDedupes(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	b, st := openBox(t, "node-2")
	f := newRecorder(rec)
	b.SetFetcher(f)
	m := deposit(t, rec, 1, st)
	own, err := b.Deposit(Deposit{Mailbox: "u-carol", Caller: "1009", Samples: make([]int16, 12000)})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	r := NewReplicator(b, ReplicatorOptions{Now: clk.Now, After: clk.After})
	r.Add([]store.VoicemailMessage{m, m, own})
	r.Add([]store.VoicemailMessage{m})
	if got := r.Missing(); got != 1 {
		t.Fatalf("Missing = %d, want 1 (the other node's message, once)", got)
	}
	runReplicator(t, r)
	f.replicated(t, m.SHA256)
	waitFor(t, "the queue empty", func() bool { return r.Missing() == 0 })
	r.Add([]store.VoicemailMessage{m}) // learnt of again: held now
	if got := f.count(m.SHA256); got != 1 || r.Missing() != 0 {
		t.Errorf("fetched %d times, %d queued; want once, none", got, r.Missing())
	}
	if f.count(own.SHA256) != 0 {
		t.Error("this node's own audio was fetched")
	}
	if !b.haveAudio(m) {
		t.Error("the copy was not kept")
	}
}

// While the recording node cannot be reached, the worker retries with a
// wait from 1 s doubling to 60 s, and keeps the message queued; once the
// node answers, the copy is fetched.
func TestReplicatorBackoff(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	b, st := openBox(t, "node-2")
	f := newRecorder(rec)
	f.fail = func(_ string, try int) bool { return try <= 8 }
	b.SetFetcher(f)
	m := deposit(t, rec, 1, st)
	clk := newFakeClock()
	sweepAt := clk.Now().Add(DefaultResweep)
	r := NewReplicator(b, ReplicatorOptions{Now: clk.Now, After: clk.After})
	runReplicator(t, r) // the sweep at start queues m
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute}
	for i, d := range want {
		w := clk.wait(t)
		if w.d != d {
			t.Fatalf("wait %d after %d failures: %v, want %v", i+1, f.count(m.SHA256), w.d, d)
		}
		if got := r.Missing(); got != 1 {
			t.Fatalf("Missing = %d while the node is unreachable, want 1", got)
		}
		clk.elapse(w)
	}
	f.replicated(t, m.SHA256)
	if got := f.count(m.SHA256); got != 9 {
		t.Errorf("%d fetches, want 9 (8 failed)", got)
	}
	// Idle, it waits for the next sweep (5 min after the first).
	if w := clk.wait(t); w.d != sweepAt.Sub(clk.Now()) {
		t.Errorf("idle wait %v, want %v (the next sweep)", w.d, sweepAt.Sub(clk.Now()))
	}
	waitFor(t, "the queue empty", func() bool { return r.Missing() == 0 })
}

// A message the cloud took is not fetched: neither when its mark arrives
// with it (Add), nor when the mark reaches the store while it waits in the
// queue; the sweep skips uploaded messages.
func TestReplicatorSkipsUploaded(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	b, st := openBox(t, "node-2")
	f := newRecorder(rec)
	f.fail = func(string, int) bool { return true }
	b.SetFetcher(f)
	clk := newFakeClock()
	sweepAt := clk.Now().Add(DefaultResweep)
	r := NewReplicator(b, ReplicatorOptions{Now: clk.Now, After: clk.After})

	uploaded := deposit(t, rec, 1, st)
	marked, err := st.MarkVoicemail(uploaded.ID, store.VoicemailUploaded, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.Add([]store.VoicemailMessage{marked})
	waiting := deposit(t, rec, 2, st)
	runReplicator(t, r) // the sweep queues waiting only
	w := clk.wait(t)    // its first fetch failed
	if w.d != time.Second || r.Missing() != 1 {
		t.Fatalf("after the first failure: wait %v, %d queued", w.d, r.Missing())
	}
	if _, err := st.MarkVoicemail(waiting.ID, store.VoicemailUploaded, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.elapse(w)
	if w := clk.wait(t); w.d != sweepAt.Sub(clk.Now()) {
		t.Errorf("wait %v after the mark, want the idle %v (the next sweep)", w.d, sweepAt.Sub(clk.Now()))
	}
	if r.Missing() != 0 || f.count(waiting.SHA256) != 1 || f.count(uploaded.SHA256) != 0 {
		t.Errorf("%d queued, fetched %d and %d times; want none, once (before the mark), never",
			r.Missing(), f.count(waiting.SHA256), f.count(uploaded.SHA256))
	}
	// The mark arriving through the hook drops a queued message at once.
	third := deposit(t, rec, 3, st)
	r2 := NewReplicator(b, ReplicatorOptions{Now: clk.Now, After: clk.After})
	r2.Add([]store.VoicemailMessage{third})
	third.UploadedAt = clk.Now()
	r2.Add([]store.VoicemailMessage{third})
	if r2.Missing() != 0 {
		t.Errorf("Missing = %d after the upload mark, want 0", r2.Missing())
	}
}

// A node that was down while messages were left elsewhere catches up at
// start: the sweep queues every message not uploaded whose audio it
// lacks, and the worker fetches them all.
func TestReplicatorCatchesUpAtStart(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	b, st := openBox(t, "node-2")
	f := newRecorder(rec)
	b.SetFetcher(f)
	var ms []store.VoicemailMessage
	for secs := 1; secs <= 3; secs++ {
		ms = append(ms, deposit(t, rec, secs, st))
	}
	gone := deposit(t, rec, 4, st)
	if _, err := st.MarkVoicemail(gone.ID, store.VoicemailUploaded, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := NewReplicator(b, ReplicatorOptions{})
	runReplicator(t, r)
	waitFor(t, "every copy fetched", func() bool {
		for _, m := range ms {
			if !b.haveAudio(m) {
				return false
			}
		}
		return r.Missing() == 0
	})
	for _, m := range ms {
		if !b.haveAudio(m) || f.count(m.SHA256) != 1 {
			t.Errorf("message %s: held %v, fetched %d times", m.ID, b.haveAudio(m), f.count(m.SHA256))
		}
	}
	if f.count(gone.SHA256) != 0 || b.haveAudio(gone) {
		t.Error("the uploaded message's audio was fetched")
	}
}
