package cloudsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// tWriter sends log lines to the test's log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startSyncer runs a Syncer against fc until the test ends. Its waits
// (backoff, pacing) end only when the test fires them.
func startSyncer(t *testing.T, fc *fakeCloud, app Applier) (*Syncer, *timers) {
	t.Helper()
	tm := &timers{}
	s, err := NewSyncer(SyncerConfig{
		Client:  fc.client(t),
		Applier: app,
		NodeID:  "node-1",
		Log:     testLogger(t),
		Wait:    30 * time.Second,
		Backoff: NewBackoff(constRand(0.5)),
		After:   tm.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, tm
}

// userOp puts a user of the demo account's hq site.
func userOp(id, ext, name string) protocol.Op {
	data := fmt.Sprintf(`{"id":%q,"site":"hq","name":%q,"email":"%s@acme.example","extension":%q,"numbers":[],
		"sip":{"username":%q,"ha1_md5":"00000000000000000000000000000000","ha1_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}`,
		id, name, id, ext, id)
	return protocol.Op{Op: protocol.OpPut, Kind: "users", ID: id, Data: json.RawMessage(data)}
}

// appliedAt is an applier serving the cloud's document at rev (or, with
// doc, that document at rev).
func appliedAt(t *testing.T, rev int64, doc []byte) *memApplier {
	t.Helper()
	snap, err := account.DecodeBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	snap.Revision = rev
	return &memApplier{rev: rev, snap: snap}
}

func revisionIs(app *memApplier, rev int64) func() bool {
	return func() bool { r, _, _ := app.state(); return r == rev }
}

func acksAre(t *testing.T, fc *fakeCloud, want ...string) {
	t.Helper()
	var got []string
	for _, a := range fc.ackList() {
		got = append(got, fmt.Sprintf("%d %s", a.Revision, a.Status))
		if a.NodeID != "node-1" {
			t.Errorf("ack %d without the node id: %+v", a.Revision, a)
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("acks %q, want %q", got, want)
	}
}

func pollsSince(fc *fakeCloud) []string {
	var out []string
	for _, r := range fc.requestList(protocol.PathChanges) {
		since, _, _ := strings.Cut(r.Query, "&")
		out = append(out, strings.TrimPrefix(since, "since="))
	}
	return out
}

func TestSyncStartsFromTheCloudSnapshot(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	app := &memApplier{}
	s, _ := startSyncer(t, fc, app)
	eventually(t, "revision 1 applied", revisionIs(app, 1))
	_, doc, _ := app.state()
	if !sameJSON(t, doc, fc.doc(1)) {
		t.Errorf("applied document differs from the cloud's")
	}
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "1 applied")
	eventually(t, "the next poll", func() bool { return fc.heldPolls() == 1 })
	st := s.Status()
	if st.Revision != 1 || st.CloudRevision != 1 || !st.CaughtUp || st.LastError != "" || st.LastSyncAt.IsZero() {
		t.Errorf("status %+v", st)
	}
}

func TestSyncAppliesChangesInOrder(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.publish(userOp("u-frank", "1004", "Frank Fisher"))
	fc.publish(protocol.Op{Op: protocol.OpSet, Kind: "embed", Data: json.RawMessage(`{"allowed_origins":[]}`)})
	app := appliedAt(t, 1, fc.doc(1))
	s, _ := startSyncer(t, fc, app)

	eventually(t, "revision 4 applied", revisionIs(app, 4))
	_, doc, applies := app.state()
	if !sameJSON(t, doc, fc.doc(4)) {
		t.Errorf("applied\n%s\nwant the cloud's\n%s", doc, fc.doc(4))
	}
	if applies != 1 {
		t.Errorf("%d applies, want 1 (three revisions, one entry)", applies)
	}
	if changes := app.changeCount(); changes != 1 {
		t.Errorf("%d entries went as changes, want 1: an edit must not cost the cluster the whole account", changes)
	}
	eventually(t, "the poll since 4", func() bool { return fc.heldPolls() == 1 })
	fc.publish(userOp("u-frank", "1004", "Frank F."))
	eventually(t, "revision 5 applied", revisionIs(app, 5))
	_, doc, _ = app.state()
	if !sameJSON(t, doc, fc.doc(5)) {
		t.Errorf("revision 5 differs from the cloud's")
	}
	eventually(t, "the acks", func() bool { return len(fc.ackList()) == 2 })
	acksAre(t, fc, "4 applied", "5 applied")
	eventually(t, "the poll since 5", func() bool { return fc.heldPolls() == 1 })
	if got := strings.Join(pollsSince(fc), ","); got != "1,4,5" {
		t.Errorf("polled since %s, want 1,4,5", got)
	}
	for _, r := range fc.requestList("") {
		if r.Header.Get(protocol.HeaderAppliance) != "acme-hq" || r.Header.Get("Authorization") != "Bearer initial-secret" {
			t.Errorf("%s %s without credentials", r.Method, r.Path)
		}
	}
	if st := s.Status(); st.Revision != 5 || !st.CaughtUp {
		t.Errorf("status %+v", st)
	}
}

func TestSyncFallsBackToTheSnapshotWhenTooFarBehind(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.publish(userOp("u-gina", "1005", "Gina"))
	fc.forget(3)
	app := appliedAt(t, 1, fc.doc(1))
	startSyncer(t, fc, app)
	eventually(t, "revision 3 applied", revisionIs(app, 3))
	_, doc, _ := app.state()
	if !sameJSON(t, doc, fc.doc(3)) {
		t.Errorf("applied document differs from the cloud's snapshot")
	}
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "3 applied")
	if n := len(fc.requestList(protocol.PathSnapshot)); n != 1 {
		t.Errorf("%d snapshot requests, want 1", n)
	}
}

func TestSyncAheadOfTheCloudKeepsItsRevision(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t)) // the cloud, restored, is at 1
	app := appliedAt(t, 5, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	st := s.Status()
	if !strings.Contains(st.LastError, "ahead of the cloud") || !strings.Contains(st.LastError, "revision 1, this appliance at 5") {
		t.Errorf("LastError %q", st.LastError)
	}
	if rev, _, applies := app.state(); rev != 5 || applies != 0 {
		t.Errorf("revision %d after %d applies, want 5 untouched", rev, applies)
	}
	if got := tm.list()[0]; got != time.Minute {
		t.Errorf("retry in %v, want the slowest pace (1m)", got)
	}
	acksAre(t, fc)
}

