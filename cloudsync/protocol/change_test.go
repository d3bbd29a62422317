package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// sameAsApply checks the appliance's way of applying ops (ApplySnapshot on
// the decoded snapshot) against the reference (Apply on the document, then
// decode): both succeed with equal snapshots, or ApplySnapshot fails.
// ApplySnapshot may refuse what Apply takes only when decoding Apply's
// document fails too (data the snapshot model cannot hold), or when an op
// does not decode (a malformed op a later op of the batch deletes).
func sameAsApply(t *testing.T, doc []byte, ops []Op) (applied bool) {
	t.Helper()
	base, err := account.DecodeBytes(doc)
	if err != nil {
		return false
	}
	before, _ := base.Encode()
	got, gotErr := ApplySnapshot(base, ops)
	if after, _ := base.Encode(); string(after) != string(before) {
		t.Fatalf("ApplySnapshot changed the snapshot it was given")
	}
	if upperKeys(doc) || slices.ContainsFunc(ops, func(o Op) bool { return upperKeys(o.Data) }) {
		// Go's decoder matches object keys case-insensitively, Apply's
		// edits match them exactly: for keys outside the contract (which
		// are all lower case) the two may differ. Neither may panic.
		return false
	}
	if _, decErr := DecodeOps(ops); decErr != nil {
		// A malformed op is refused whole by the appliance, even when a
		// later op of the batch deletes what it put (Apply, which edits
		// JSON, then never sees it): stricter, never looser.
		if gotErr == nil {
			t.Fatalf("ApplySnapshot took ops that do not decode (%v)\nops: %s", decErr, mustJSON(t, ops))
		}
		return false
	}
	wantDoc, applyErr := Apply(doc, ops)
	var want *account.Snapshot
	wantErr := applyErr
	if applyErr == nil {
		want, wantErr = account.DecodeBytes(wantDoc)
	}
	switch {
	case gotErr != nil && wantErr == nil:
		t.Fatalf("ApplySnapshot refused what Apply takes: %v\nops: %s", gotErr, mustJSON(t, ops))
	case gotErr == nil && wantErr != nil:
		t.Fatalf("ApplySnapshot took what Apply refuses (%v)\nops: %s", wantErr, mustJSON(t, ops))
	case gotErr != nil:
		var ae *ApplyError
		if !errors.As(gotErr, &ae) && !errors.Is(gotErr, account.ErrBadChange) {
			t.Fatalf("ApplySnapshot error %v is neither an *ApplyError nor ErrBadChange", gotErr)
		}
		return false
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := got.Encode()
		w, _ := want.Encode()
		t.Fatalf("ApplySnapshot and Apply differ\nops: %s\n got %.2000s\nwant %.2000s", mustJSON(t, ops), g, w)
	}
	return true
}

