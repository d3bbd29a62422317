package account

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const (
	shaA = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	shaB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func TestRulesPrompts(t *testing.T) {
	set := func(ps ...Prompt) func(s *Snapshot) {
		return func(s *Snapshot) { s.Prompts = ps }
	}
	runRuleCases(t, []ruleCase{
		{name: "absent", mutate: set()},
		{name: "empty list", mutate: func(s *Snapshot) { s.Prompts = []Prompt{} }},
		{name: "one", mutate: set(Prompt{Name: "main-menu", Blob: shaA, SHA256: shaA})},
		{name: "names a prompt no route uses", mutate: set(Prompt{Name: "holiday/closed", Blob: "b-1", SHA256: shaA})},
		{name: "two names, one blob", mutate: set(Prompt{Name: "main-menu", Blob: "b-1", SHA256: shaA},
			Prompt{Name: "callout-greeting", Blob: "b-1", SHA256: shaA})},
		{name: "name missing", mutate: set(Prompt{Blob: "b", SHA256: shaA}),
			want: []string{"prompts[0].name"}, msg: "required"},
		{name: "name malformed", mutate: set(Prompt{Name: "/abs/path", Blob: "b", SHA256: shaA}),
			want: []string{"prompts[0].name"}, msg: "is not a prompt name"},
		{name: "name hidden", mutate: set(Prompt{Name: "menus/.x", Blob: "b", SHA256: shaA}),
			want: []string{"prompts[0].name"}},
		{name: "name twice", mutate: set(Prompt{Name: "main-menu", Blob: "b-1", SHA256: shaA},
			Prompt{Name: "goodbye", Blob: "b-2", SHA256: shaB}, Prompt{Name: "main-menu", Blob: "b-3", SHA256: shaB}),
			want: []string{"prompts[2].name"}, msg: "prompts[0]"},
		{name: "blob missing", mutate: set(Prompt{Name: "main-menu", SHA256: shaA}),
			want: []string{"prompts[0].blob"}, msg: "required"},
		{name: "blob with a slash", mutate: set(Prompt{Name: "main-menu", Blob: "../etc/passwd", SHA256: shaA}),
			want: []string{"prompts[0].blob"}, msg: "is not a blob id"},
		{name: "blob with a space", mutate: set(Prompt{Name: "main-menu", Blob: "a b", SHA256: shaA}),
			want: []string{"prompts[0].blob"}},
		{name: "blob hidden", mutate: set(Prompt{Name: "main-menu", Blob: ".tmp", SHA256: shaA}),
			want: []string{"prompts[0].blob"}},
		{name: "blob too long", mutate: set(Prompt{Name: "main-menu", Blob: strings.Repeat("b", MaxBlobIDLength+1), SHA256: shaA}),
			want: []string{"prompts[0].blob"}},
		{name: "blob at the limit", mutate: set(Prompt{Name: "main-menu", Blob: strings.Repeat("b", MaxBlobIDLength), SHA256: shaA})},
		{name: "sha256 missing", mutate: set(Prompt{Name: "main-menu", Blob: "b"}),
			want: []string{"prompts[0].sha256"}, msg: "required"},
		{name: "sha256 upper case", mutate: set(Prompt{Name: "main-menu", Blob: "b", SHA256: strings.ToUpper(shaA)}),
			want: []string{"prompts[0].sha256"}, msg: "lower-case hex"},
		{name: "sha256 short", mutate: set(Prompt{Name: "main-menu", Blob: "b", SHA256: shaA[:63]}),
			want: []string{"prompts[0].sha256"}},
		{name: "one blob, two hashes", mutate: set(Prompt{Name: "main-menu", Blob: "b-1", SHA256: shaA},
			Prompt{Name: "goodbye", Blob: "b-1", SHA256: shaB}),
			want: []string{"prompts[1].sha256"}, msg: "prompts[0]"},
		{name: "every field wrong, in order", mutate: set(Prompt{Name: "x y", Blob: "", SHA256: "z"}),
			want: []string{"prompts[0].name", "prompts[0].blob", "prompts[0].sha256"}},
		{name: "after embed", mutate: func(s *Snapshot) {
			s.Prompts = []Prompt{{Name: "main-menu", Blob: "b"}}
			s.Embed.AllowedOrigins = []string{"not an origin"}
		}, want: []string{"embed.allowed_origins[0]", "prompts[0].sha256"}},
	})
}

// contractSnapshot is the snapshot as shared/CONTRACT.md has it, without
// the extension: what the demo encoded to before prompts existed.
type contractSnapshot struct {
	Revision int64    `json:"revision"`
	Account  Account  `json:"account"`
	Sites    []Site   `json:"sites"`
	Users    []User   `json:"users"`
	SDGs     []SDG    `json:"sdgs"`
	Numbers  []Number `json:"numbers"`
	Trunks   []Trunk  `json:"trunks"`
	Callout  Callout  `json:"callout"`
	Admins   []Admin  `json:"admins"`
	Embed    Embed    `json:"embed"`
}

func TestPromptsEncoding(t *testing.T) {
	s := demo(t)
	want, err := json.Marshal(contractSnapshot{s.Revision, s.Account, s.Sites, s.Users, s.SDGs, s.Numbers,
		s.Trunks, s.Callout, s.Admins, s.Embed})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]Prompt{nil, {}} {
		s.Prompts = ps
		got, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("the demo with prompts %#v encodes differently from the contract's snapshot:\n%s\nwant\n%s", ps, got, want)
		}
	}

	s.Prompts = []Prompt{{Name: "main-menu", Blob: shaA, SHA256: shaA}}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), `,"prompts":[{"name":"main-menu","blob":"`+shaA+`","sha256":"`+shaA+`"}]}`) {
		t.Errorf("prompts are not encoded last as {name, blob, sha256}:\n%s", data)
	}
	back, err := DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the snapshot:\n%s", data)
	}
	if err := Validate(back, 0); err != nil {
		t.Fatalf("the demo with a custom prompt: %v", err)
	}
}

