package cloud

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Call records uploaded as the appliance encodes them (CallRecord.
// AppendJSON) come back from GET /v1/admin/journal as they were: a
// record's route through SDGs and IVRs, a plain call with none, and a
// record from a node that predates routes (no "route" key at all), which
// still ingests and still has none.
func TestJournalRouteRoundTrip(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	end := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	routed := store.CallRecord{ID: "6f1c2e0a-93b4-4d5e-8a71-0c9d2b3e4f50", CallID: "1-4242@192.0.2.10",
		Caller: "alice", CallerName: "Alice Adams", Callee: "bob", Dialled: "1100", Destination: "sdg",
		Start: end.Add(-time.Minute), Answer: end.Add(-50 * time.Second), End: end,
		Disposition: "answered", Status: 200, Node: "node-1", Site: "hq",
		Route: "sdg:sdg-frontdesk > ivr:main > option:1 > group:simultaneous > member:u-bob"}
	plain := routed
	plain.ID, plain.Destination, plain.Dialled, plain.Route = "0b9a8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", "user", "1002", ""
	const older = `{"id":"2b7c8d9e-0f11-4c3e-9a1f-6f1c2d9e4b0a","call_id":"2-4242@192.0.2.10","caller":"carol",` +
		`"callee":"","dialled":"1002","destination":"user","start":"2026-11-23T08:58:00Z","end":"2026-11-23T08:58:30Z",` +
		`"disposition":"no_answer","status":480,"node":"node-0","site":"hq"}`

	body := []byte(`{"records":[`)
	var err error
	if body, err = routed.AppendJSON(body); err != nil {
		t.Fatal(err)
	}
	if body, err = plain.AppendJSON(append(body, ',')); err != nil {
		t.Fatal(err)
	}
	body = append(append(append(body, ','), older...), "]}"...)
	resp, answer := h.sync(c, http.MethodPost, protocol.PathJournal, body,
		http.Header{protocol.HeaderIdempotencyKey: {"k-routes"}})
	wantStatus(t, "upload", resp, answer, http.StatusOK)
	var receipt protocol.JournalReceipt
	decode(t, answer, &receipt)
	if receipt != (protocol.JournalReceipt{Accepted: 3}) {
		t.Fatalf("receipt %+v, want 3 accepted", receipt)
	}

	resp, answer = h.admin(http.MethodGet, "/v1/admin/journal?appliance=b1", nil)
	wantStatus(t, "admin journal", resp, answer, http.StatusOK)
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	decode(t, answer, &page)
	if len(page.Records) != 3 {
		t.Fatalf("journal holds %d records, want 3", len(page.Records))
	}
	var got []store.CallRecord
	for _, raw := range page.Records {
		var r store.CallRecord
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("record %s: %v", raw, err)
		}
		got = append(got, r)
	}
	if !reflect.DeepEqual(got[:2], []store.CallRecord{routed, plain}) {
		t.Errorf("records read back\n%+v\nwant\n%+v", got[:2], []store.CallRecord{routed, plain})
	}
	if want, _ := routed.AppendJSON(nil); !bytes.Equal(page.Records[0], want) {
		t.Errorf("routed record listed as\n%s\nwant, as uploaded,\n%s", page.Records[0], want)
	}
	if got[2].ID != "2b7c8d9e-0f11-4c3e-9a1f-6f1c2d9e4b0a" || got[2].Route != "" || bytes.Contains(page.Records[2], []byte(`"route"`)) {
		t.Errorf("an older node's record listed as %s, want it as uploaded, with no route", page.Records[2])
	}
}
