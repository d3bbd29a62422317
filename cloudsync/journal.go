package cloudsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Journal is what the Uploader needs from the appliance's outage journal.
// Its records have an order, oldest first, and a cursor is a place in it,
// opaque to the Uploader: "" is the start.
type Journal interface {
	// Pending returns up to limit records not yet uploaded that come after
	// the cursor after, oldest first, each as JSON with its id alongside,
	// and the cursor of the last one (after again when there is none).
	Pending(ctx context.Context, after string, limit int) (PendingBatch, error)
	// MarkUploaded records that the cloud has these records, so no leader
	// sends them again.
	MarkUploaded(ctx context.Context, ids []string) error
}

// PendingBatch is records a Journal hands the Uploader.
type PendingBatch struct {
	Records []json.RawMessage
	IDs     []string // IDs[i] is Records[i]'s id
	Next    string   // the cursor of the last record: read on after it
}

// UploaderConfig configures an Uploader. Client and Journal are required.
type UploaderConfig struct {
	Client  *Client
	Journal Journal
	Log     *slog.Logger // default: discard
	// Batch is the most records a request carries (protocol.MaxJournalBatch,
	// which is also its ceiling).
	Batch int
	// Interval is how often Run looks for new records (30 s); Kick looks
	// at once.
	Interval time.Duration
	Backoff  *Backoff                             // default NewBackoff(nil)
	Now      func() time.Time                     // default time.Now
	After    func(time.Duration) <-chan time.Time // default time.After
}

// UploadStatus is what the Uploader knows.
type UploadStatus struct {
	Uploaded     int       // records the cloud took since start (accepted + duplicates)
	Drained      bool      // the last look found nothing pending
	LastUploadAt time.Time // last batch the cloud took
	LastError    string    // last failure; "" after a success
	LastErrorAt  time.Time
}

// Uploader sends the outage journal to the cloud (docs/sync-protocol.md,
// "Journal upload"): batches oldest first, each under an Idempotency-Key
// made from its record ids (JournalKey), so a retried batch reuses its key;
// records are marked uploaded only once the cloud has answered 200.
type Uploader struct {
	cfg     UploaderConfig
	log     *slog.Logger
	backoff *Backoff
	kick    chan struct{}

	mu     sync.Mutex
	status UploadStatus
}