func TestSyncAheadAppliesANewerSnapshot(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.publish(userOp("u-gina", "1005", "Gina"))
	fc.failNext(protocol.PathChanges, 409) // the cloud moved past us between two requests
	app := appliedAt(t, 2, fc.doc(2))
	startSyncer(t, fc, app)
	eventually(t, "revision 3 applied", revisionIs(app, 3))
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "3 applied")
}

func TestSyncGarbageAppliesNothing(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.garbageNext(protocol.PathChanges, 1)
	app := appliedAt(t, 1, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	if st := s.Status(); !strings.Contains(st.LastError, "malformed answer") || st.CaughtUp {
		t.Errorf("status %+v", st)
	}
	if _, _, applies := app.state(); applies != 0 {
		t.Fatalf("%d applies from a garbage answer", applies)
	}
	acksAre(t, fc)
	if got := tm.list()[0]; got != time.Second {
		t.Errorf("first retry in %v, want 1s", got)
	}
	tm.fire()
	eventually(t, "revision 2 applied", revisionIs(app, 2))
	eventually(t, "a clear error", func() bool { return s.Status().LastError == "" })
}

func TestSyncBacksOffOnServerErrors(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.failNext(protocol.PathChanges, 500, 503, 500)
	app := appliedAt(t, 1, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		eventually(t, fmt.Sprintf("failure %d", i+1), func() bool { return len(tm.list()) == i+1 })
		if got := tm.list()[i]; got != want {
			t.Errorf("retry %d in %v, want %v", i+1, got, want)
		}
		if st := s.Status(); !strings.Contains(st.LastError, "injected failure 50") || !strings.Contains(st.LastError, "poll changes since 1") {
			t.Errorf("LastError %q", st.LastError)
		}
		if _, _, applies := app.state(); applies != 0 {
			t.Fatalf("applied during failures")
		}
		tm.fire()
	}
	eventually(t, "revision 2 applied", revisionIs(app, 2))
	eventually(t, "the held poll", func() bool { return fc.heldPolls() == 1 })
	if st := s.Status(); st.LastError != "" {
		t.Errorf("LastError %q after a success", st.LastError)
	}
	// The backoff starts over after the success.
	fc.failNext(protocol.PathChanges, 500)
	fc.publish(userOp("u-gina", "1005", "Gina"))
	eventually(t, "revision 3 applied", revisionIs(app, 3))
	eventually(t, "the next failure", func() bool { return len(tm.list()) == 4 })
	if got := tm.list()[3]; got != time.Second {
		t.Errorf("retry after a success in %v, want 1s", got)
	}
}

func TestSyncRejectedRevisionKeepsTheLastGood(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1001", "Frank")) // alice's extension
	app := appliedAt(t, 1, fc.doc(1))
	s, _ := startSyncer(t, fc, app)

	eventually(t, "the rejection", func() bool { return len(fc.ackList()) == 1 })
	ack := fc.ackList()[0]
	if ack.Revision != 2 || ack.Status != protocol.AckRejected || len(ack.Problems) == 0 {
		t.Fatalf("ack %+v, want 2 rejected with problems", ack)
	}
	found := false
	for _, p := range ack.Problems {
		found = found || strings.Contains(p.Path, "extension") && strings.Contains(p.Message, "1001")
	}
	if !found {
		t.Errorf("problems %+v do not name the extension", ack.Problems)
	}
	if rev, doc, _ := app.state(); rev != 1 || !sameJSON(t, doc, fc.doc(1)) {
		t.Errorf("serving revision %d, want the last good (1)", rev)
	}
	eventually(t, "the poll since 2", func() bool { return fc.heldPolls() == 1 })
	st := s.Status()
	if st.Revision != 1 || st.Rejected == nil || st.Rejected.Revision != 2 || len(st.Rejected.Problems) == 0 {
		t.Errorf("status %+v", st)
	}

	fc.publish(userOp("u-frank", "1004", "Frank")) // fixed
	eventually(t, "revision 3 applied", revisionIs(app, 3))
	_, doc, _ := app.state()
	if !sameJSON(t, doc, fc.doc(3)) {
		t.Errorf("revision 3 differs from the cloud's")
	}
	// Revision 3's ops build on the rejected 2, which the cluster does not
	// serve: it must go whole.
	if changes := app.changeCount(); changes != 0 {
		t.Errorf("%d entries went as changes on top of a rejected revision, want 0", changes)
	}
	eventually(t, "the acks", func() bool { return len(fc.ackList()) == 2 })
	acksAre(t, fc, "2 rejected", "3 applied")
	if got := strings.Join(pollsSince(fc), ","); !strings.HasPrefix(got, "1,2") {
		t.Errorf("polled since %s, want 1 then 2", got)
	}
	if st := s.Status(); st.Rejected != nil {
		t.Errorf("rejection still shown after revision 3: %+v", st.Rejected)
	}
}

func TestSyncChangesThatDoNotApplyFetchTheSnapshot(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.publish(protocol.Op{Op: protocol.OpDelete, Kind: "users", ID: "u-frank"})
	// The appliance says revision 2 but holds no u-frank: its document has
	// drifted from the cloud's, so revision 3's delete cannot apply.
	app := appliedAt(t, 2, fc.doc(1))
	startSyncer(t, fc, app)
	eventually(t, "revision 3 applied", revisionIs(app, 3))
	_, doc, _ := app.state()
	if !sameJSON(t, doc, fc.doc(3)) {
		t.Errorf("applied document differs from the cloud's snapshot")
	}
	if n := len(fc.requestList(protocol.PathSnapshot)); n != 1 {
		t.Errorf("%d snapshot requests, want 1", n)
	}
}

func TestSyncRetriesClusterFailuresWithoutAcking(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	app := appliedAt(t, 1, fc.doc(1))
	app.failNext = []error{errNotLeader}
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	if st := s.Status(); !strings.Contains(st.LastError, "apply revision 2: not the leader") {
		t.Errorf("LastError %q", st.LastError)
	}
	acksAre(t, fc)
	tm.fire()
	eventually(t, "revision 2 applied", revisionIs(app, 2))
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "2 applied")
}

