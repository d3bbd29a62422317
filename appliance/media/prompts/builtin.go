package prompts

import (
	"embed"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/wav"
)

// DefaultPrompt is the built-in prompt played for a name that has neither
// a custom recording nor a built-in prompt.
const DefaultPrompt = "main-menu"

// ErrUnknown is returned by Builtin for a name that is not built in.
var ErrUnknown = errors.New("no such built-in prompt")

// Prompt is playable audio: 8 kHz mono 16-bit linear samples.
type Prompt struct {
	// Name is the name the prompt was resolved as (for a fallback, the
	// name of the built-in prompt actually played).
	Name string
	// Samples are shared by every user of the prompt: never modify them.
	Samples []int16
	// Custom is true for an account's recording, false for a built-in one.
	Custom bool
	// BlobID is the blob a custom prompt came from.
	BlobID string
}

// Duration is the prompt's length.
func (p Prompt) Duration() time.Duration {
	return time.Duration(len(p.Samples)) * time.Second / wav.SampleRate
}

//go:embed builtin/*.wav
var builtinFS embed.FS

var builtins = sync.OnceValues(loadBuiltins)

func loadBuiltins() (map[string]Prompt, error) {
	entries, err := builtinFS.ReadDir("builtin")
	if err != nil {
		return nil, fmt.Errorf("built-in prompts: %w", err)
	}
	m := make(map[string]Prompt, len(entries))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wav")
		if !ok {
			continue
		}
		b, err := builtinFS.ReadFile(path.Join("builtin", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("built-in prompt %s: %w", name, err)
		}
		s, err := wav.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("built-in prompt %s: %w", name, err)
		}
		m[name] = Prompt{Name: name, Samples: s}
	}
	m[MusicOnHold] = Prompt{Name: MusicOnHold, Samples: music()}
	if _, ok := m[DefaultPrompt]; !ok {
		return nil, fmt.Errorf("built-in prompts: no %s.wav", DefaultPrompt)
	}
	return m, nil
}

// Builtin returns the built-in prompt called name.
func Builtin(name string) (Prompt, error) {
	m, err := builtins()
	if err != nil {
		return Prompt{}, err
	}
	p, ok := m[name]
	if !ok {
		return Prompt{}, fmt.Errorf("prompt %q: %w", name, ErrUnknown)
	}
	return p, nil
}

// Names lists the built-in prompts, sorted.
func Names() []string {
	m, _ := builtins()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