// NewUploader checks cfg and fills its defaults.
func NewUploader(cfg UploaderConfig) (*Uploader, error) {
	if cfg.Client == nil || cfg.Journal == nil {
		return nil, errors.New("new uploader: a client and a journal are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Batch <= 0 || cfg.Batch > protocol.MaxJournalBatch {
		cfg.Batch = protocol.MaxJournalBatch
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = NewBackoff(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	return &Uploader{
		cfg:     cfg,
		log:     cfg.Log.With("component", "cloudsync", "loop", "journal"),
		backoff: cfg.Backoff,
		kick:    make(chan struct{}, 1),
	}, nil
}

// JournalKey is the Idempotency-Key of a batch: a hash of its record ids,
// whatever their order, so the same batch always has the same key.
func JournalKey(ids []string) string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte("outpost-journal-v1\n"))
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Kick makes Run look for records now. It never blocks.
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Status is a copy of what the Uploader knows.
func (u *Uploader) Status() UploadStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// Run uploads what is pending now, then every Interval or Kick, until ctx
// ends. Failures are retried with backoff (at the slowest pace when the
// cloud refuses a batch: a bug on one side).
func (u *Uploader) Run(ctx context.Context) {
	for ctx.Err() == nil {
		_, err := u.UploadPending(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := u.cfg.Interval
		if err != nil {
			if Retryable(err) {
				wait = u.backoff.Next()
			} else {
				wait = u.backoff.Slowest()
			}
			u.log.Warn("journal upload failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			u.backoff.Reset()
		}
		select {
		case <-ctx.Done():
		case <-u.kick:
		case <-u.cfg.After(wait):
		}
	}
}

// UploadPending uploads batches until the journal has nothing pending, and
// says how many records the cloud took. It stops at the first failure;
// what was marked stays marked.
//
// It goes through the journal in sweeps. A sweep reads from the start,
// then on from the cursor of the last batch read, so the batches on their
// way are not read again, until a read finds nothing; the batches are
// pipelined: batch k+1 is read and encoded, and batch k-1 marked uploaded,
// while batch k uploads. One upload is in flight at a time, so the cloud
// receives the batches oldest first; marks follow in the same order, each
// once the cloud has answered its batch. A record that arrives during a
// sweep with an older end than the cursor is behind it: the next sweep,
// from the start once every mark is done, finds it. A sweep that finds
// nothing ends the upload.
func (u *Uploader) UploadPending(ctx context.Context) (int, error) {
	total := 0
	sent := map[string]bool{} // the keys of the batches sent by this call
	for {
		n, found, err := u.sweep(ctx, sent)
		total += n
		if err != nil {
			return total, u.failed(err)
		}
		if !found {
			u.mu.Lock()
			u.status.Drained, u.status.LastError = true, ""
			u.mu.Unlock()
			return total, nil
		}
	}
}

// batch is one batch on its way: read and encoded, uploaded, then marked.
type batch struct {
	PendingBatch
	key string
	err error // of the read
}

// sweep goes once through the journal from the start (see UploadPending):
// it says how many records it uploaded and marked, and whether it found
// any. Every goroutine it starts has ended when it returns.
func (u *Uploader) sweep(ctx context.Context, sent map[string]bool) (uploaded int, found bool, err error) {
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	reading := u.read(readCtx, "")
	// The mark in flight, if any, and its batch's size. Marks are not
	// cancelled when an upload fails: the cloud has their batches.
	var marking <-chan error
	var markingN int
	settle := func() error {
		if marking == nil {
			return nil
		}
		err := <-marking
		if err == nil {
			uploaded += markingN
		}
		marking = nil
		return err
	}
	// stop ends the sweep on err: the read ahead is called off, the mark
	// in flight finishes.
	stop := func(err error) (int, bool, error) {
		cancelRead()
		if reading != nil {
			<-reading
		}
		if merr := settle(); merr != nil {
			err = errors.Join(err, merr)
		}
		return uploaded, found, err
	}
	for {
		b := <-reading
		reading = nil
		switch {
		case b.err != nil:
			return stop(b.err)
		case len(b.IDs) == 0:
			return stop(nil)
		case sent[b.key]:
			return stop(fmt.Errorf("journal: a batch sent before is still pending (%d records, first %s): "+
				"marking it uploaded did not take, or the journal read it again past its cursor", len(b.IDs), b.IDs[0]))
		}
		sent[b.key] = true
		found = true
		reading = u.read(readCtx, b.Next)
		r, err := u.cfg.Client.UploadJournal(ctx, b.key, b.Records)
		if err != nil {
			return stop(err)
		}
		if err := settle(); err != nil {
			return stop(err)
		}
		marking, markingN = u.mark(ctx, b, r), len(b.IDs)
	}
}

// read reads the batch after the cursor after, in the background.
func (u *Uploader) read(ctx context.Context, after string) <-chan batch {
	ch := make(chan batch, 1)
	go func() {
		p, err := u.cfg.Journal.Pending(ctx, after, u.cfg.Batch)
		b := batch{PendingBatch: p}
		switch {
		case err != nil:
			b.err = fmt.Errorf("read pending journal records: %w", err)
		case len(p.Records) != len(p.IDs):
			b.err = fmt.Errorf("read pending journal records: %d records but %d ids", len(p.Records), len(p.IDs))
		case len(p.IDs) > 0:
			b.key = JournalKey(p.IDs)
		}
		ch <- b
	}()
	return ch
}

// mark marks b's records uploaded, the cloud having answered r, in the
// background.
func (u *Uploader) mark(ctx context.Context, b batch, r protocol.JournalReceipt) <-chan error {
	ch := make(chan error, 1)
	go func() {
		if err := u.cfg.Journal.MarkUploaded(ctx, b.IDs); err != nil {
			ch <- fmt.Errorf("mark %d journal records uploaded: %w", len(b.IDs), err)
			return
		}
		u.log.Info("journal batch uploaded", "records", len(b.IDs), "accepted", r.Accepted, "duplicates", r.Duplicates,
			"idempotency_key", b.key)
		u.mu.Lock()
		u.status.Uploaded += len(b.IDs)
		u.status.LastUploadAt = u.cfg.Now()
		u.status.LastError = ""
		u.mu.Unlock()
		ch <- nil
	}()
	return ch
}

func (u *Uploader) failed(err error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status.Drained = false
	u.status.LastError = err.Error()
	u.status.LastErrorAt = u.cfg.Now()
	return err
}
