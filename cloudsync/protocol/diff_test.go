package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// opLine is an op without its data, for compact expectations.
func opLine(o Op) string {
	s := o.Op + " " + o.Kind
	if o.ID != "" {
		s += " " + o.ID
	}
	if o.Op != OpDelete {
		s += " " + string(o.Data)
	}
	return s
}

func opLines(ops []Op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = opLine(o)
	}
	return out
}

func TestDiffTable(t *testing.T) {
	base := `{"revision": 4, "account": {"id": "acme", "name": "Acme"},
		"users": [{"id": "u-a", "name": "A"}, {"id": "u-b", "name": "B"}, {"id": "u-c", "name": "C"}],
		"numbers": [{"number": "+1650", "site": "hq"}],
		"admins": [{"username": "admin", "role": "admin"}],
		"callout": {"greeting_prompt": "hi", "require_press_1": true},
		"embed": {"allowed_origins": ["https://a.example"]}}`
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{name: "identical", old: base, new: base},
		{name: "revision only", old: base, new: strings.Replace(base, `"revision": 4`, `"revision": 9`, 1)},
		{name: "formatting and key order",
			old: `{"users": [{"id": "u-a", "name": "A", "numbers": [1, 2.0]}], "embed": {"allowed_origins": []}}`,
			new: "{\"embed\":{\"allowed_origins\":[]},\n\"users\":[{\"name\":\"A\",\"numbers\":[1.0,2e0],\"id\":\"u-a\"}]}"},
		{name: "put new in new order, deletes in old order",
			old:  `{"users": [{"id": "u-a"}, {"id": "u-b"}, {"id": "u-c"}]}`,
			new:  `{"users": [{"id": "u-z"}, {"id": "u-b"}, {"id": "u-y"}]}`,
			want: []string{`delete users u-a`, `delete users u-c`, `put users u-z {"id":"u-z"}`, `put users u-y {"id":"u-y"}`}},
		{name: "changed object",
			old:  `{"users": [{"id": "u-a", "name": "A"}, {"id": "u-b", "name": "B"}]}`,
			new:  `{"users": [{"id": "u-a", "name": "A"}, {"id": "u-b", "name": "Bee"}]}`,
			want: []string{`put users u-b {"id":"u-b","name":"Bee"}`}},
		{name: "data is compacted, as written",
			old:  `{"sdgs": []}`,
			new:  `{"sdgs": [ { "id" : "s-1", "route": {"type": "user", "id": "u-a"} } ]}`,
			want: []string{`put sdgs s-1 {"id":"s-1","route":{"type":"user","id":"u-a"}}`}},
		{name: "numbers by number, admins by username",
			old: `{"numbers": [{"number": "+1", "site": "hq"}], "admins": [{"username": "root", "role": "admin"}]}`,
			new: `{"numbers": [{"number": "+2", "site": "hq"}], "admins": [{"username": "root", "role": "viewer"}]}`,
			want: []string{`delete numbers +1`, `put numbers +2 {"number":"+2","site":"hq"}`,
				`put admins root {"username":"root","role":"viewer"}`}},
		{name: "prompts by name, after embed",
			old:  `{"prompts": [{"name": "main-menu", "blob": "b1"}, {"name": "goodbye", "blob": "b2"}], "embed": {"x": 1}}`,
			new:  `{"embed": {"x": 2}, "prompts": [{"name": "main-menu", "blob": "b3"}]}`,
			want: []string{`set embed {"x":2}`, `delete prompts goodbye`, `put prompts main-menu {"name":"main-menu","blob":"b3"}`}},
		{name: "kinds in fixed order",
			old: `{"embed": {"x": 1}, "callout": {"x": 1}, "trunks": [], "account": {"x": 1}, "sites": []}`,
			new: `{"embed": {"x": 2}, "callout": {"x": 2}, "trunks": [{"id": "t"}], "account": {"x": 2}, "sites": [{"id": "s"}]}`,
			want: []string{`set account {"x":2}`, `put sites s {"id":"s"}`, `put trunks t {"id":"t"}`,
				`set callout {"x":2}`, `set embed {"x":2}`}},
		{name: "null and absent collections are empty",
			old:  `{"users": null}`,
			new:  `{"users": [{"id": "u-a"}], "sdgs": null}`,
			want: []string{`put users u-a {"id":"u-a"}`}},
		{name: "collection emptied",
			old:  `{"trunks": [{"id": "t1"}, {"id": "t2"}]}`,
			new:  `{}`,
			want: []string{`delete trunks t1`, `delete trunks t2`}},
		{name: "singleton removed is set to null",
			old:  `{"callout": {"greeting_prompt": "hi"}}`,
			new:  `{}`,
			want: []string{`set callout null`}},
		{name: "singleton added",
			old:  `{}`,
			new:  `{"embed": {"allowed_origins": ["https://b.example"]}}`,
			want: []string{`set embed {"allowed_origins":["https://b.example"]}`}},
		{name: "unknown keys after the known ones, sorted; an array of objects with ids is a collection",
			old:  `{"zeta": 1, "devices": [{"id": "d1", "v": 1}, {"id": "d2"}], "alpha": "x"}`,
			new:  `{"zeta": 2, "devices": [{"id": "d1", "v": 2}], "alpha": "x", "beta": [1, 2]}`,
			want: []string{`set beta [1,2]`, `delete devices d2`, `put devices d1 {"id":"d1","v":2}`, `set zeta 2`}},
		{name: "unknown key changing shape is a singleton",
			old:  `{"devices": [{"id": "d1"}]}`,
			new:  `{"devices": {"id": "d1"}}`,
			want: []string{`set devices {"id":"d1"}`}},
		{name: "unknown array without ids is a singleton",
			old:  `{"tags": [{"name": "a"}]}`,
			new:  `{"tags": [{"name": "b"}]}`,
			want: []string{`set tags [{"name":"b"}]`}},
		{name: "empty old puts everything in order",
			old:  ``,
			new:  `{"revision": 1, "account": {"id": "a"}, "users": [{"id": "u-2"}, {"id": "u-1"}], "embed": {}}`,
			want: []string{`set account {"id":"a"}`, `put users u-2 {"id":"u-2"}`, `put users u-1 {"id":"u-1"}`, `set embed {}`}},
		{name: "big integers are compared exactly",
			old:  `{"account": {"n": 9007199254740993}}`,
			new:  `{"account": {"n": 9007199254740992}}`,
			want: []string{`set account {"n":9007199254740992}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := Diff([]byte(tt.old), []byte(tt.new))
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if got := opLines(ops); !slices.Equal(got, tt.want) {
				t.Errorf("ops:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDiffErrors(t *testing.T) {
	for _, tt := range []struct{ name, old, new, want string }{
		{"new not an object", `{}`, `[1]`, "new document"},
		{"new null", `{}`, `null`, "new document is null"},
		{"old bad json", `{"users": [`, `{}`, "old document"},
		{"collection not an array", `{}`, `{"users": {"id": "u"}}`, "users: want an array"},
		{"element not an object", `{}`, `{"users": [1]}`, "users[0]: not a JSON object"},
		{"missing key", `{"numbers": [{"site": "hq"}]}`, `{}`, `numbers[0]: has no "number"`},
		{"empty key", `{}`, `{"admins": [{"username": ""}]}`, `admins[0]: "username" is empty`},
		{"key not a string", `{}`, `{"sites": [{"id": 7}]}`, `sites[0]: "id" is not a string`},
		{"duplicate key", `{}`, `{"users": [{"id": "u"}, {"id": "u"}]}`, `users[1]: id "u" is already used by users[0]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Diff([]byte(tt.old), []byte(tt.new))
			if !errors.Is(err, ErrDiffInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrDiffInput mentioning %q", err, tt.want)
			}
		})
	}
}

// editAccount makes random edits to s, driven by script: each byte picks
// an edit. New objects are appended, as the cloud appends them, so a
// model applied to the ops must give back the new document exactly.
func editAccount(s *account.Snapshot, script []byte) {
	pick := func(b byte, n int) int { return int(b) % n }
	for i, b := range script {
		k := int(b) + i
		switch b % 16 {
		case 0: // add a user
			u := account.User{ID: fmt.Sprintf("u-new-%d", i), Site: "hq", Name: "New", Extension: fmt.Sprint(7000 + i), Numbers: []string{}}
			s.Users = append(s.Users, u)
		case 1: // remove a user
			if len(s.Users) > 0 {
				s.Users = slices.Delete(s.Users, pick(b, len(s.Users)), pick(b, len(s.Users))+1)
			}
		case 2: // rename a user
			if len(s.Users) > 0 {
				s.Users[pick(b, len(s.Users))].Name = fmt.Sprintf("Renamed %d", k)
			}
		case 3: // change a user's numbers
			if len(s.Users) > 0 {
				u := &s.Users[pick(b, len(s.Users))]
				u.Numbers = append(slices.Clone(u.Numbers), fmt.Sprintf("+1650555%04d", k))
			}
		case 4: // remove an SDG
			if len(s.SDGs) > 0 {
				s.SDGs = slices.Delete(s.SDGs, pick(b, len(s.SDGs)), pick(b, len(s.SDGs))+1)
			}
		case 5: // re-route an SDG
			if len(s.SDGs) > 0 {
				s.SDGs[pick(b, len(s.SDGs))].Route = &account.Route{Type: account.RouteNumber, Number: fmt.Sprintf("+1202555%04d", k)}
			}
		case 6: // add a number
			s.Numbers = append(s.Numbers, account.Number{Number: fmt.Sprintf("+1999555%04d", i), Site: "hq",
				Route: &account.Route{Type: account.RouteNumber, Number: "+12025550100"}})
		case 7: // remove a number
			if len(s.Numbers) > 0 {
				s.Numbers = slices.Delete(s.Numbers, pick(b, len(s.Numbers)), pick(b, len(s.Numbers))+1)
			}
		case 8: // reweigh a trunk
			if len(s.Trunks) > 0 {
				s.Trunks[pick(b, len(s.Trunks))].Weight = k
			}
		case 9:
			s.Callout.GreetingPrompt = fmt.Sprintf("greeting-%d", k)
		case 10:
			s.Embed.AllowedOrigins = append(slices.Clone(s.Embed.AllowedOrigins), fmt.Sprintf("https://o%d.example", k))
		case 11:
			s.Account.Name = fmt.Sprintf("Acme %d", k)
		case 12: // add an admin
			s.Admins = append(s.Admins, account.Admin{Username: fmt.Sprintf("ops%d", i), Role: account.RoleAdmin})
		case 13: // rename a site
			if len(s.Sites) > 0 {
				s.Sites[pick(b, len(s.Sites))].Name = fmt.Sprintf("Site %d", k)
			}
		case 14: // a no-op edit: the same value written again
			if len(s.Users) > 0 {
				u := &s.Users[pick(b, len(s.Users))]
				u.Name = strings.Clone(u.Name)
			}
		case 15:
			s.Revision++
		}
	}
}

// cloneSnapshot deep-copies s through its encoding.
func cloneSnapshot(t testing.TB, s *account.Snapshot) *account.Snapshot {
	t.Helper()
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := account.DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectCollection is what Diff must emit for one collection, worked out
// from the typed objects: deletes in old order, then puts of new or
// changed objects in new order.
func expectCollection[T any](kind string, old, new []T, key func(T) string) []string {
	oldBy := make(map[string]T, len(old))
	for _, o := range old {
		oldBy[key(o)] = o
	}
	newKeys := make(map[string]bool, len(new))
	for _, n := range new {
		newKeys[key(n)] = true
	}
	var want []string
	for _, o := range old {
		if !newKeys[key(o)] {
			want = append(want, "delete "+kind+" "+key(o))
		}
	}
	for _, n := range new {
		if o, ok := oldBy[key(n)]; !ok || !reflect.DeepEqual(o, n) {
			want = append(want, "put "+kind+" "+key(n))
		}
	}
	return want
}

func expectSingleton(kind string, old, new any) []string {
	if reflect.DeepEqual(old, new) {
		return nil
	}
	return []string{"set " + kind}
}

// expectedOps is the op sequence (without data) Diff must give for old ->
// new: exactly the changed objects, nothing for unchanged ones.
func expectedOps(old, new *account.Snapshot) []string {
	var want []string
	want = append(want, expectSingleton("account", old.Account, new.Account)...)
	want = append(want, expectCollection("sites", old.Sites, new.Sites, func(s account.Site) string { return s.ID })...)
	want = append(want, expectCollection("users", old.Users, new.Users, func(u account.User) string { return u.ID })...)
	want = append(want, expectCollection("sdgs", old.SDGs, new.SDGs, func(g account.SDG) string { return g.ID })...)
	want = append(want, expectCollection("numbers", old.Numbers, new.Numbers, func(n account.Number) string { return n.Number })...)
	want = append(want, expectCollection("trunks", old.Trunks, new.Trunks, func(t account.Trunk) string { return t.ID })...)
	want = append(want, expectSingleton("callout", old.Callout, new.Callout)...)
	want = append(want, expectCollection("admins", old.Admins, new.Admins, func(a account.Admin) string { return a.Username })...)
	want = append(want, expectSingleton("embed", old.Embed, new.Embed)...)
	return want
}

// modelApply applies ops to a decoded document the way the protocol says
// (put replaces in place or appends, delete removes, set replaces), to
// check that Diff's ops are complete. It is a test model, not Apply.
func modelApply(t testing.TB, doc []byte, ops []Op) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	keyField := func(kind string) string {
		if f, ok := diffCollectionKeys[kind]; ok {
			return f
		}
		return diffUnknownKey
	}
	for _, op := range ops {
		var data any
		if len(op.Data) > 0 {
			if err := json.Unmarshal(op.Data, &data); err != nil {
				t.Fatalf("op %s: data: %v", opLine(op), err)
			}
		}
		if op.Op == OpSet {
			m[op.Kind] = data
			continue
		}
		list, _ := m[op.Kind].([]any)
		at := slices.IndexFunc(list, func(e any) bool { return e.(map[string]any)[keyField(op.Kind)] == op.ID })
		switch {
		case op.Op == OpDelete && at >= 0:
			list = slices.Delete(list, at, at+1)
		case op.Op == OpDelete:
			t.Fatalf("delete of %s %q, which old does not hold", op.Kind, op.ID)
		case op.Op == OpPut && at >= 0:
			list[at] = data
		case op.Op == OpPut:
			list = append(list, data)
		default:
			t.Fatalf("unknown op %q", op.Op)
		}
		m[op.Kind] = list
	}
	return m
}

// checkDiff runs every property of Diff on one pair of snapshots.
func checkDiff(t *testing.T, old, new *account.Snapshot) {
	t.Helper()
	oldDoc, err := old.Encode()
	if err != nil {
		t.Fatal(err)
	}
	newDoc, err := new.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := Diff(oldDoc, newDoc)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}

	// Minimal and in order: exactly the changed objects.
	got := make([]string, len(ops))
	for i, o := range ops {
		got[i] = o.Op + " " + o.Kind
		if o.ID != "" {
			got[i] += " " + o.ID
		}
	}
	if want := expectedOps(old, new); !slices.Equal(got, want) {
		t.Fatalf("ops:\n got %q\nwant %q", got, want)
	}

	// Complete: the ops turn old into new.
	applied := modelApply(t, oldDoc, ops)
	var wantDoc map[string]any
	if err := json.Unmarshal(newDoc, &wantDoc); err != nil {
		t.Fatal(err)
	}
	applied["revision"], wantDoc["revision"] = nil, nil
	if !reflect.DeepEqual(applied, wantDoc) {
		a, _ := json.Marshal(applied)
		t.Fatalf("applying the ops does not give the new document:\n got %.600s\nwant %.600s", a, newDoc)
	}
	// And so does Apply, the appliance's.
	byApply, err := Apply(oldDoc, ops)
	if err != nil {
		t.Fatalf("Apply(old, Diff(old, new)): %v", err)
	}
	var gotDoc map[string]any
	if err := json.Unmarshal(byApply, &gotDoc); err != nil {
		t.Fatal(err)
	}
	gotDoc["revision"] = nil
	if !reflect.DeepEqual(gotDoc, wantDoc) {
		t.Fatalf("Apply(old, Diff(old, new)) is not new:\n got %.600s\nwant %.600s", byApply, newDoc)
	}

	// Formatting makes no difference, and Diff is deterministic.
	var indented bytes.Buffer
	if err := json.Indent(&indented, newDoc, "", "\t"); err != nil {
		t.Fatal(err)
	}
	again, err := Diff(oldDoc, indented.Bytes())
	if err != nil {
		t.Fatalf("Diff (indented): %v", err)
	}
	if !reflect.DeepEqual(ops, again) {
		t.Fatalf("an indented new document gives other ops:\n%q\n%q", opLines(ops), opLines(again))
	}
	if self, err := Diff(newDoc, indented.Bytes()); err != nil || len(self) != 0 {
		t.Fatalf("Diff of a document with itself = %q, %v; want nothing", opLines(self), err)
	}
}

func TestDiffGeneratedAccounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for seed := range uint64(40) {
		o := account.GenerateOptions{
			Users: 5 + rng.IntN(60), SDGs: rng.IntN(12), Trunks: rng.IntN(6),
			Numbers: rng.IntN(80), Sites: 1 + rng.IntN(3), Seed: seed,
		}
		old := account.Generate(o)
		script := make([]byte, 1+rng.IntN(12))
		for i := range script {
			script[i] = byte(rng.IntN(256))
		}
		t.Run(fmt.Sprintf("seed=%d/script=%x", seed, script), func(t *testing.T) {
			new := cloneSnapshot(t, old)
			editAccount(new, script)
			checkDiff(t, old, new)
		})
	}
	t.Run("different generations", func(t *testing.T) {
		// Two unrelated accounts: users, SDGs... mostly replaced.
		a := account.Generate(account.GenerateOptions{Users: 50, SDGs: 8, Trunks: 3, Numbers: 70, Seed: 1})
		b := account.Generate(account.GenerateOptions{Users: 30, SDGs: 10, Trunks: 5, Numbers: 40, Seed: 2})
		checkDiff(t, a, b)
		checkDiff(t, b, a)
	})
	t.Run("from empty", func(t *testing.T) {
		s := account.Generate(account.GenerateOptions{Users: 20, SDGs: 4, Trunks: 2, Numbers: 25, Seed: 3})
		doc, _ := s.Encode()
		ops, err := Diff(nil, doc)
		if err != nil {
			t.Fatal(err)
		}
		// account, sites, users, sdgs, numbers, trunks, callout, admins, embed
		want := 1 + len(s.Sites) + len(s.Users) + len(s.SDGs) + len(s.Numbers) + len(s.Trunks) + 1 + len(s.Admins) + 1
		if len(ops) != want {
			t.Errorf("Diff(empty, account) = %d ops, want %d", len(ops), want)
		}
	})
}

