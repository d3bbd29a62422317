package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// journal takes the B2BUA's finished call records, commits them to the
// store's local table in small batches (at once, with or without quorum)
// and hands each committed batch to its sharer.
type journal struct {
	st     *store.Store
	sharer *sharer[store.CallRecord]
	log    *slog.Logger

	mu      sync.Mutex
	pending []store.CallRecord
	kick    chan struct{}
}

func newJournal(st *store.Store, log *slog.Logger) *journal {
	return &journal{st: st, sharer: newRecordSharer(st), log: log, kick: make(chan struct{}, 1)}
}

// Record queues one finished call.
func (j *journal) Record(r store.CallRecord) {
	j.mu.Lock()
	j.pending = append(j.pending, r)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// run commits queued records until ctx ends, then commits what is left.
func (j *journal) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			j.flush()
			return
		case <-j.kick:
			time.Sleep(50 * time.Millisecond) // gather a burst into one transaction
		}
		j.flush()
	}
}

func (j *journal) flush() {
	j.mu.Lock()
	batch := j.pending
	j.pending = nil
	j.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := j.st.PutLocalCallRecords(batch)
	switch {
	case errors.Is(err, store.ErrInvalidCallRecord):
		j.log.Error("dropping call records the store refuses", "records", len(batch), "error", err)
	case err != nil:
		j.log.Error("persist call records; will retry", "records", len(batch), "error", err)
		j.mu.Lock()
		j.pending = append(batch, j.pending...)
		j.mu.Unlock()
	default:
		j.sharer.persisted(batch)
	}
}
