package prompts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/outpost-voice/outpost/appliance/media/wav"
)

// Blobs gives the custom recordings the cloud synced, by blob id. An
// error (a blob not synced yet, a read failure) makes the Library fall
// back to a built-in prompt.
type Blobs interface {
	Blob(id string) ([]byte, error)
}

// Custom is an account's recording for a prompt name: a WAV blob and its
// sha256 (hex).
type Custom struct {
	Name   string
	BlobID string
	SHA256 string
}

// cacheKey names the verified audio of c: a hash is only trusted for the
// blob it was checked against.
func (c Custom) cacheKey() string { return c.BlobID + "\x00" + c.SHA256 }

// Missing is a prompt name that does not play what the account configured.
type Missing struct {
	Name string
	// BlobID is the custom recording that could not be used; empty when
	// the account has none for the name.
	BlobID string
	// Reason says what is wrong, for status.
	Reason string
	// Fallback is the built-in prompt played instead.
	Fallback string
}

// Library resolves prompt names to audio. It is safe for concurrent use.
type Library struct {
	blobs Blobs
	log   *slog.Logger

	mu       sync.Mutex
	custom   map[string]Custom
	names    map[string]bool    // names referenced or asked for
	decoded  map[string][]int16 // verified custom audio by cacheKey
	missing  map[string]Missing // the last resolution of each failing name
	reported map[string]string  // the reason last logged, by name
}

// NewLibrary returns a Library with no custom prompts that reads custom
// recordings from blobs (nil: none). A nil logger discards.
func NewLibrary(blobs Blobs, logger *slog.Logger) *Library {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Library{
		blobs:    blobs,
		log:      logger.With("component", "prompts"),
		custom:   map[string]Custom{},
		names:    map[string]bool{},
		decoded:  map[string][]int16{},
		missing:  map[string]Missing{},
		reported: map[string]string{},
	}
}

// SetCustom replaces the account's custom recordings (on every snapshot)
// and the names the configuration refers to (IVR and call-out prompts),
// so that Missing reports them before a call asks for them.
func (l *Library) SetCustom(custom []Custom, referenced ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.custom = make(map[string]Custom, len(custom))
	for _, c := range custom {
		c.SHA256 = strings.ToLower(c.SHA256)
		l.custom[c.Name] = c
	}
	l.names = map[string]bool{}
	for _, n := range referenced {
		l.names[n] = true
	}
	keep := map[string][]int16{}
	for _, c := range l.custom {
		if s, ok := l.decoded[c.cacheKey()]; ok {
			keep[c.cacheKey()] = s
		}
	}
	l.decoded = keep
	l.missing = map[string]Missing{}
}

// Prompt resolves name: the custom recording when it is present and
// intact, else the built-in prompt of that name, else DefaultPrompt. It
// always returns playable audio; what fell back is listed by Missing.
func (l *Library) Prompt(name string) Prompt {
	l.mu.Lock()
	l.names[name] = true
	c, hasCustom := l.custom[name]
	s, cached := l.decoded[c.cacheKey()]
	l.mu.Unlock()

	var reason string
	if hasCustom {
		if cached {
			l.resolved(name)
			return Prompt{Name: name, Samples: s, Custom: true, BlobID: c.BlobID}
		}
		s, err := l.load(c)
		if err == nil {
			l.mu.Lock()
			if cur, ok := l.custom[name]; ok && cur == c {
				l.decoded[c.cacheKey()] = s
			}
			l.mu.Unlock()
			l.resolved(name)
			return Prompt{Name: name, Samples: s, Custom: true, BlobID: c.BlobID}
		}
		reason = err.Error()
	}
	p, err := Builtin(name)
	if err == nil && !hasCustom {
		l.resolved(name)
		return p
	}
	if err != nil {
		p, err = Builtin(DefaultPrompt)
		if err != nil {
			// The embedded set is broken: a build problem, caught by tests.
			l.log.Error("no built-in prompts", "err", err)
			return Prompt{Name: DefaultPrompt}
		}
		if !hasCustom {
			reason = "no custom recording and no built-in prompt of that name"
		}
	}
	l.fellBack(Missing{Name: name, BlobID: c.BlobID, Reason: reason, Fallback: p.Name})
	return p
}

// load fetches, verifies and decodes a custom recording.
func (l *Library) load(c Custom) ([]int16, error) {
	if len(c.SHA256) != sha256.Size*2 {
		return nil, fmt.Errorf("sha256 %q is not %d hex digits", c.SHA256, sha256.Size*2)
	}
	if l.blobs == nil {
		return nil, fmt.Errorf("blob %s not available: no blob store", c.BlobID)
	}
	b, err := l.blobs.Blob(c.BlobID)
	if err != nil {
		return nil, fmt.Errorf("blob %s not available: %w", c.BlobID, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != c.SHA256 {
		return nil, fmt.Errorf("blob %s has sha256 %s, want %s", c.BlobID, got, c.SHA256)
	}
	s, err := wav.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", c.BlobID, err)
	}
	return s, nil
}

func (l *Library) resolved(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.missing, name)
	if _, ok := l.reported[name]; ok {
		delete(l.reported, name)
		l.log.Info("prompt available again", "prompt", name)
	}
}

func (l *Library) fellBack(m Missing) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.missing[m.Name] = m
	if l.reported[m.Name] != m.Reason {
		l.reported[m.Name] = m.Reason
		l.log.Warn("prompt falls back to a built-in one", "prompt", m.Name, "blob_id", m.BlobID, "reason", m.Reason, "fallback", m.Fallback)
	}
}

// Missing resolves every custom recording and every name referenced or
// asked for, and lists those that fall back, sorted by name.
func (l *Library) Missing() []Missing {
	l.mu.Lock()
	names := maps.Clone(l.names)
	for n := range l.custom {
		names[n] = true
	}
	l.mu.Unlock()
	for _, n := range slices.Sorted(maps.Keys(names)) {
		l.Prompt(n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Missing
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if m, ok := l.missing[n]; ok {
			out = append(out, m)
		}
	}
	return out
}
