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
	*loop
	cfg  UploaderConfig
	book uploadBook
}

// NewUploader checks cfg and fills its defaults.
func NewUploader(cfg UploaderConfig) (*Uploader, error) {
	if cfg.Client == nil || cfg.Journal == nil {
		return nil, errors.New("new uploader: a client and a journal are required")
	}
	if cfg.Batch <= 0 || cfg.Batch > protocol.MaxJournalBatch {
		cfg.Batch = protocol.MaxJournalBatch
	}
	l := newLoop(loopConfig{Log: cfg.Log, Interval: cfg.Interval, Backoff: cfg.Backoff, Now: cfg.Now, After: cfg.After},
		30*time.Second, "component", "cloudsync", "loop", "journal")
	return &Uploader{loop: l, cfg: cfg, book: uploadBook{now: l.now}}, nil
}

// JournalKey is the Idempotency-Key of a batch: a hash of its record ids,
// whatever their order, so the same batch always has the same key.
func JournalKey(ids []string) string { return idsKey("outpost-journal-v1", ids) }

// idsKey is a hash of ids, whatever their order, in the domain named.
func idsKey(domain string, ids []string) string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte(domain + "\n"))
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Status is a copy of what the Uploader knows.
func (u *Uploader) Status() UploadStatus {
	u.book.mu.Lock()
	defer u.book.mu.Unlock()
	return u.book.st
}

// Run uploads what is pending now, then every Interval or Kick, until ctx
// ends. Failures are retried with backoff (at the slowest pace when the
// cloud refuses a batch: a bug on one side).
func (u *Uploader) Run(ctx context.Context) {
	run(ctx, u.loop, "journal upload failed; retrying", u.UploadPending, nil)
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
			return total, u.book.failed(err)
		}
		if !found {
			u.book.mu.Lock()
			u.book.st.Drained, u.book.st.LastError = true, ""
			u.book.mu.Unlock()
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
		u.book.took(len(b.IDs), true)
		ch <- nil
	}()
	return ch
}
