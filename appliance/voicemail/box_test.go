package voicemail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/wav"
	"github.com/outpost-voice/outpost/appliance/store"
)

func openBox(t *testing.T, node string) (*Box, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := New(st, filepath.Join(t.TempDir(), "voicemail"), node, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, st
}

// fetchFunc is a Fetcher over fetch, with peers as the other members.
type fetchFunc struct {
	peers []string
	fetch func(ctx context.Context, node, hash string) ([]byte, error)
}

func (f fetchFunc) VoicemailPeers(context.Context) ([]string, error) { return f.peers, nil }

func (f fetchFunc) FetchVoicemail(ctx context.Context, node, hash string) ([]byte, error) {
	return f.fetch(ctx, node, hash)
}

// A deposit writes the WAV and a new message, tells the sharer and the
// subscribers; saving, deleting and the upload change the message, and
// the upload frees the audio.
func TestBoxLifecycle(t *testing.T) {
	b, _ := openBox(t, "node-1")
	ctx := context.Background()
	var mu sync.Mutex
	var shared []store.VoicemailMessage
	b.OnPersisted(func(ms []store.VoicemailMessage) { mu.Lock(); shared = append(shared, ms...); mu.Unlock() })
	changed := make(chan string, 8)
	b.Subscribe(func(mailbox string) { changed <- mailbox })
	samples := frames(2*time.Second, 8000)
	var pcm []int16
	for _, f := range samples {
		pcm = append(pcm, f...)
	}
	m, err := b.Deposit(Deposit{Mailbox: "u-alice", Caller: "bob", CallerName: "Bob", CallRecord: "rec-1", Samples: pcm})
	if err != nil {
		t.Fatal(err)
	}
	if m.DurationMS != 2000 || m.Folder != store.FolderNew || m.Node != "node-1" || m.Size != int64(44+2*len(pcm)) {
		t.Errorf("deposited %+v", m)
	}
	if got := <-changed; got != "u-alice" {
		t.Errorf("changed %q", got)
	}
	data, err := b.Audio(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := wav.Decode(data)
	if err != nil || len(back) != len(pcm) || back[100] != pcm[100] {
		t.Fatalf("audio back: %d samples, %v", len(back), err)
	}
	if n, s, _ := b.Counts(ctx, "u-alice"); n != 1 || s != 0 {
		t.Fatalf("counts %d/%d", n, s)
	}
	if err := b.MarkSaved(m.ID); err != nil {
		t.Fatal(err)
	}
	if n, s, _ := b.Counts(ctx, "u-alice"); n != 0 || s != 1 {
		t.Fatalf("counts after save %d/%d", n, s)
	}
	if err := b.MarkUploaded(m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.path(m.SHA256)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audio not freed after the upload: %v", err)
	}
	if _, err := b.Audio(ctx, m); !errors.Is(err, ErrNoAudio) {
		t.Errorf("Audio after upload = %v, want ErrNoAudio", err)
	}
	if err := b.Delete(m.ID); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := b.Messages(ctx, "u-alice"); len(msgs) != 0 {
		t.Errorf("deleted message listed: %+v", msgs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(shared) != 4 || !shared[3].Deleted || shared[3].UploadedAt.IsZero() || shared[3].Folder != store.FolderSaved {
		t.Errorf("shared %+v", shared)
	}
	if err := b.MarkSaved("no-such"); !errors.Is(err, store.ErrNoVoicemail) {
		t.Errorf("MarkSaved(unknown) = %v", err)
	}
}

// Audio recorded on another node is fetched from it, checked and kept; a
// copy that does not match the hash is refused.
func TestBoxFetchesAudio(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	m, err := rec.Deposit(Deposit{Mailbox: "u-alice", Caller: "bob", CallRecord: "r", Samples: make([]int16, 16000)})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := openBox(t, "node-2")
	calls := 0
	other.SetFetcher(fetchFunc{fetch: func(_ context.Context, node, hash string) ([]byte, error) {
		calls++
		if node != "node-1" {
			t.Errorf("fetched from %s", node)
		}
		return rec.AudioFile(hash)
	}})
	for range 2 {
		if _, err := other.Audio(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("fetched %d times, want once (then kept)", calls)
	}
	bad, _ := openBox(t, "node-3")
	bad.SetFetcher(fetchFunc{fetch: func(context.Context, string, string) ([]byte, error) { return []byte("RIFF junk"), nil }})
	if _, err := bad.Audio(context.Background(), m); err == nil {
		t.Error("audio with the wrong hash was taken")
	}
	if _, err := rec.AudioFile("../../etc/passwd"); !errors.Is(err, ErrNoAudio) {
		t.Errorf("AudioFile of a path = %v", err)
	}
}

// When the recording node cannot give the audio (down, or its disk
// lost), another member's copy is fetched; a member whose copy does not
// match the hash is skipped; this node never asks itself.
func TestBoxFetchesFromAnotherMember(t *testing.T) {
	rec, _ := openBox(t, "node-1")
	m, err := rec.Deposit(Deposit{Mailbox: "u-alice", Caller: "bob", CallRecord: "r", Samples: make([]int16, 16000)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := openBox(t, "node-2")
	var asked []string
	b.SetFetcher(fetchFunc{peers: []string{"node-1", "node-2", "node-4", "node-3"},
		fetch: func(_ context.Context, node, hash string) ([]byte, error) {
			asked = append(asked, node)
			switch node {
			case "node-1":
				return nil, errors.New("connection refused")
			case "node-4":
				return []byte("RIFF junk"), nil
			}
			return rec.AudioFile(hash)
		}})
	data, err := b.Audio(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if !checkHash(data, m.SHA256) {
		t.Fatal("audio does not match")
	}
	if want := []string{"node-1", "node-4", "node-3"}; !slices.Equal(asked, want) {
		t.Errorf("asked %v, want %v (the recording node first, never itself)", asked, want)
	}
	if !b.haveAudio(m) {
		t.Error("the fetched copy was not kept")
	}
	// Nobody holds it: ErrNoAudio, with every member's reason.
	lost := m
	lost.SHA256 = strings.Repeat("0", 64)
	b.SetFetcher(fetchFunc{peers: []string{"node-3"}, fetch: func(context.Context, string, string) ([]byte, error) {
		return nil, errors.New("not found")
	}})
	if _, err := b.Audio(context.Background(), lost); !errors.Is(err, ErrNoAudio) || !strings.Contains(err.Error(), "node-3") {
		t.Errorf("Audio with no copy anywhere = %v", err)
	}
}
