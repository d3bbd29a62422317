package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// demoPath is the contract's reference snapshot (shared/ is part of the
// repository's tree).
const demoPath = "../../../shared/contract/demo-snapshot.json"

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestApply(t *testing.T) {
	const doc = `{
		"revision": 7,
		"account": {"id": "acme"},
		"users": [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}],
		"numbers": [{"number": "+1", "route": null}],
		"admins": [{"username": "root"}],
		"x_extra": {"kept": true},
		"widgets": [{"id": "w1"}],
		"embed": {"allowed_origins": []}
	}`
	tests := []struct {
		name string
		ops  []Op
		want string
	}{
		{"no ops: same document, compact", nil,
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"put replaces in place", []Op{{Op: OpPut, Kind: "users", ID: "b", Data: raw(`{"id": "b", "n": 20}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":20},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"put appends a new object", []Op{{Op: OpPut, Kind: "users", ID: "d", Data: raw(`{"id":"d"}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3},{"id":"d"}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"delete removes, keeps the order", []Op{{Op: OpDelete, Kind: "users", ID: "b"}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"delete then put the same key appends", []Op{
			{Op: OpDelete, Kind: "users", ID: "a"},
			{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"a","n":9}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"b","n":2},{"id":"c","n":3},{"id":"a","n":9}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"numbers keyed by number, admins by username", []Op{
			{Op: OpPut, Kind: "numbers", ID: "+1", Data: raw(`{"number":"+1","route":{"type":"user","id":"a"}}`)},
			{Op: OpDelete, Kind: "admins", ID: "root"}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":{"type":"user","id":"a"}}],"admins":[],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"set replaces a singleton in place", []Op{{Op: OpSet, Kind: "account", Data: raw(`{"id":"acme","name":"Acme"}`)}},
			`{"revision":7,"account":{"id":"acme","name":"Acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"set of a new singleton appends it", []Op{{Op: OpSet, Kind: "callout", Data: raw(`{"greeting_prompt":"hi"}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]},"callout":{"greeting_prompt":"hi"}}`},
		{"unknown array of objects with id is a collection", []Op{{Op: OpPut, Kind: "widgets", ID: "w2", Data: raw(`{"id":"w2"}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"},{"id":"w2"}],"embed":{"allowed_origins":[]}}`},
		{"unknown object is a singleton", []Op{{Op: OpSet, Kind: "x_extra", Data: raw(`{"kept":false}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":false},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]}}`},
		{"put into a collection the document lacks creates it", []Op{{Op: OpPut, Kind: "trunks", ID: "t1", Data: raw(`{"id":"t1"}`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":1},{"id":"b","n":2},{"id":"c","n":3}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":[{"id":"w1"}],"embed":{"allowed_origins":[]},"trunks":[{"id":"t1"}]}`},
		{"ops apply in order", []Op{
			{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"a","n":10}`)},
			{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"a","n":11}`)},
			{Op: OpDelete, Kind: "users", ID: "c"},
			{Op: OpSet, Kind: "widgets", Data: raw(`"gone"`)}},
			`{"revision":7,"account":{"id":"acme"},"users":[{"id":"a","n":11},{"id":"b","n":2}],"numbers":[{"number":"+1","route":null}],"admins":[{"username":"root"}],"x_extra":{"kept":true},"widgets":"gone","embed":{"allowed_origins":[]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(doc), tt.ops)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestApplyNullCollection(t *testing.T) {
	got, err := Apply([]byte(`{"users":null}`), []Op{{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"a"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"users":[{"id":"a"}]}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	const doc = `{"revision":1,"account":{"id":"x"},"users":[{"id":"a"}],"widgets":[{"name":"no id"}],"blob":"text"}`
	tests := []struct {
		name    string
		doc     string
		ops     []Op
		wantErr error
		wantMsg string // in the message
	}{
		{"not an object", `[1]`, nil, ErrBadDocument, "not a JSON object"},
		{"truncated", `{"users":[`, nil, ErrBadDocument, ""},
		{"trailing data", `{} {}`, nil, ErrBadDocument, "data after"},
		{"repeated key", `{"a":1,"a":2}`, nil, ErrBadDocument, `"a" appears twice`},
		{"delete a missing key", doc, []Op{{Op: OpDelete, Kind: "users", ID: "zz"}}, ErrMissingKey, `op 0 (delete users/zz)`},
		{"delete from a missing collection", doc, []Op{{Op: OpDelete, Kind: "trunks", ID: "t"}}, ErrMissingKey, "no trunks"},
		{"second op fails", doc, []Op{
			{Op: OpPut, Kind: "users", ID: "b", Data: raw(`{"id":"b"}`)},
			{Op: OpDelete, Kind: "users", ID: "q"}}, ErrMissingKey, "op 1 (delete users/q)"},
		{"unknown op", doc, []Op{{Op: "patch", Kind: "users", ID: "a"}}, ErrBadOp, `unknown op "patch"`},
		{"no kind", doc, []Op{{Op: OpSet, Data: raw(`1`)}}, ErrBadOp, "no kind"},
		{"revision is the caller's", doc, []Op{{Op: OpSet, Kind: "revision", Data: raw(`9`)}}, ErrBadOp, "revision"},
		{"put without id", doc, []Op{{Op: OpPut, Kind: "users", Data: raw(`{"id":"a"}`)}}, ErrBadOp, "no id"},
		{"put without data", doc, []Op{{Op: OpPut, Kind: "users", ID: "a"}}, ErrBadOp, "no data"},
		{"put with data of another id", doc, []Op{{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"b"}`)}}, ErrBadOp, `"b", not the op's id`},
		{"put with data not an object", doc, []Op{{Op: OpPut, Kind: "users", ID: "a", Data: raw(`["a"]`)}}, ErrBadOp, "not an object"},
		{"put with a number keyed wrongly", doc, []Op{{Op: OpPut, Kind: "numbers", ID: "+1", Data: raw(`{"id":"+1"}`)}}, ErrBadOp, "no number"},
		{"put with invalid JSON", doc, []Op{{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":`)}}, ErrBadOp, "not JSON"},
		{"put on a singleton", doc, []Op{{Op: OpPut, Kind: "account", ID: "x", Data: raw(`{"id":"x"}`)}}, ErrBadOp, "singleton"},
		{"set on a collection", doc, []Op{{Op: OpSet, Kind: "users", Data: raw(`[]`)}}, ErrBadOp, "collection"},
		{"set with an id", doc, []Op{{Op: OpSet, Kind: "account", ID: "x", Data: raw(`{}`)}}, ErrBadOp, "no id"},
		{"set without data", doc, []Op{{Op: OpSet, Kind: "account"}}, ErrBadOp, "no data"},
		{"put on an unknown non-collection", doc, []Op{{Op: OpPut, Kind: "blob", ID: "a", Data: raw(`{"id":"a"}`)}}, ErrBadOp, "not a collection"},
		{"put on an array without ids", doc, []Op{{Op: OpPut, Kind: "widgets", ID: "a", Data: raw(`{"id":"a"}`)}}, ErrBadOp, "not a collection"},
		{"known collection not an array", `{"users":{"a":1}}`, []Op{{Op: OpDelete, Kind: "users", ID: "a"}}, ErrBadDocument, "not an array"},
		{"known collection item without key", `{"users":[{"name":"x"}]}`, []Op{{Op: OpDelete, Kind: "users", ID: "a"}}, ErrBadDocument, "users[0]: no id"},
		{"known collection with a repeated key", `{"users":[{"id":"a"},{"id":"a"}]}`, []Op{{Op: OpDelete, Kind: "users", ID: "a"}}, ErrBadDocument, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), tt.ops)
			if err == nil {
				t.Fatalf("Apply succeeded with %s", got)
			}
			if got != nil {
				t.Errorf("Apply returned a document with its error: %s", got)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestApplyErrorNamesTheOp(t *testing.T) {
	_, err := Apply([]byte(`{"users":[]}`), []Op{
		{Op: OpPut, Kind: "users", ID: "a", Data: raw(`{"id":"a"}`)},
		{Op: OpPut, Kind: "users", ID: "b", Data: raw(`{"id":"a"}`)},
	})
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *ApplyError", err)
	}
	if ae.Index != 1 || ae.Op != OpPut || ae.Kind != "users" || ae.ID != "b" {
		t.Errorf("got %+v, want op 1 put users/b", *ae)
	}
}

func TestApplyDoesNotModifyItsInputs(t *testing.T) {
	doc := []byte(`{"users":[{"id":"a"},{"id":"b"}],"account":{"id":"x"}}`)
	ops := []Op{
		{Op: OpDelete, Kind: "users", ID: "a"},
		{Op: OpPut, Kind: "users", ID: "b", Data: raw(`{"id":"b","v":2}`)},
		{Op: OpSet, Kind: "account", Data: raw(`{"id":"y"}`)},
	}
	docCopy := bytes.Clone(doc)
	opsCopy, _ := json.Marshal(ops)
	if _, err := Apply(doc, ops); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, docCopy) {
		t.Errorf("doc changed: %s", doc)
	}
	if after, _ := json.Marshal(ops); !bytes.Equal(after, opsCopy) {
		t.Errorf("ops changed: %s", after)
	}
}

// TestApplyDemo puts every user of the reference snapshot back unchanged,
// deletes one, and checks the rest of the document survives as it was.
func TestApplyDemo(t *testing.T) {
	demo, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatalf("read the reference snapshot: %v", err)
	}
	var snap struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(demo, &snap); err != nil {
		t.Fatal(err)
	}
	var ops []Op
	for _, u := range snap.Users {
		var k struct{ ID string }
		_ = json.Unmarshal(u, &k)
		ops = append(ops, Op{Op: OpPut, Kind: "users", ID: k.ID, Data: u})
	}
	same, err := Apply(demo, ops)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = json.Compact(&want, demo)
	if !bytes.Equal(same, want.Bytes()) {
		t.Errorf("putting every user back changed the document")
	}
	var first struct{ ID string }
	_ = json.Unmarshal(snap.Users[0], &first)
	less, err := Apply(demo, []Op{{Op: OpDelete, Kind: "users", ID: first.ID}})
	if err != nil {
		t.Fatal(err)
	}
	var after struct {
		Users []json.RawMessage `json:"users"`
	}
	_ = json.Unmarshal(less, &after)
	if len(after.Users) != len(snap.Users)-1 {
		t.Errorf("after delete: %d users, want %d", len(after.Users), len(snap.Users)-1)
	}
}

func TestSetRevision(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"revision": 3, "a": 1}`, `{"revision":42,"a":1}`},
		{`{"a": 1, "revision": 3}`, `{"a":1,"revision":42}`},
		{`{"a": 1}`, `{"revision":42,"a":1}`},
		{`{}`, `{"revision":42}`},
	}
	for _, tt := range tests {
		got, err := SetRevision([]byte(tt.doc), 42)
		if err != nil {
			t.Fatalf("SetRevision(%s): %v", tt.doc, err)
		}
		if string(got) != tt.want {
			t.Errorf("SetRevision(%s) = %s, want %s", tt.doc, got, tt.want)
		}
	}
	if _, err := SetRevision([]byte(`"x"`), 1); !errors.Is(err, ErrBadDocument) {
		t.Errorf("SetRevision of a string: %v, want ErrBadDocument", err)
	}
}
