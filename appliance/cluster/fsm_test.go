package cluster

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newFSM(t testing.TB) (*FSM, *store.Store) {
	t.Helper()
	st := openStore(t)
	f, err := NewFSM(st, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	return f, st
}

func demoDoc(t testing.TB, rev int64) []byte {
	t.Helper()
	data, err := os.ReadFile("../../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := account.DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	s.Revision = rev
	doc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func mustEncode(t testing.TB, ct CommandType, payload any) []byte {
	t.Helper()
	b, err := Encode(ct, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyAt applies entries as raft would, numbering them from index.
func applyAt(f *FSM, index uint64, entries ...[]byte) []ApplyResult {
	logs := make([]*raft.Log, len(entries))
	for i, e := range entries {
		logs[i] = &raft.Log{Index: index + uint64(i), Type: raft.LogCommand, Data: e}
	}
	var out []ApplyResult
	for _, r := range f.ApplyBatch(logs) {
		out = append(out, r.(ApplyResult))
	}
	return out
}

func revision(t testing.TB, st *store.Store) int64 {
	t.Helper()
	rev, err := st.Reader().Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestFSMApplySnapshot(t *testing.T) {
	f, st := newFSM(t)
	res := applyAt(f, 1, EncodeSnapshot(demoDoc(t, 3)))
	if res[0].Err != nil || res[0].Revision != 3 {
		t.Fatalf("apply revision 3: %+v", res[0])
	}
	users, err := st.Reader().Users(t.Context())
	if err != nil || len(users) != 5 {
		t.Fatalf("users after apply: %d, %v", len(users), err)
	}
	// Not newer: refused, nothing changes, the FSM goes on.
	for _, rev := range []int64{3, 2} {
		res = applyAt(f, f.AppliedIndex()+1, EncodeSnapshot(demoDoc(t, rev)))
		if !errors.Is(res[0].Err, ErrStaleRevision) || res[0].Revision != 3 {
			t.Errorf("apply revision %d after 3: %+v, want ErrStaleRevision", rev, res[0])
		}
	}
	if got := revision(t, st); got != 3 {
		t.Errorf("revision %d, want 3", got)
	}
	if f.Halted() != nil || f.AppliedIndex() != 3 {
		t.Errorf("halted %v, applied %d; want running at 3", f.Halted(), f.AppliedIndex())
	}
}

func TestFSMSmallCommands(t *testing.T) {
	f, st := newFSM(t)
	since := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	mode, err := EncodeMode(ModeSurvivability, since)
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := EncodeMember(store.Member{ID: "n1", RaftAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:8001", Site: "hq"})
	m2, _ := EncodeMember(store.Member{ID: "n2", RaftAddr: "127.0.0.1:7002", HTTPAddr: "127.0.0.1:8002", Site: "branch"})
	rm := mustEncode(t, CmdRemoveMember, RemoveMember{ID: "n1"})
	for i, r := range applyAt(f, 1, m1, m2, mode, rm) {
		if r.Err != nil {
			t.Fatalf("command %d: %v", i, r.Err)
		}
	}
	ms, err := st.Reader().Members(t.Context())
	if err != nil || len(ms) != 1 || ms[0].ID != "n2" || ms[0].Site != "branch" {
		t.Errorf("members %+v, %v; want n2 only", ms, err)
	}
	gotMode, gotSince, err := st.Reader().Mode(t.Context())
	if err != nil || gotMode != ModeSurvivability || !gotSince.Equal(since) {
		t.Errorf("mode %q since %v (%v), want survivability since %v", gotMode, gotSince, err, since)
	}
	if _, err := EncodeMode("panic", since); err == nil {
		t.Error("EncodeMode accepted an unknown mode")
	}
}

func TestFSMBatch(t *testing.T) {
	f, st := newFSM(t)
	applyAt(f, 1, EncodeSnapshot(demoDoc(t, 5)))
	m1, _ := EncodeMember(store.Member{ID: "n1", RaftAddr: "a:1", HTTPAddr: "a:2", Site: "hq"})
	m2, _ := EncodeMember(store.Member{ID: "n2", RaftAddr: "b:1", HTTPAddr: "b:2", Site: "hq"})
	batch := encodeBatch([][]byte{m1, EncodeSnapshot(demoDoc(t, 4)), m2})
	res := applyAt(f, 2, batch)[0]
	if res.Err != nil || len(res.Batch) != 3 {
		t.Fatalf("batch: %+v", res)
	}
	if res.Batch[0].Err != nil || res.Batch[2].Err != nil {
		t.Errorf("members in batch refused: %+v", res.Batch)
	}
	if !errors.Is(res.Batch[1].Err, ErrStaleRevision) {
		t.Errorf("stale snapshot in batch: %v, want ErrStaleRevision", res.Batch[1].Err)
	}
	ms, _ := st.Reader().Members(t.Context())
	if len(ms) != 2 || revision(t, st) != 5 {
		t.Errorf("after batch: %d members, revision %d; want 2 and 5", len(ms), revision(t, st))
	}

	entries, err := decodeBatch(batch[2:])
	if err != nil || len(entries) != 3 || !bytes.Equal(entries[2], m2) {
		t.Errorf("decodeBatch round trip: %d entries, %v", len(entries), err)
	}
}

// Entries at or below the applied index are skipped: replay after a restart
// applies nothing twice.
func TestFSMSkipsApplied(t *testing.T) {
	f, st := newFSM(t)
	m1, _ := EncodeMember(store.Member{ID: "n1", RaftAddr: "a:1", HTTPAddr: "a:2", Site: "hq"})
	applyAt(f, 1, EncodeSnapshot(demoDoc(t, 1)), m1)
	f2, err := NewFSM(st, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	if f2.AppliedIndex() != 2 {
		t.Fatalf("reopened FSM at index %d, want 2", f2.AppliedIndex())
	}
	// Replaying index 1 (revision 1 again) must not answer stale: it is skipped.
	res := applyAt(f2, 1, EncodeSnapshot(demoDoc(t, 1)), m1, EncodeSnapshot(demoDoc(t, 2)))
	if res[0].Err != nil || res[1].Err != nil || res[2].Err != nil || revision(t, st) != 2 {
		t.Errorf("replay: %+v, revision %d", res, revision(t, st))
	}
}

func TestFSMHaltsOnUnknownCommands(t *testing.T) {
	cases := map[string][]byte{
		"unknown type":    {42, commandVersion, '{', '}'},
		"unknown version": {byte(CmdSetMode), 9, '{', '}'},
		"too short":       {byte(CmdSetMode)},
		"truncated batch": {byte(CmdBatch), commandVersion, 200, 1},
		"nested batch":    encodeBatch([][]byte{encodeBatch(nil)}),
	}
	for name, entry := range cases {
		t.Run(name, func(t *testing.T) {
			f, st := newFSM(t)
			applyAt(f, 1, EncodeSnapshot(demoDoc(t, 1)))
			m, _ := EncodeMember(store.Member{ID: "n9", RaftAddr: "a:1", HTTPAddr: "a:2", Site: "hq"})
			res := applyAt(f, 2, m, entry)
			if !errors.Is(res[1].Err, ErrHalted) || f.Halted() == nil {
				t.Fatalf("got %+v, halted %v; want ErrHalted", res[1], f.Halted())
			}
			// Nothing of the batch is applied and the index stays, so an
			// upgraded node replays from here.
			if ms, _ := st.Reader().Members(t.Context()); len(ms) != 0 || f.AppliedIndex() != 1 {
				t.Errorf("halted batch left %d members, applied index %d", len(ms), f.AppliedIndex())
			}
			if r := applyAt(f, 4, m)[0]; !errors.Is(r.Err, ErrHalted) {
				t.Errorf("apply after halt: %+v", r)
			}
		})
	}
}

func TestFSMIgnorableCommand(t *testing.T) {
	f, _ := newFSM(t)
	res := applyAt(f, 1, []byte{byte(IgnorableFlag | 42), commandVersion, 1, 2, 3})
	if res[0].Err != nil || f.Halted() != nil || f.AppliedIndex() != 1 {
		t.Errorf("ignorable: %+v, halted %v, applied %d", res[0], f.Halted(), f.AppliedIndex())
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "test" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f, st := newFSM(t)
	m1, _ := EncodeMember(store.Member{ID: "n1", RaftAddr: "a:1", HTTPAddr: "a:2", Site: "hq"})
	applyAt(f, 1, EncodeSnapshot(demoDoc(t, 7)), m1)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil || sink.cancelled {
		t.Fatalf("persist: %v (cancelled %v)", err, sink.cancelled)
	}
	snap.Release()

	g, st2 := newFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.AppliedIndex() != 2 || revision(t, st2) != 7 {
		t.Errorf("restored: applied %d revision %d; want 2 and 7", g.AppliedIndex(), revision(t, st2))
	}
	a, _ := st.Reader().SnapshotJSON(t.Context())
	b, _ := st2.Reader().SnapshotJSON(t.Context())
	if !bytes.Equal(a, b) {
		t.Error("restored snapshot document differs")
	}
	// A corrupt snapshot is refused and the store keeps what it had.
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("not a database")))); err == nil {
		t.Error("restore of garbage succeeded")
	}
	if revision(t, st2) != 7 {
		t.Error("failed restore changed the store")
	}
}

// A database filled by a Raft history the node no longer has (its raft
// directory was wiped) is refused at open, not silently trusted.
func TestOpenRefusesForeignStore(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "outpost.db"), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, _ := NewFSM(st, discardLog())
	applyAt(f, 1, EncodeSnapshot(demoDoc(t, 1)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Open(Config{
		NodeID: "n1", RaftDir: filepath.Join(dir, "raft"), Listener: ln, Bootstrap: true,
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, SnapshotThreshold: 100,
		Store: st, Log: discardLog(),
	})
	if !errors.Is(err, ErrForeignStore) {
		t.Fatalf("Open with a foreign store: %v, want ErrForeignStore", err)
	}
}

// A halted FSM takes no snapshot: it would claim entries it refused.
func TestHaltedFSMRefusesSnapshot(t *testing.T) {
	f, _ := newFSM(t)
	applyAt(f, 1, []byte{42, commandVersion})
	if _, err := f.Snapshot(); !errors.Is(err, ErrHalted) {
		t.Fatalf("snapshot of a halted FSM: %v, want ErrHalted", err)
	}
}

// A snapshot the tables cannot hold is refused like a stale one: a content
// error every node reaches alike, not a halt.
func TestFSMRefusesConflictingSnapshot(t *testing.T) {
	f, st := newFSM(t)
	s, err := account.DecodeBytes(demoDoc(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.SDGs[0].Extension = s.Users[0].Extension // validation would catch it; the store must too
	doc, _ := s.Encode()
	res := applyAt(f, 1, EncodeSnapshot(doc))[0]
	if !errors.Is(res.Err, store.ErrConflict) || f.Halted() != nil || revision(t, st) != 0 {
		t.Fatalf("conflicting snapshot: %+v, halted %v, revision %d", res, f.Halted(), revision(t, st))
	}
}

// A known command whose payload does not decode is refused on every node
// alike; it does not halt the FSM (only unknown types and versions do).
func TestFSMRefusesMalformedPayloads(t *testing.T) {
	f, _ := newFSM(t)
	for i, entry := range [][]byte{
		{byte(CmdPutBindings), commandVersion, '{'},
		{byte(CmdSetMode), commandVersion, 'x'},
		append([]byte{byte(CmdApplySnapshot), commandVersion}, `{"bogus": 1}`...),
	} {
		res := applyAt(f, uint64(i+1), entry)[0]
		if !errors.Is(res.Err, ErrMalformedCommand) || f.Halted() != nil {
			t.Errorf("entry %d: %+v, halted %v; want ErrMalformedCommand and running", i, res, f.Halted())
		}
	}
}

func TestCheckShared(t *testing.T) {
	good, _ := EncodeBindings([]store.Binding{{ID: "b1", AOR: "alice@acme.example", UpdatedAt: time.Unix(1, 0)}})
	if err := CheckShared(good); err != nil {
		t.Errorf("valid bindings refused: %v", err)
	}
	creds := store.CloudCredentials{URL: "https://cloud.example", ApplianceID: "acme-hq", Secret: "s", PushKey: "00ff", PairedAt: time.Unix(1, 0)}
	goodCreds, _ := EncodeCloudCredentials(creds)
	if err := CheckShared(goodCreds); err != nil {
		t.Errorf("valid cloud credentials refused: %v", err)
	}
	creds.Secret = ""
	noSecret, _ := EncodeCloudCredentials(creds)
	noID, _ := EncodeBindings([]store.Binding{{AOR: "alice@acme.example", UpdatedAt: time.Unix(1, 0)}})
	snap := EncodeSnapshot(demoDoc(t, 1))
	changes, _ := EncodeChanges(1, 2, nil)
	for name, cmd := range map[string][]byte{
		"no id": noID, "snapshot": snap, "changes": changes, "credentials without a secret": noSecret, "garbage payload": {byte(CmdPutBindings), commandVersion, '{'},
		"short": {6}, "unknown field": append([]byte{byte(CmdPutBindings), commandVersion}, `{"bindings":[],"x":1}`...),
	} {
		if err := CheckShared(cmd); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
