package account

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeDemoRoundTrip(t *testing.T) {
	data := demoBytes(t)
	s, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if s.Revision != 1 || s.Account.SIPRealm != "acme.example" || len(s.Users) != 5 || len(s.SDGs) != 4 {
		t.Fatalf("decoded demo looks wrong: revision %d realm %q users %d sdgs %d",
			s.Revision, s.Account.SIPRealm, len(s.Users), len(s.SDGs))
	}
	if got := s.SDGs[2].Route.Options["2"].ID; got != "sdg-branch-sales" {
		t.Errorf("sdgs[2].route.options.2.id = %q", got)
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := DecodeBytes(enc)
	if err != nil {
		t.Fatalf("decode the encoded demo: %v", err)
	}
	if !reflect.DeepEqual(s, again) {
		t.Errorf("encode/decode changed the snapshot")
	}
}

func TestDecodeMalformed(t *testing.T) {
	demo := string(demoBytes(t))
	cases := []struct {
		name string
		in   string
		want []string // substrings of the error message
	}{
		{"empty", "", []string{"document is empty"}},
		{"whitespace", " \n\t ", []string{"document is empty"}},
		{"null", "null", []string{"want a JSON object at line 1 column 1"}},
		{"array", "\n  []", []string{"want a JSON object at line 2 column 3"}},
		{"string", `"snapshot"`, []string{"want a JSON object"}},
		{"syntax error", "{\n  \"revision\": 1,\n  \"account\": {]\n}", []string{"invalid JSON at line 3 column 15"}},
		{"trailing comma", "{\"revision\": 1,}", []string{"invalid JSON at line 1 column 16"}},
		{"truncated", "{\n\"revision\": 1,\n\"account\": {\"id\": \"ac", []string{"ends early at line 3 column 22", "truncated"}},
		{"truncated demo", demo[:len(demo)/2], []string{"ends early at line"}},
		{"unknown top-level field", "{\"revision\": 1,\n  \"sitez\": []}", []string{"unknown field sitez at line 2 column 3"}},
		{"unknown nested field", "{\"revision\": 1,\n\"users\": [{}, {\"sip\": {\n   \"password\": \"pw\"}}]}",
			[]string{"unknown field users[1].sip.password at line 3 column 4"}},
		{"unknown route field", `{"sdgs":[{"route":{"type":"ivr","options":{"#":{"type":"user","user":"u"}}}}]}`,
			[]string{`unknown field sdgs[0].route.options.#.user at line 1 column 63`}},
		{"unknown field after a type error", `{"revision":"1","bogus":true}`, []string{"malformed snapshot"}},
		{"trailing object", "{}\n{}", []string{"unexpected data after the snapshot object at line 2 column 1"}},
		{"trailing garbage", "{} x", []string{"unexpected data after the snapshot object at line 1 column 4"}},
		{"trailing bracket", demo + "\n]", []string{"unexpected data after the snapshot object"}},
		{"wrong type", "{\n\"revision\": \"1\"}", []string{"revision: wrong type at line 2 column", "got JSON string, want int64"}},
		{"wrong nested type", `{"trunks":[{"port":"5060"}]}`, []string{"trunks.port: wrong type", "line 1 column"}},
		{"float for integer", `{"revision": 1.5}`, []string{"revision: wrong type", "number 1.5"}},
		{"object for list", `{"users": {}}`, []string{"users: wrong type"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DecodeBytes([]byte(tc.in))
			if err == nil {
				t.Fatalf("decoded %q without error: %+v", tc.in, s)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, err2 := Decode(strings.NewReader(tc.in)); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Decode and DecodeBytes disagree: %v / %v", err2, err)
			}
		})
	}
}

func TestDecodeOversized(t *testing.T) {
	// Spaces are valid JSON padding: only the size is wrong.
	r := io.MultiReader(strings.NewReader("{}"), io.LimitReader(spaces{}, MaxSnapshotBytes))
	_, err := Decode(r)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized document: %v", err)
	}
	if _, err := Decode(io.MultiReader(strings.NewReader(`{"revision":1}`), io.LimitReader(spaces{}, 1<<20))); err != nil {
		t.Fatalf("a document with 1 MiB of padding is fine: %v", err)
	}
}

type spaces struct{}

var spaceBlock = []byte(strings.Repeat(" ", 4096))

func (spaces) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		n += copy(p[n:], spaceBlock)
	}
	return len(p), nil
}

// TestDecodeEveryPrefix cuts the reference document at every byte: each
// prefix must fail to decode (or, were one ever complete, fail validation),
// and nothing may panic.
func TestDecodeEveryPrefix(t *testing.T) {
	doc := demoBytes(t)
	for n := range len(doc) {
		s, err := DecodeBytes(doc[:n])
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix %d: error %v does not wrap ErrMalformed", n, err)
			}
			continue
		}
		if Validate(s, 0) == nil {
			t.Fatalf("prefix %d of %d bytes decoded and validated", n, len(doc))
		}
	}
}
