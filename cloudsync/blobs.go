package cloudsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Errors of blobs, checked with errors.Is.
var (
	// ErrBlobMissing: the blob is not on disk (not fetched yet, or the
	// snapshot in force does not name it).
	ErrBlobMissing = errors.New("blob not fetched")
	// ErrBlobMismatch: bytes whose SHA-256 is not the one the snapshot
	// gives; they are never kept.
	ErrBlobMismatch = errors.New("blob does not match its sha256")
)

// BlobRef is a blob the snapshot in force names: its id in the cloud and
// the SHA-256 (hex) its bytes must have.
type BlobRef struct {
	ID     string
	SHA256 string
}

// tempPrefix starts the name of a blob being written; such files are
// left only by a crash and are removed when the directory is opened.
const tempPrefix = ".tmp-"

// BlobDir keeps blobs on disk, content-addressed: the blob whose SHA-256
// is S is the file <dir>/S, mode 0600, written whole or not at all (a
// temporary file, synced, then renamed), and only after its hash was
// checked. Each node has its own; blobs never go through Raft.
type BlobDir struct {
	dir string
}

// OpenBlobDir creates dir (0700) if needed and removes the temporary
// files a crash may have left.
func OpenBlobDir(dir string) (*BlobDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blob directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("blob directory: remove a leftover: %w", err)
			}
		}
	}
	return &BlobDir{dir: dir}, nil
}

// Dir is the directory.
func (d *BlobDir) Dir() string { return d.dir }

// Path is where the blob of this SHA-256 is kept.
func (d *BlobDir) Path(sum string) string { return filepath.Join(d.dir, sum) }

// checkSum refuses what is not a SHA-256 in hex: it names a file.
func checkSum(sum string) error {
	if len(sum) != sha256.Size*2 || strings.Trim(sum, "0123456789abcdef") != "" {
		return fmt.Errorf("%q is not a sha256 (64 lower-case hex digits)", sum)
	}
	return nil
}

