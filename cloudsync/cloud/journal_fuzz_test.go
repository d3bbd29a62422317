package cloud

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// FuzzJournalBatch feeds arbitrary bodies of POST /v1/sync/journal to the
// batch check. A body is refused with problems (at most
// maxListedProblems and a count of the rest, each naming where) or taken
// whole: every record a compact JSON object whose "id" is its non-empty
// ID, as many as the body's array holds, at most MaxJournalBatch; a taken
// batch, sent again as the appliance would, is taken the same.
func FuzzJournalBatch(f *testing.F) {
	f.Add([]byte(`{"records": [{"id": "0b8f3c1e-6a7d-4f5e-9d2c-1a2b3c4d5e6f", "call_id": "a84b4c76e66710@192.0.2.10", "caller": "alice",
 "callee": "bob", "dialled": "1002", "destination": "user", "start": "2026-03-02T09:15:00Z", "answer": "2026-03-02T09:15:04Z",
 "end": "2026-03-02T09:17:30Z", "disposition": "answered", "status": 200, "node": "node-1", "site": "hq"}]}`))
	f.Add([]byte(`{"records": []}`))
	f.Add([]byte(`{"records": [{"id": ""}, {"id": 7}, [], {"x": 1}, null, {"id": "\u00e9\ud800"}]}`))
	f.Add([]byte(`{"records": null}`))
	f.Add([]byte(`{"records": [{"id": "a", "id": "b"}], "records": [{"id": "c"}]}`))
	f.Add([]byte(`{"record": [{"id": "a"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		records, problems := parseJournalBatch(body)
		if len(problems) > 0 {
			if len(problems) > maxListedProblems+1 {
				t.Fatalf("%d problems listed", len(problems))
			}
			for _, p := range problems {
				if p.Message == "" || (p.Path != "" && !strings.HasPrefix(p.Path, "records")) {
					t.Fatalf("problem %+v", p)
				}
			}
			return
		}
		var batch struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &batch); err != nil || len(batch.Records) != len(records) || len(records) > protocol.MaxJournalBatch {
			t.Fatalf("took %d records of %q (%v)", len(records), body, err)
		}
		for _, r := range records {
			// The "id" key exactly: {"ID": ...} is another field.
			var obj map[string]json.RawMessage
			var id string
			var compact bytes.Buffer
			if r.ID == "" || json.Unmarshal(r.JSON, &obj) != nil || json.Unmarshal(obj["id"], &id) != nil || id != r.ID ||
				json.Compact(&compact, r.JSON) != nil || !bytes.Equal(compact.Bytes(), r.JSON) {
				t.Fatalf("took record %q as %q", r.JSON, r.ID)
			}
		}
		// The appliance's way: the records' bytes in {"records": [...]}.
		raws := make([][]byte, len(records))
		for i, r := range records {
			raws[i] = r.JSON
		}
		again := append(append([]byte(`{"records":[`), bytes.Join(raws, []byte(","))...), "]}"...)
		if back, problems := parseJournalBatch(again); len(problems) > 0 || !reflect.DeepEqual(back, records) {
			t.Fatalf("the batch sent again: %v, %v", back, problems)
		}
	})
}