// The encoding cannot tell no prompts from an empty list: decoding gives
// nil for both, so a snapshot survives Encode and DecodeBytes unchanged.
func TestDecodeEmptyPromptsIsNil(t *testing.T) {
	data := demoBytes(t)
	end := strings.LastIndexByte(string(data), '}')
	for _, v := range []string{`[]`, `null`} {
		doc := string(data[:end]) + `, "prompts": ` + v + `}`
		s, err := DecodeBytes([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if s.Prompts != nil {
			t.Errorf("prompts %s decode to %#v, want nil", v, s.Prompts)
		}
		enc, _ := s.Encode()
		again, err := DecodeBytes(enc)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Errorf("encode/decode changed the snapshot (%v)", err)
		}
	}
}

func TestDecodePromptsStrictly(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"prompts":[{"name":"main-menu","blob":"b","sha256":"x","url":"http://x"}]}`, "unknown field prompts[0].url"},
		{`{"prompts":{"name":"main-menu"}}`, "prompts: wrong type"},
	} {
		if _, err := DecodeBytes([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeBytes(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestWithChangesPrompts(t *testing.T) {
	s := demo(t)
	a := Prompt{Name: "main-menu", Blob: "b-1", SHA256: shaA}
	b := Prompt{Name: "goodbye", Blob: "b-2", SHA256: shaB}
	got, err := s.WithChanges([]Change{
		{Kind: KindPrompts, ID: a.Name, Value: a},
		{Kind: KindPrompts, ID: b.Name, Value: b},
		{Kind: KindPrompts, ID: a.Name, Value: Prompt{Name: a.Name, Blob: "b-3", SHA256: shaB}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Prompts != nil {
		t.Fatal("WithChanges modified the snapshot it was given")
	}
	want := []Prompt{{Name: a.Name, Blob: "b-3", SHA256: shaB}, b}
	if !reflect.DeepEqual(got.Prompts, want) {
		t.Errorf("prompts %+v, want %+v", got.Prompts, want)
	}
	gone, err := got.WithChanges([]Change{
		{Kind: KindPrompts, ID: a.Name, Delete: true},
		{Kind: KindPrompts, ID: b.Name, Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gone.Prompts != nil {
		t.Errorf("prompts after deleting both: %#v, want nil, as decoding the encoded snapshot gives", gone.Prompts)
	}
	for _, c := range []Change{
		{Kind: KindPrompts, ID: "none", Delete: true},
		{Kind: KindPrompts, ID: "other", Value: a},
		{Kind: KindPrompts, ID: a.Name, Value: s.Admins[0]},
	} {
		if _, err := s.WithChanges([]Change{c}); err == nil {
			t.Errorf("WithChanges took %+v", c)
		}
	}
}