// upperKeys reports whether a JSON document has an object key with an
// upper-case letter anywhere.
func upperKeys(data []byte) bool {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if strings.ToLower(k) != k || walk(e) {
					return true
				}
			}
		case []any:
			return slices.ContainsFunc(v, walk)
		}
		return false
	}
	return walk(v)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplySnapshotMatchesApply applies random op lists (puts of changed
// and new objects, deletes, sets, and some that cannot apply) both ways.
func TestApplySnapshotMatchesApply(t *testing.T) {
	s := account.Generate(account.GenerateOptions{Users: 30, Numbers: 50, SDGs: 8, Trunks: 3, Sites: 2})
	doc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	applied := 0
	for round := range 400 {
		var ops []Op
		for range 1 + rng.IntN(6) {
			ops = append(ops, randomOp(t, rng, s, round))
		}
		if sameAsApply(t, doc, ops) {
			applied++
		}
	}
	if applied < 100 {
		t.Errorf("only %d of 400 random op lists applied; the generator should mostly make good ones", applied)
	}
}

// randomOp makes one op on s: mostly good, sometimes not.
func randomOp(t *testing.T, rng *rand.Rand, s *account.Snapshot, round int) Op {
	t.Helper()
	put := func(kind, id string, v any) Op { return Op{Op: OpPut, Kind: kind, ID: id, Data: mustJSON(t, v)} }
	switch rng.IntN(15) {
	case 0: // rename a user
		u := s.Users[rng.IntN(len(s.Users))]
		u.Name = fmt.Sprintf("Renamed %d", round)
		return put("users", u.ID, u)
	case 1: // a new user
		u := s.Users[rng.IntN(len(s.Users))]
		u.ID = fmt.Sprintf("u-new-%d", rng.IntN(3))
		u.Extension, u.Numbers, u.SIP.Username = "", nil, u.ID
		return put("users", u.ID, u)
	case 2:
		return Op{Op: OpDelete, Kind: "users", ID: s.Users[rng.IntN(len(s.Users))].ID}
	case 3:
		n := s.Numbers[rng.IntN(len(s.Numbers))]
		return Op{Op: OpDelete, Kind: "numbers", ID: n.Number}
	case 4:
		g := s.SDGs[rng.IntN(len(s.SDGs))]
		g.Name = fmt.Sprintf("Group %d", round)
		return put("sdgs", g.ID, g)
	case 5:
		tr := s.Trunks[rng.IntN(len(s.Trunks))]
		tr.Codecs = nil
		return put("trunks", tr.ID, tr)
	case 6:
		return Op{Op: OpSet, Kind: "embed", Data: json.RawMessage(`{"allowed_origins":null}`)}
	case 7:
		c := s.Callout
		c.RequirePress1 = !c.RequirePress1
		return Op{Op: OpSet, Kind: "callout", Data: mustJSON(t, c)}
	case 8: // a site with null lists
		site := s.Sites[rng.IntN(len(s.Sites))]
		site.Emergency.ELINPool = nil
		return put("sites", site.ID, site)
	case 9: // cannot apply: a delete of nothing
		return Op{Op: OpDelete, Kind: "trunks", ID: "t-none"}
	case 12, 13: // a custom prompt put, replaced or deleted (the extension)
		p := account.Prompt{Name: fmt.Sprintf("menu-%d", rng.IntN(3)), Blob: fmt.Sprintf("blob-%d", round),
			SHA256: fmt.Sprintf("%064x", round)}
		if rng.IntN(3) == 0 {
			return Op{Op: OpDelete, Kind: "prompts", ID: p.Name}
		}
		return put("prompts", p.Name, p)
	case 10: // cannot apply: an unknown field
		return Op{Op: OpPut, Kind: "admins", ID: "root", Data: json.RawMessage(`{"username":"root","shell":"/bin/sh"}`)}
	case 14: // cannot apply: a prompt set whole, or with an unknown field
		if rng.IntN(2) == 0 {
			return Op{Op: OpSet, Kind: "prompts", Data: json.RawMessage(`[]`)}
		}
		return Op{Op: OpPut, Kind: "prompts", ID: "x", Data: json.RawMessage(`{"name":"x","url":"http://x"}`)}
	default: // cannot apply: key and id disagree
		u := s.Users[0]
		return put("users", "u-other", u)
	}
}

// FuzzApplySnapshot: for any document and ops, the appliance's way of
// applying them agrees with Apply's (see sameAsApply).
func FuzzApplySnapshot(f *testing.F) {
	demo, err := os.ReadFile(demoPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo, []byte(`[{"op":"delete","kind":"users","id":"u-alice"},{"op":"set","kind":"embed","data":{"allowed_origins":[]}}]`))
	f.Add(demo, []byte(`[{"op":"put","kind":"admins","id":"x","data":{"username":"x","role":"admin","bcrypt":""}},{"op":"delete","kind":"admins","id":"x"}]`))
	f.Add(demo, []byte(`[{"op":"set","kind":"account","data":null},{"op":"put","kind":"numbers","id":"+1","data":null}]`))
	f.Add(demo, []byte(`[{"op":"put","kind":"users","id":"u","data":{"id":"u"} }]`))
	f.Add(demo, []byte(`[{"op":"set","kind":"revision","data":3}]`))
	f.Add([]byte(`{"users":null}`), []byte(`[{"op":"put","kind":"users","id":"a","data":{"id":"a","numbers":null}}]`))
	f.Add(demo, []byte(`[{"op":"put","kind":"prompts","id":"m","data":{"name":"m","blob":"b","sha256":"s"}},{"op":"delete","kind":"prompts","id":"m"}]`))
	f.Add([]byte(`{"prompts":null}`), []byte(`[{"op":"put","kind":"prompts","id":"m","data":{"name":"m"}}]`))
	f.Fuzz(func(t *testing.T, doc, opsJSON []byte) {
		var ops []Op
		if json.Unmarshal(opsJSON, &ops) != nil {
			return
		}
		sameAsApply(t, doc, ops)
	})
}