func TestSyncStaleChangesStartAgainFromWhatIsServed(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	app := appliedAt(t, 1, fc.doc(1))
	app.failNext = []error{ErrStale}
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	if st := s.Status(); !strings.Contains(st.LastError, "no longer serves") {
		t.Errorf("LastError %q", st.LastError)
	}
	acksAre(t, fc)
	tm.fire()
	eventually(t, "revision 2 applied", revisionIs(app, 2))
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "2 applied")
}

func TestSyncRetriesAFailedAckWithoutReapplying(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	fc.failNext(protocol.PathAck, 503)
	app := appliedAt(t, 1, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failed ack", func() bool { return len(tm.list()) == 1 })
	if st := s.Status(); !strings.Contains(st.LastError, "ack revision 2 applied") {
		t.Errorf("LastError %q", st.LastError)
	}
	tm.fire()
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "2 applied")
	if _, _, applies := app.state(); applies != 1 {
		t.Errorf("%d applies, want 1", applies)
	}
}

func TestSyncWakeCutsTheLongPollShort(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	app := appliedAt(t, 1, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	// The first poll does not wait (TestSyncAcksTheRevisionServedAtStart);
	// the next, paced, is held.
	eventually(t, "the pace after the first poll", func() bool { return len(tm.list()) == 1 })
	tm.fire()
	eventually(t, "a poll held", func() bool { return fc.heldPolls() == 1 })
	s.Wake()
	eventually(t, "another poll", func() bool { return len(fc.requestList(protocol.PathChanges)) == 3 && fc.heldPolls() == 1 })
	if w := tm.list(); len(w) != 1 {
		t.Errorf("waited %v before polling again", w[1:])
	}
	if st := s.Status(); st.LastError != "" {
		t.Errorf("a wake-up recorded an error: %q", st.LastError)
	}
}

// A syncer starting where the cloud is (a new leader, the one that applied
// the revision dead before its ack) acks that revision at once: its first
// poll does not wait.
func TestSyncAcksTheRevisionServedAtStart(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	app := appliedAt(t, 2, fc.doc(2))
	s, _ := startSyncer(t, fc, app)
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "2 applied")
	if st := s.Status(); !st.CaughtUp || st.CloudRevision != 2 {
		t.Errorf("status %+v, want caught up with the cloud at 2", st)
	}
	if held, polls := fc.heldPolls(), fc.requestList(protocol.PathChanges); held != 0 || len(polls) != 1 ||
		!strings.Contains(polls[0].Query, "wait=0") {
		t.Errorf("%d polls held; polls %+v, want one, not waiting", held, polls)
	}
	if _, _, applies := app.state(); applies != 0 {
		t.Errorf("%d applies, want none", applies)
	}
}

