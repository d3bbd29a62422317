package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// referenceObjectKey is diffObjectKey through encoding/json, for
// comparison.
func referenceObjectKey(raw []byte, field string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", errors.New("not a JSON object")
	}
	v, ok := obj[field]
	if !ok {
		return "", fmt.Errorf("has no %q", field)
	}
	var key string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &key) != nil {
		return "", fmt.Errorf("%q is not a string", field)
	}
	if key == "" {
		return "", fmt.Errorf("%q is empty", field)
	}
	return key, nil
}

func TestDiffObjectKey(t *testing.T) {
	for _, raw := range []string{
		`{"id": "a"}`,
		` { "x" : [ "]", {"id": "nested"} ], "id" : "b\"c" } `,
		`{"\u0069d": "escaped-key"}`,
		`{"id": "first", "id": "last"}`,
		`{"name": "{\"id\": \"fake\"}", "id": "real"}`,
		`{"id": "caf\u00e9"}`,
		`{"ID": "wrong case"}`,
		`{"id": ""}`, `{"id": null}`, `{"id": 7}`, `{"id": ["a"]}`, `{}`, `[]`, `"id"`, `null`,
		`{"n": -1.5e3, "t": true, "f": false, "z": null, "id": "after-scalars"}`,
	} {
		got, gerr := diffObjectKey([]byte(raw), "id")
		want, werr := referenceObjectKey([]byte(raw), "id")
		if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Errorf("%s: got %q, %v; want %q, %v", raw, got, gerr, want, werr)
		}
	}
}

func TestDiffSplitArray(t *testing.T) {
	for raw, want := range map[string]int{
		`[]`: 0, ` [ ] `: 0, `[1]`: 1, `[{"a": [1, "]"]}, "x", null, 2.5]`: 4, `[[], {}]`: 2,
	} {
		got, err := diffSplitArray([]byte(raw))
		if err != nil || len(got) != want {
			t.Errorf("%s: %d elements, %v; want %d", raw, len(got), err, want)
		}
		for _, e := range got {
			if !json.Valid(e) {
				t.Errorf("%s: element %q is not a JSON value", raw, e)
			}
		}
	}
	for _, raw := range []string{`{}`, `"x"`, `[1,`, `[`, ``} {
		if _, err := diffSplitArray([]byte(raw)); err == nil {
			t.Errorf("%s: split without error", raw)
		}
	}
}

// FuzzDiffObjectKey checks the scanner against encoding/json on valid
// JSON.
func FuzzDiffObjectKey(f *testing.F) {
	f.Add([]byte(`{"id": "a", "x": {"id": "b"}}`))
	f.Add([]byte(`{"\u0069d": "\"q\""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		got, gerr := diffObjectKey(raw, "id")
		want, werr := referenceObjectKey(raw, "id")
		if got != want || (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: got %q, %v; want %q, %v", raw, got, gerr, want, werr)
		}
		if elems, err := diffSplitArray(raw); err == nil {
			var ref []json.RawMessage
			if json.Unmarshal(raw, &ref) != nil || len(ref) != len(elems) {
				t.Fatalf("%q: split into %d, encoding/json %d", raw, len(elems), len(ref))
			}
		}
	})
}