// FuzzDiffEdits checks Diff's properties on a generated account and the
// edits the script describes.
func FuzzDiffEdits(f *testing.F) {
	f.Add(uint64(1), []byte{0, 1, 2})
	f.Add(uint64(7), []byte{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add(uint64(3), []byte{})
	f.Fuzz(func(t *testing.T, seed uint64, script []byte) {
		if len(script) > 64 {
			script = script[:64]
		}
		old := account.Generate(account.GenerateOptions{Users: 12, SDGs: 4, Trunks: 2, Numbers: 16, Seed: seed})
		new := cloneSnapshot(t, old)
		editAccount(new, script)
		checkDiff(t, old, new)
	})
}

// FuzzDiffJSON feeds Diff arbitrary documents: it must not panic, must be
// deterministic, and a document compared with itself gives nothing.
func FuzzDiffJSON(f *testing.F) {
	f.Add([]byte(`{"users":[{"id":"a"}],"x":1}`), []byte(`{"users":[{"id":"b"}],"x":[{"id":"c"}]}`))
	f.Add([]byte(`{}`), []byte(`{"numbers":[{"number":"+1"}]}`))
	f.Add([]byte(`[]`), []byte(`{"callout":null}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ops, err := Diff(a, b)
		if err != nil {
			if !errors.Is(err, ErrDiffInput) {
				t.Fatalf("error does not wrap ErrDiffInput: %v", err)
			}
			return
		}
		again, _ := Diff(a, b)
		if !reflect.DeepEqual(ops, again) {
			t.Fatalf("not deterministic")
		}
		if self, err := Diff(b, b); err != nil || len(self) != 0 {
			t.Fatalf("Diff(b, b) = %q, %v", opLines(self), err)
		}
	})
}
