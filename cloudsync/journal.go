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
type Journal interface {
	// Pending returns up to limit records not yet uploaded, oldest first,
	// each as JSON with its id alongside (ids[i] is records[i]'s).
	Pending(ctx context.Context, limit int) (records []json.RawMessage, ids []string, err error)
	// MarkUploaded records that the cloud has these records, so no leader
	// sends them again.
	MarkUploaded(ctx context.Context, ids []string) error
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
func (u *Uploader) UploadPending(ctx context.Context) (int, error) {
	total := 0
	lastKey := ""
	for {
		records, ids, err := u.cfg.Journal.Pending(ctx, u.cfg.Batch)
		if err != nil {
			return total, u.failed(fmt.Errorf("read pending journal records: %w", err))
		}
		if len(records) != len(ids) {
			return total, u.failed(fmt.Errorf("read pending journal records: %d records but %d ids", len(records), len(ids)))
		}
		if len(records) == 0 {
			u.mu.Lock()
			u.status.Drained, u.status.LastError = true, ""
			u.mu.Unlock()
			return total, nil
		}
		key := JournalKey(ids)
		if key == lastKey {
			return total, u.failed(fmt.Errorf("journal: the batch marked uploaded is still pending (%d records, first %s)", len(ids), ids[0]))
		}
		lastKey = key
		r, err := u.cfg.Client.UploadJournal(ctx, key, records)
		if err != nil {
			return total, u.failed(err)
		}
		if err := u.cfg.Journal.MarkUploaded(ctx, ids); err != nil {
			return total, u.failed(fmt.Errorf("mark %d journal records uploaded: %w", len(ids), err))
		}
		total += len(ids)
		u.log.Info("journal batch uploaded", "records", len(ids), "accepted", r.Accepted, "duplicates", r.Duplicates, "idempotency_key", key)
		u.mu.Lock()
		u.status.Uploaded += len(ids)
		u.status.LastUploadAt = u.cfg.Now()
		u.status.LastError = ""
		u.mu.Unlock()
	}
}

func (u *Uploader) failed(err error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status.Drained = false
	u.status.LastError = err.Error()
	u.status.LastErrorAt = u.cfg.Now()
	return err
}
