package voicemail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/wav"
	"github.com/outpost-voice/outpost/appliance/store"
)

// ErrNoAudio: the message's audio is not on this node (recorded on
// another node and not fetched yet, or freed after its upload).
var ErrNoAudio = errors.New("voicemail audio not on this node")

// Fetcher gets a message's audio from the nodes that may hold it (nil:
// this node serves only what it recorded or already keeps).
type Fetcher interface {
	// VoicemailPeers is the other members of the cluster, any of which
	// may hold a copy (every node keeps one: Replicator).
	VoicemailPeers(ctx context.Context) ([]string, error)
	// FetchVoicemail is node's copy of the audio of sha256.
	FetchVoicemail(ctx context.Context, node, sha256 string) ([]byte, error)
}

// Box is the node's mailboxes.
type Box struct {
	st     *store.Store
	dir    string
	nodeID string
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	persisted func([]store.VoicemailMessage) // the sharer's hook
	fetcher   Fetcher
	subs      []func(mailbox string)
}

// New opens the mailboxes whose audio lives in dir (created if missing).
func New(st *store.Store, dir, nodeID string, log *slog.Logger) (*Box, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("voicemail: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Box{st: st, dir: dir, nodeID: nodeID, log: log.With("component", "voicemail"), now: time.Now}, nil
}

// OnPersisted sets the hook told of every message written locally (the
// node's sharer).
func (b *Box) OnPersisted(fn func([]store.VoicemailMessage)) {
	b.mu.Lock()
	b.persisted = fn
	b.mu.Unlock()
}

// SetFetcher sets how audio recorded elsewhere is fetched.
func (b *Box) SetFetcher(f Fetcher) {
	b.mu.Lock()
	b.fetcher = f
	b.mu.Unlock()
}

// Subscribe calls fn, in its own goroutine, with the mailbox every time a
// message of it is deposited or changed on this node (message waiting
// hooks here). Changes replicated from other nodes are reported by the
// node through Changed.
func (b *Box) Subscribe(fn func(mailbox string)) {
	b.mu.Lock()
	b.subs = append(b.subs, fn)
	b.mu.Unlock()
}

// Changed tells the subscribers that mailbox changed.
func (b *Box) Changed(mailbox string) {
	b.mu.Lock()
	subs := b.subs
	b.mu.Unlock()
	for _, fn := range subs {
		go fn(mailbox)
	}
}

func (b *Box) written(m store.VoicemailMessage) {
	b.mu.Lock()
	hook := b.persisted
	b.mu.Unlock()
	if hook != nil {
		hook([]store.VoicemailMessage{m})
	}
	b.Changed(m.Mailbox)
}

// Deposit is a message to keep.
type Deposit struct {
	Mailbox    string
	Caller     string
	CallerName string
	CallRecord string
	Samples    []int16 // 8 kHz mono
}

// Deposit writes the message's WAV to disk and records it in the mailbox
// as new.
func (b *Box) Deposit(d Deposit) (store.VoicemailMessage, error) {
	data := wav.Encode(d.Samples)
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if err := b.writeAudio(hash, data); err != nil {
		return store.VoicemailMessage{}, err
	}
	now := b.now().UTC().Truncate(time.Millisecond)
	m := store.VoicemailMessage{ID: newID(), Mailbox: d.Mailbox, Caller: d.Caller, CallerName: d.CallerName,
		CallRecord: d.CallRecord, ReceivedAt: now, DurationMS: int64(len(d.Samples)) * 1000 / wav.SampleRate,
		SHA256: hash, Size: int64(len(data)), Node: b.nodeID, Folder: store.FolderNew, UpdatedAt: now}
	if err := b.st.PutLocalVoicemail([]store.VoicemailMessage{m}); err != nil {
		return store.VoicemailMessage{}, fmt.Errorf("voicemail: record message: %w", err)
	}
	b.log.Info("voicemail deposited", "mailbox", m.Mailbox, "id", m.ID, "duration_ms", m.DurationMS, "sha256", hash)
	b.written(m)
	return m, nil
}

// path is where the audio of hash lives on this node.
func (b *Box) path(hash string) string { return filepath.Join(b.dir, hash+".wav") }

// writeAudio writes data as hash's file: a temporary file, synced, then
// renamed, so a crash leaves the whole file or none.
func (b *Box) writeAudio(hash string, data []byte) error {
	f, err := os.CreateTemp(b.dir, ".vm-*")
	if err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, b.path(hash))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("voicemail: write audio %s: %w", hash, err)
	}
	if d, err := os.Open(b.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Messages is mailbox's messages, new first, then saved, oldest first.
func (b *Box) Messages(ctx context.Context, mailbox string) ([]store.VoicemailMessage, error) {
	return b.st.Reader().Mailbox(ctx, mailbox)
}

// Counts is how many new and saved messages mailbox holds.
func (b *Box) Counts(ctx context.Context, mailbox string) (newCount, saved int, err error) {
	return b.st.Reader().MailboxCounts(ctx, mailbox)
}

// Message is one message (store.ErrNoVoicemail when none).
func (b *Box) Message(ctx context.Context, id string) (store.VoicemailMessage, error) {
	return b.st.Reader().VoicemailByID(ctx, id)
}

// Pending is what the cloud has not taken yet (store.Reader's
// PendingVoicemailUploads).
func (b *Box) Pending(ctx context.Context, limit int) ([]store.VoicemailMessage, error) {
	return b.st.Reader().PendingVoicemailUploads(ctx, limit)
}

// Audio is m's WAV: this node's copy, else fetched (and kept) from the
// node that recorded it or, when that one cannot give it (down, or its
// disk lost), from the other members, which keep copies too. The bytes
// are checked against m's sha256; a copy that does not match is skipped.
func (b *Box) Audio(ctx context.Context, m store.VoicemailMessage) ([]byte, error) {
	data, err := os.ReadFile(b.path(m.SHA256))
	if err == nil && checkHash(data, m.SHA256) {
		return data, nil
	}
	b.mu.Lock()
	f := b.fetcher
	b.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("voicemail %s: %w", m.ID, ErrNoAudio)
	}
	data, err = b.fetch(ctx, f, m)
	if err != nil {
		return nil, err
	}
	if err := b.writeAudio(m.SHA256, data); err != nil {
		b.log.Warn("cannot keep fetched voicemail audio", "id", m.ID, "error", err)
	}
	return data, nil
}