// A syncer starting behind the cloud acks only what it applies.
func TestSyncStartingBehindAcksOnlyWhatItApplies(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.publish(userOp("u-frank", "1004", "Frank"))
	app := appliedAt(t, 1, fc.doc(1))
	startSyncer(t, fc, app)
	eventually(t, "revision 2 applied", revisionIs(app, 2))
	eventually(t, "the ack", func() bool { return len(fc.ackList()) == 1 })
	acksAre(t, fc, "2 applied")
}

func TestSyncWakeCutsTheBackoffShort(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.failNext(protocol.PathChanges, 500)
	app := appliedAt(t, 1, fc.doc(1))
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	fc.publish(userOp("u-frank", "1004", "Frank"))
	s.Wake() // the push for revision 2; the backoff timer never fires
	eventually(t, "revision 2 applied", revisionIs(app, 2))
}

func TestNewSyncerNeedsClientAndApplier(t *testing.T) {
	if _, err := NewSyncer(SyncerConfig{}); err == nil {
		t.Error("a syncer without client and applier")
	}
	fc := newFakeCloud(t, demoDoc(t))
	s, err := NewSyncer(SyncerConfig{Client: fc.client(t), Applier: &memApplier{}, Wait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Wait != protocol.MaxWait {
		t.Errorf("wait %v, want capped at %v", s.cfg.Wait, protocol.MaxWait)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx) // returns at once
	if errors.Is(ctx.Err(), context.Canceled) && len(fc.requestList("")) != 0 {
		t.Errorf("a cancelled Run made requests")
	}
}

func TestSyncRetriesTheFirstSnapshot(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.failNext(protocol.PathSnapshot, 502)
	app := &memApplier{}
	s, tm := startSyncer(t, fc, app)
	eventually(t, "the failure", func() bool { return len(tm.list()) == 1 })
	if st := s.Status(); !strings.Contains(st.LastError, "fetch snapshot") {
		t.Errorf("LastError %q", st.LastError)
	}
	tm.fire()
	eventually(t, "revision 1 applied", revisionIs(app, 1))
	if got := pollsSince(fc); len(got) > 0 && got[0] != "1" {
		t.Errorf("polled since %v before holding a document", got)
	}
}
