package account

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeValidate feeds arbitrary bytes through DecodeBytes and Validate.
// Neither may panic; a document that validates must survive Encode and
// DecodeBytes unchanged and still validate. Seeds: the reference snapshot,
// mutations of it below, and testdata/fuzz/FuzzDecodeValidate.
func FuzzDecodeValidate(f *testing.F) {
	demo := string(demoBytes(f))
	f.Add([]byte(demo))
	for _, m := range [][2]string{
		{`"revision": 1`, `"revision": 0`},
		{`"id": "sdg-operator"`, `"id": "sdg-frontdesk"`}, // a loop
		{`"type": "user"`, `"type": "voicemail"`},
		{`"extension": "1002"`, `"extension": "1001"`},
		{`"+16505550102"`, `"+16505550101"`},
		{`"ring_timeout_s": 20`, `"ring_timeout_s": 20.5`},
		{`"port": 5090`, `"port": "5090"`},
		{`"transport": "udp"`, `"transport": "udp", "srv": true`},
		{`"options": {`, `"options": {"10": {"type": "user", "id": "u-bob"},`},
		{`"no_input": {`, `"no_input": null, "x": {`},
	} {
		f.Add([]byte(strings.Replace(demo, m[0], m[1], 1)))
	}
	end := strings.LastIndexByte(demo, '}')
	for _, p := range []string{`[]`, `[{"name": "main-menu", "blob": "b-1", "sha256": "` + strings.Repeat("ab", 32) + `"}]`} {
		f.Add([]byte(demo[:end] + `, "prompts": ` + p + "}"))
	}
	f.Add([]byte(demo[:len(demo)/3]))
	f.Add([]byte(demo + "{}"))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeBytes(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := Validate(s, 0); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Validate returned %T %v, want a *ValidationError with problems", err, err)
			}
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("encode a valid snapshot: %v", err)
		}
		again, err := DecodeBytes(enc)
		if err != nil {
			t.Fatalf("decode an encoded valid snapshot: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("encode/decode changed a valid snapshot:\n%s", enc)
		}
		if err := Validate(again, 0); err != nil {
			t.Fatalf("re-decoded snapshot no longer validates: %v", err)
		}
	})
}