// fetch asks the recording node first, then every other member, for m's
// audio, and returns the first copy that matches m's sha256.
func (b *Box) fetch(ctx context.Context, f Fetcher, m store.VoicemailMessage) ([]byte, error) {
	peers, err := f.VoicemailPeers(ctx)
	if err != nil {
		return nil, fmt.Errorf("voicemail %s: list members: %w", m.ID, err)
	}
	nodes := []string{m.Node}
	for _, p := range peers {
		if p != m.Node {
			nodes = append(nodes, p)
		}
	}
	var errs []error
	for _, node := range nodes {
		if node == b.nodeID || node == "" {
			continue
		}
		data, err := f.FetchVoicemail(ctx, node, m.SHA256)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("from %s: %w", node, err))
		case !checkHash(data, m.SHA256):
			errs = append(errs, fmt.Errorf("from %s: the audio does not match its sha256", node))
		default:
			return data, nil
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("voicemail %s: no other member to fetch from: %w", m.ID, ErrNoAudio)
	}
	return nil, fmt.Errorf("voicemail %s: %w: %w", m.ID, ErrNoAudio, errors.Join(errs...))
}

// haveAudio is whether this node holds m's audio (a file of m's size:
// files are written whole or not at all; Audio checks the hash on read).
func (b *Box) haveAudio(m store.VoicemailMessage) bool {
	fi, err := os.Stat(b.path(m.SHA256))
	return err == nil && fi.Size() == m.Size
}

// AudioFile is the local audio of hash, for serving it to other nodes;
// ErrNoAudio when this node has none. hash must be 64 hex digits.
func (b *Box) AudioFile(hash string) ([]byte, error) {
	if len(hash) != 64 {
		return nil, fmt.Errorf("%q is not a sha256: %w", hash, ErrNoAudio)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return nil, fmt.Errorf("%q is not a sha256: %w", hash, ErrNoAudio)
	}
	data, err := os.ReadFile(b.path(hash))
	if err != nil || !checkHash(data, hash) {
		return nil, ErrNoAudio
	}
	return data, nil
}

func checkHash(data []byte, hash string) bool {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == hash
}

// MarkSaved moves a heard message to the saved folder.
func (b *Box) MarkSaved(id string) error { return b.mark(id, store.VoicemailSaved) }

// Delete deletes a message.
func (b *Box) Delete(id string) error { return b.mark(id, store.VoicemailDeleted) }

// MarkUploaded records that the cloud took message id and frees its audio
// on this node.
func (b *Box) MarkUploaded(id string) error {
	m, err := b.st.MarkVoicemail(id, store.VoicemailUploaded, b.now())
	if err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	b.written(m)
	return b.Free(m)
}

func (b *Box) mark(id string, change store.VoicemailChange) error {
	m, err := b.st.MarkVoicemail(id, change, b.now())
	if err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	b.written(m)
	return nil
}

// newID is a random UUID (version 4).
func newID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