func sumOf(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Read returns the blob of this SHA-256 as kept, after checking it still
// has that hash (a file damaged on disk is ErrBlobMismatch). One not on
// disk is ErrBlobMissing.
func (d *BlobDir) Read(sum string) ([]byte, error) {
	if err := checkSum(sum); err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	f, err := os.Open(d.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", sum, ErrBlobMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sum, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, protocol.MaxBlobBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sum, err)
	}
	if got := sumOf(data); got != sum {
		return nil, fmt.Errorf("blob %s on disk: %w: it hashes to %s", sum, ErrBlobMismatch, got)
	}
	return data, nil
}

// Write keeps data as the blob of this SHA-256 if it has it (else
// ErrBlobMismatch, and nothing is written): through a temporary file in
// the directory, synced, renamed over the final name, and the directory
// synced, so a crash leaves the whole blob or none.
func (d *BlobDir) Write(sum string, data []byte) (err error) {
	if err := checkSum(sum); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	if got := sumOf(data); got != sum {
		return fmt.Errorf("write blob %s: %w: the bytes hash to %s", sum, ErrBlobMismatch, got)
	}
	f, err := os.CreateTemp(d.dir, tempPrefix+sum+"-*")
	if err != nil {
		return fmt.Errorf("write blob %s: %w", sum, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write blob %s: %w", sum, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write blob %s: %w", sum, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write blob %s: sync: %w", sum, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write blob %s: %w", sum, err)
	}
	if err := os.Rename(f.Name(), d.Path(sum)); err != nil {
		return fmt.Errorf("write blob %s: %w", sum, err)
	}
	if dir, err := os.Open(d.dir); err == nil {
		_ = dir.Sync() // best effort: a rename lost in a crash only means fetching the blob again
		_ = dir.Close()
	}
	return nil
}

// BlobFetcherConfig configures a BlobFetcher. Dir and Client are required.
type BlobFetcherConfig struct {
	Dir *BlobDir
	// Client is the client to fetch with, nil while the cluster is not
	// paired; it is asked again on every attempt (the identity may
	// change).
	Client  func() *Client
	Log     *slog.Logger                         // default: discard
	Backoff *Backoff                             // default NewBackoff(nil)
	After   func(time.Duration) <-chan time.Time // default time.After
}

// BlobStatus is what the fetcher knows.
type BlobStatus struct {
	Wanted    int      // blobs the snapshot in force names
	Missing   []string // the ids of those not on disk yet, sorted
	Fetched   uint64   // blobs fetched and kept since start
	LastError string   // the last failure; "" after a pass that fetched everything
}

// BlobFetcher downloads the blobs the snapshot in force names that are not
// on disk yet (docs/sync-protocol.md, "Blobs"), on every node: it checks
// each one's SHA-256 before keeping it, retries with backoff (1 s doubling
// to 60 s while the cloud is unreachable or does not have the blob yet;
// at the slowest pace for a blob it sends wrong or a refusal), and serves
// what it kept to the prompt library (Blob). It never blocks a caller:
// calls play the built-in prompt until the custom one is here.
type BlobFetcher struct {
	cfg  BlobFetcherConfig
	log  *slog.Logger
	loop *loop // no interval: Want and Wake kick it

	mu      sync.Mutex
	want    []BlobRef
	sums    map[string]string // id -> sha256, of want
	missing []string
	fetched uint64
	lastErr string
}

// NewBlobFetcher checks cfg and fills its defaults.
func NewBlobFetcher(cfg BlobFetcherConfig) (*BlobFetcher, error) {
	if cfg.Dir == nil || cfg.Client == nil {
		return nil, errors.New("new blob fetcher: a directory and a client source are required")
	}
	l := newLoop(loopConfig{Log: cfg.Log, Backoff: cfg.Backoff, After: cfg.After}, 0, "component", "cloudsync_blobs")
	return &BlobFetcher{cfg: cfg, log: l.log, loop: l, sums: map[string]string{}}, nil
}

// Want replaces the set of blobs to keep (the snapshot in force's), and
// looks for the new ones at once. The same set again changes nothing (a
// backoff in progress goes on).
func (f *BlobFetcher) Want(refs []BlobRef) {
	refs = slices.Clone(refs)
	slices.SortFunc(refs, func(a, b BlobRef) int { return strings.Compare(a.ID+"\x00"+a.SHA256, b.ID+"\x00"+b.SHA256) })
	refs = slices.Compact(refs)
	f.mu.Lock()
	same := slices.Equal(refs, f.want)
	if !same {
		f.want = refs
		f.sums = make(map[string]string, len(refs))
		for _, r := range refs {
			f.sums[r.ID] = r.SHA256
		}
	}
	f.mu.Unlock()
	if !same {
		f.Wake()
	}
}

// Wake looks for missing blobs now (the cloud identity changed, the cloud
// is back): it cuts a backoff wait short. It never blocks.
func (f *BlobFetcher) Wake() { f.loop.Kick() }

// Blob is the blob id as kept on disk, checked against the SHA-256 the
// snapshot gives it: what the prompt library plays. A blob not fetched
// yet, or that the snapshot does not name, is ErrBlobMissing.
func (f *BlobFetcher) Blob(id string) ([]byte, error) {
	f.mu.Lock()
	sum, ok := f.sums[id]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("blob %s: %w: the snapshot in force does not name it", id, ErrBlobMissing)
	}
	return f.cfg.Dir.Read(sum)
}

// Status is a copy of what the fetcher knows.
func (f *BlobFetcher) Status() BlobStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return BlobStatus{Wanted: len(f.want), Missing: slices.Clone(f.missing), Fetched: f.fetched, LastError: f.lastErr}
}

// Run fetches what is missing, then again whenever Want or Wake asks,
// retrying failures with backoff, until ctx ends.
func (f *BlobFetcher) Run(ctx context.Context) {
	b := f.loop.backoff
	for ctx.Err() == nil {
		select { // this pass sees every Want made so far
		case <-f.loop.kick:
		default:
		}
		var retry <-chan time.Time
		switch err := f.pass(ctx); {
		case ctx.Err() != nil:
			return
		case err == nil:
			b.Reset()
		case retrySoon(err):
			retry = f.loop.after(b.Next())
		default: // a wrong blob, or a refusal: the slowest pace
			retry = f.loop.after(b.Slowest())
		}
		select {
		case <-ctx.Done():
			return
		case <-f.loop.kick:
		case <-retry:
		}
	}
}

