package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzApply feeds arbitrary documents and op lists (as JSON) to Apply. It
// must never panic nor touch its inputs; an error returns no document and
// wraps one of the package's errors; a success is a JSON object that Apply
// with no ops leaves as it is, and applying the same ops again gives the
// same bytes.
func FuzzApply(f *testing.F) {
	if demo, err := os.ReadFile(demoPath); err == nil {
		f.Add(demo, []byte(`[{"op":"delete","kind":"users","id":"u-alice"},{"op":"set","kind":"embed","data":{"allowed_origins":[]}}]`))
	}
	f.Add([]byte(`{"users":[{"id":"a"}],"account":{}}`), []byte(`[{"op":"put","kind":"users","id":"b","data":{"id":"b"}}]`))
	f.Add([]byte(`{"users":[{"id":"a"}]}`), []byte(`[{"op":"delete","kind":"users","id":"a"},{"op":"put","kind":"users","id":"a","data":{"id":"a"}}]`))
	f.Add([]byte(`{"w":[{"id":"1"}],"n":null}`), []byte(`[{"op":"put","kind":"w","id":"2","data":{"id":"2"}},{"op":"set","kind":"n","data":[1]}]`))
	f.Add([]byte(`{"numbers":[{"number":"+1"}]}`), []byte(`[{"op":"put","kind":"numbers","id":"+1","data":{"number":"+1","x":1}}]`))
	f.Add([]byte(`{"a":1,"a":2}`), []byte(`[]`))
	f.Add([]byte(`[]`), []byte(`null`))

	f.Fuzz(func(t *testing.T, doc, opsJSON []byte) {
		var ops []Op
		if json.Unmarshal(opsJSON, &ops) != nil {
			return
		}
		docCopy := bytes.Clone(doc)
		opsCopy, _ := json.Marshal(ops)

		out, err := Apply(doc, ops)

		if !bytes.Equal(doc, docCopy) {
			t.Fatalf("Apply changed its document")
		}
		if after, _ := json.Marshal(ops); !bytes.Equal(after, opsCopy) {
			t.Fatalf("Apply changed its ops")
		}
		if err != nil {
			if out != nil {
				t.Fatalf("Apply returned a document with its error %v", err)
			}
			if !errors.Is(err, ErrBadDocument) && !errors.Is(err, ErrBadOp) && !errors.Is(err, ErrMissingKey) {
				t.Fatalf("error %v wraps none of the package's errors", err)
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("result is not a JSON object: %v\n%s", err, out)
		}
		again, err := Apply(out, nil)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Apply(result, nil) = %s, %v; want the result unchanged", again, err)
		}
		twice, err := Apply(doc, ops)
		if err != nil || !bytes.Equal(twice, out) {
			t.Fatalf("Apply is not deterministic")
		}
	})
}
