package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/config"
)

// runNode runs a node of cfg, its listeners on loopback port 0, until
// stop or the end of the test, and returns once it has started; ctx ends
// with it.
func runNode(t *testing.T, cfg config.Config) (n *Node, ctx context.Context, stop func()) {
	t.Helper()
	cfg.SIP.UDP, cfg.SIP.TCP, cfg.SIP.TLS = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.HTTP.Listen, cfg.Raft.Listen = "127.0.0.1:0", "127.0.0.1:0"
	n = New(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { defer close(done); runErr = n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if runErr != nil {
				t.Errorf("%s: run: %v", cfg.NodeID, runErr)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-n.Started():
	case <-done:
		t.Fatalf("%s: run: %v", cfg.NodeID, runErr)
	}
	return n, ctx, stop
}

// startJournalNode runs a one-node cluster until the test ends and waits
// for it to lead; the context lasts until the test ends (at most 20 s).
func startJournalNode(t *testing.T) (*Node, context.Context) {
	t.Helper()
	cfg := config.Default()
	cfg.NodeID, cfg.DataDir = "n1", t.TempDir()
	n, ctx, _ := runNode(t, cfg)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	t.Cleanup(wcancel)
	if err := n.cluster.WaitForLeader(wctx); err != nil {
		t.Fatal(err)
	}
	return n, wctx
}

// The uploader's view of the journal: both tables, a batch at a time on
// from each batch's cursor, each record as json.Marshal writes it; marked
// through Raft, a record is no longer pending.
func TestNodeJournalPendingAndMark(t *testing.T) {
	n, ctx := startJournalNode(t)
	base := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	call := func(id string, end time.Duration) store.CallRecord {
		e := base.Add(end)
		return store.CallRecord{ID: id, CallID: "c-" + id, Caller: "alice", CallerName: "Alice <A&B>", Callee: "bob",
			Dialled: "1002", Destination: "user", Start: e.Add(-time.Minute), Answer: e.Add(-50 * time.Second), End: e,
			Disposition: "answered", Status: 200, Node: "n1", Site: "hq"}
	}
	local := []store.CallRecord{call("a", time.Second), call("c", 3*time.Second)}
	shared := []store.CallRecord{call("b", 2*time.Second), call("d", 4*time.Second), call("e", 4*time.Second)}
	if err := n.store.PutLocalCallRecords(local); err != nil {
		t.Fatal(err)
	}
	cmd, err := cluster.EncodeCallRecords(shared)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.cluster.Apply(ctx, cmd); err != nil || res.Err != nil {
		t.Fatalf("share: %v %v", err, res.Err)
	}
	want := map[string]store.CallRecord{}
	for _, r := range append(slices.Clone(local), shared...) {
		want[r.ID] = r
	}

	j := nodeJournal{n}
	var ids []string
	after := ""
	for batches := 0; ; batches++ {
		b, err := j.Pending(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.IDs) == 0 {
			if b.Next != after {
				t.Errorf("an empty batch moved the cursor from %q to %q", after, b.Next)
			}
			break
		}
		if batches == 3 {
			t.Fatalf("still reading after 3 batches: %v", ids)
		}
		for i, id := range b.IDs {
			wantJSON, err := json.Marshal(want[id])
			if err != nil {
				t.Fatal(err)
			}
			if string(b.Records[i]) != string(wantJSON) {
				t.Errorf("record %s: %s\nwant %s", id, b.Records[i], wantJSON)
			}
		}
		ids = append(ids, b.IDs...)
		after = b.Next
	}
	if !slices.Equal(ids, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("read %v, want a to e, oldest end first", ids)
	}
	if err := j.MarkUploaded(ctx, []string{"a", "b", "d"}); err != nil {
		t.Fatal(err)
	}
	b, err := j.Pending(ctx, "", 10)
	if err != nil || !slices.Equal(b.IDs, []string{"c", "e"}) {
		t.Errorf("pending after marks: %v, %v; want [c e]", b.IDs, err)
	}
	if _, err := j.Pending(ctx, "not a cursor", 10); err == nil {
		t.Error("a malformed cursor: no error")
	}
}

func TestJournalCursorRoundTrip(t *testing.T) {
	for _, c := range []store.JournalCursor{
		{End: time.UnixMilli(1_795_395_372_123).UTC(), ID: "6f1c2d9e-4b0a-4c3e-9a1f-2b7c8d9e0f11"},
		{End: time.UnixMilli(1).UTC(), ID: "id:with:colons"},
	} {
		s := formatJournalCursor(c)
		got, err := parseJournalCursor(s)
		if err != nil || !got.End.Equal(c.End) || got.ID != c.ID {
			t.Errorf("%+v -> %q -> %+v, %v", c, s, got, err)
		}
	}
	if c, err := parseJournalCursor(""); err != nil || !c.IsZero() {
		t.Errorf(`"" is %+v, %v; want the start`, c, err)
	}
	for _, bad := range []string{"x", "12", "12:", "x:id", ":id"} {
		if _, err := parseJournalCursor(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
