package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Call records go through Raft with their route, and without one when a
// call had none; a record shared by a node that predates routes (no
// "route" key) still passes CheckShared and applies, with no route.
func TestCallRecordsEncodingRoundTrip(t *testing.T) {
	end := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	routed := store.CallRecord{ID: "c-1", CallID: "1@192.0.2.1", Caller: "alice", Callee: "bob", Dialled: "1100",
		Destination: "sdg", Start: end.Add(-time.Minute), Answer: end.Add(-50 * time.Second), End: end,
		Disposition: "answered", Status: 200, Node: "n1", Site: "hq",
		Route: "sdg:sdg-frontdesk > group:simultaneous > member:u-bob"}
	plain := routed
	plain.ID, plain.Destination, plain.Dialled, plain.Route = "c-2", "user", "1002", ""
	cmd, err := EncodeCallRecords([]store.CallRecord{routed, plain})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckShared(cmd); err != nil {
		t.Fatalf("CheckShared: %v", err)
	}
	typ, payload, err := splitCommand(cmd)
	if err != nil || typ != CmdPutCallRecords {
		t.Fatalf("split: %v %v", typ, err)
	}
	var got PutCallRecords
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if want := []store.CallRecord{routed, plain}; !reflect.DeepEqual(got.Records, want) {
		t.Errorf("decoded %+v, want %+v", got.Records, want)
	}

	// As a node of an older release encodes a record: no route key.
	old := append([]byte{byte(CmdPutCallRecords), commandVersion}, `{"records":[{"id":"c-3","call_id":"3@192.0.2.1",`+
		`"caller":"alice","callee":"bob","dialled":"1002","destination":"user","start":"2026-11-23T08:59:00Z",`+
		`"end":"2026-11-23T09:00:00Z","disposition":"no_answer","status":480,"node":"n0","site":"hq"}]}`...)
	if err := CheckShared(old); err != nil {
		t.Fatalf("CheckShared of an older node's records: %v", err)
	}

	f, st := newFSM(t)
	for i, res := range applyAt(f, 1, cmd, old) {
		if res.Err != nil {
			t.Fatalf("apply %d: %v", i, res.Err)
		}
	}
	recs, err := st.Reader().CallRecords(t.Context(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{}
	for _, r := range recs {
		routes[r.ID] = r.Route
	}
	if want := map[string]string{"c-1": routed.Route, "c-2": "", "c-3": ""}; !reflect.DeepEqual(routes, want) {
		t.Errorf("stored routes %q, want %q", routes, want)
	}
}

// Voicemail messages go through Raft: CheckShared takes a well-formed
// batch and refuses one without a mailbox; applying a message and then
// its saved copy, twice, ends in one saved message.
func TestVoicemailCommand(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := store.VoicemailMessage{ID: "vm-1", Mailbox: "u-alice", Caller: "bob", CallRecord: "c-1", ReceivedAt: at,
		DurationMS: 3000, SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 48044,
		Node: "n1", Folder: store.FolderNew, UpdatedAt: at}
	saved := m
	saved.Folder, saved.UpdatedAt = store.FolderSaved, at.Add(time.Minute)
	first, err := EncodeVoicemail([]store.VoicemailMessage{m})
	if err != nil {
		t.Fatal(err)
	}
	second, _ := EncodeVoicemail([]store.VoicemailMessage{saved})
	if err := CheckShared(first); err != nil {
		t.Fatalf("CheckShared: %v", err)
	}
	bad := m
	bad.Mailbox = ""
	if cmd, _ := EncodeVoicemail([]store.VoicemailMessage{bad}); CheckShared(cmd) == nil {
		t.Error("CheckShared took a message without a mailbox")
	}
	f, st := newFSM(t)
	for i, res := range applyAt(f, 1, second, first, second, first) {
		if res.Err != nil {
			t.Fatalf("apply %d: %v", i, res.Err)
		}
	}
	box, err := st.Reader().Mailbox(t.Context(), "u-alice")
	if err != nil || len(box) != 1 || box[0].Folder != store.FolderSaved || !box[0].UpdatedAt.Equal(saved.UpdatedAt) {
		t.Fatalf("Mailbox = %+v, %v", box, err)
	}
}