// pass fetches every wanted blob that is not on disk. It stops at the
// first error that says the cloud cannot be reached (it would fail the
// same for every blob); other failures (a blob the cloud does not have,
// or whose bytes do not match) are per blob, and the pass goes on. It
// returns the error that decides the next attempt's pace: a retryable one
// if any.
func (f *BlobFetcher) pass(ctx context.Context) error {
	f.mu.Lock()
	want := f.want
	f.mu.Unlock()
	var missing []BlobRef
	for _, r := range want {
		_, err := f.cfg.Dir.Read(r.SHA256)
		switch {
		case err == nil:
			continue
		case errors.Is(err, ErrBlobMismatch):
			f.log.Warn("blob damaged on disk; fetching it again", "blob_id", r.ID, "sha256", r.SHA256, "error", err)
			_ = os.Remove(f.cfg.Dir.Path(r.SHA256))
		case !errors.Is(err, ErrBlobMissing):
			f.log.Warn("cannot read a blob; fetching it again", "blob_id", r.ID, "error", err)
		}
		missing = append(missing, r)
	}
	var worst error
	still := missing[:0:0]
	client := f.cfg.Client()
	for i, r := range missing {
		var err error
		if client == nil {
			err = fmt.Errorf("fetch blob %s: %w: not paired with a cloud", r.ID, ErrNotPaired)
		} else {
			err = f.fetch(ctx, client, r)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		still = append(still, r)
		var he *HTTPError
		unreachable := !errors.As(err, &he) && !errors.Is(err, ErrBlobMismatch) && !errors.Is(err, ErrMalformedAnswer)
		if worst == nil || retrySoon(err) {
			worst = err
		}
		if client == nil || unreachable {
			still = append(still, missing[i+1:]...)
			break
		}
	}
	ids := make([]string, len(still))
	for i, r := range still {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	f.mu.Lock()
	f.missing = ids
	last := f.lastErr
	f.lastErr = ""
	if worst != nil {
		f.lastErr = worst.Error()
	}
	f.mu.Unlock()
	switch {
	case worst != nil && worst.Error() != last:
		f.log.Warn("cannot fetch every blob yet; the prompts concerned play the built-in ones meanwhile",
			"missing", len(ids), "error", worst)
	case worst == nil && last != "":
		f.log.Info("every blob fetched", "blobs", len(want))
	}
	return worst
}

// fetch downloads one blob, checks it and keeps it.
func (f *BlobFetcher) fetch(ctx context.Context, client *Client, r BlobRef) error {
	data, err := client.Blob(ctx, r.ID)
	if err != nil {
		return err
	}
	if got := sumOf(data); got != r.SHA256 {
		f.log.Warn("blob refused: its bytes do not have the snapshot's sha256", "blob_id", r.ID,
			"want_sha256", r.SHA256, "got_sha256", got, "size", len(data))
		return fmt.Errorf("fetch blob %s: %w: got %s, want %s", r.ID, ErrBlobMismatch, got, r.SHA256)
	}
	if err := f.cfg.Dir.Write(r.SHA256, data); err != nil {
		return err
	}
	f.mu.Lock()
	f.fetched++
	f.mu.Unlock()
	f.log.Info("blob fetched", "blob_id", r.ID, "sha256", r.SHA256, "size", len(data))
	return nil
}

// retrySoon says whether a failed fetch is worth retrying at the backoff's
// pace: the cloud unreachable, a 5xx, an answer cut short, and a blob the
// cloud does not have yet (404: the admin named it in the snapshot before
// the upload ended). A blob the cloud sends wrong, and any other refusal
// (401: pair again), wait for the slowest pace.
func retrySoon(err error) bool {
	if errors.Is(err, ErrBlobMismatch) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return true
	}
	return Retryable(err)
}
