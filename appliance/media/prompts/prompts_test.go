package prompts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/wav"
)

// The set the IVR, call-out, conference and voicemail features rely on.
var required = []string{
	"main-menu", "invalid-option", "no-input", "goodbye", "please-hold",
	"transferring", "callout-greeting", "not-available", "beep",
	"join-tone", "leave-tone", "vm-greeting-default", "vm-no-messages", "vm-menu",
	"conference-pin", "conference-pin-invalid", "conference-joining",
	MusicOnHold, "park-parked", "park-empty", "park-full",
}

func TestBuiltin(t *testing.T) {
	names := Names()
	for _, n := range required {
		if !slices.Contains(names, n) {
			t.Errorf("built-in prompt %q missing; run scripts/gen-prompts.sh", n)
		}
	}
	var total time.Duration
	for _, n := range names {
		p, err := Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		d := p.Duration()
		if n != MusicOnHold { // synthesized, not embedded
			total += d
		}
		if p.Name != n || p.Custom || d < 200*time.Millisecond || d > 8*time.Second {
			t.Errorf("%s: name %q custom %v duration %v, want a built-in of 0.2-8 s", n, p.Name, p.Custom, d)
		}
		peak := 0
		for _, s := range p.Samples {
			peak = max(peak, abs(int(s)))
		}
		if peak < 16000 && n != MusicOnHold { // the music is deliberately calmer (music_test.go)
			t.Errorf("%s: peak %d, want a normalised prompt", n, peak)
		}
	}
	if total > 70*time.Second { // 40 s before voicemail's and park's prompts (issue 12)
		t.Errorf("built-in prompts last %v in all; keep the set small", total)
	}
	if _, err := Builtin("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Builtin(nope) err = %v, want ErrUnknown", err)
	}
}

type blobMap map[string][]byte

func (m blobMap) Blob(id string) ([]byte, error) {
	b, ok := m[id]
	if !ok {
		return nil, errors.New("not synced")
	}
	return b, nil
}

type countingBlobs struct {
	blobMap
	calls int
}

func (c *countingBlobs) Blob(id string) ([]byte, error) {
	c.calls++
	return c.blobMap.Blob(id)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestLibrary(t *testing.T) {
	menu := wav.Encode([]int16{1, 2, 3, 4})
	greeting := wav.Encode([]int16{5, 6})
	blobs := &countingBlobs{blobMap: blobMap{"b-menu": menu, "b-greet": greeting, "b-junk": []byte("not a wav")}}
	lib := NewLibrary(blobs, nil)
	lib.SetCustom([]Custom{
		{Name: "menu-1", BlobID: "b-menu", SHA256: strings.ToUpper(sum(menu))},
		{Name: "callout-greeting", BlobID: "b-greet", SHA256: sum(menu)}, // wrong hash
		{Name: "menu-2", BlobID: "b-later", SHA256: sum(greeting)},       // not synced yet
		{Name: "menu-3", BlobID: "b-junk", SHA256: sum([]byte("not a wav"))},
		{Name: "menu-4", BlobID: "b-menu", SHA256: "abc"},
	}, "main-menu", "menu-9")

	for _, c := range []struct {
		name, want string
		custom     bool
		samples    int
	}{
		{"menu-1", "menu-1", true, 4},
		{"callout-greeting", "callout-greeting", false, -1},
		{"menu-2", DefaultPrompt, false, -1},
		{"menu-3", DefaultPrompt, false, -1},
		{"main-menu", "main-menu", false, -1},
		{"menu-9", DefaultPrompt, false, -1},
	} {
		p := lib.Prompt(c.name)
		if p.Name != c.want || p.Custom != c.custom || (c.samples >= 0 && len(p.Samples) != c.samples) || len(p.Samples) == 0 {
			t.Errorf("Prompt(%s) = %s custom %v with %d samples, want %s custom %v", c.name, p.Name, p.Custom, len(p.Samples), c.want, c.custom)
		}
	}

	got := lib.Missing()
	want := []struct{ name, blob, reason, fallback string }{
		{"callout-greeting", "b-greet", "has sha256", "callout-greeting"},
		{"menu-2", "b-later", "not available: not synced", DefaultPrompt},
		{"menu-3", "b-junk", "RIFF/WAVE", DefaultPrompt},
		{"menu-4", "b-menu", "not 64 hex digits", DefaultPrompt},
		{"menu-9", "", "no custom recording", DefaultPrompt},
	}
	if len(got) != len(want) {
		t.Fatalf("Missing() = %+v, want %d entries", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.BlobID != w.blob || !strings.Contains(g.Reason, w.reason) || g.Fallback != w.fallback {
			t.Errorf("Missing()[%d] = %+v, want %+v", i, g, w)
		}
	}

	// The verified recording is decoded once.
	calls := blobs.calls
	lib.Prompt("menu-1")
	lib.Prompt("menu-1")
	if blobs.calls != calls {
		t.Errorf("cached prompt fetched its blob again (%d calls)", blobs.calls-calls)
	}

	// The blob arrives: the prompt plays and is no longer reported.
	blobs.blobMap["b-later"] = greeting
	if p := lib.Prompt("menu-2"); !p.Custom || len(p.Samples) != 2 {
		t.Errorf("after sync Prompt(menu-2) = %+v, want the custom recording", p)
	}
	for _, m := range lib.Missing() {
		if m.Name == "menu-2" {
			t.Errorf("menu-2 still reported missing: %+v", m)
		}
	}

	// A new snapshot without custom prompts forgets them.
	lib.SetCustom(nil)
	if p := lib.Prompt("menu-1"); p.Custom || p.Name != DefaultPrompt {
		t.Errorf("after SetCustom(nil) Prompt(menu-1) = %s custom %v", p.Name, p.Custom)
	}
	if m := lib.Missing(); len(m) != 1 || m[0].Name != "menu-1" {
		t.Errorf("Missing() = %+v, want menu-1 only", m)
	}
}

func TestLibraryNoBlobs(t *testing.T) {
	lib := NewLibrary(nil, nil)
	lib.SetCustom([]Custom{{Name: "main-menu", BlobID: "x", SHA256: strings.Repeat("0", 64)}})
	if p := lib.Prompt("main-menu"); p.Custom || p.Name != "main-menu" {
		t.Errorf("Prompt = %s custom %v, want the built-in", p.Name, p.Custom)
	}
	if m := lib.Missing(); len(m) != 1 || !strings.Contains(m[0].Reason, "no blob store") {
		t.Errorf("Missing() = %+v", m)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
