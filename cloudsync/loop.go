package cloudsync

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// loopConfig is what every loop's config holds; zero values take the
// defaults (newLoop).
type loopConfig struct {
	Log      *slog.Logger
	Interval time.Duration
	Backoff  *Backoff
	Now      func() time.Time
	After    func(time.Duration) <-chan time.Time
}

// loop is the pace the cloud loops share (docs/sync-protocol.md,
// "Failures"): a step now, then another every interval or at once when
// kicked, a failure retried with backoff (at the slowest pace when
// retrying soon will not fix it).
type loop struct {
	log      *slog.Logger
	interval time.Duration
	backoff  *Backoff
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	kick     chan struct{}
}

// newLoop fills c's defaults: a discarding logger, interval when c has
// none, NewBackoff(nil), time.Now and time.After. The logger carries
// attrs.
func newLoop(c loopConfig, interval time.Duration, attrs ...any) *loop {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Interval <= 0 {
		c.Interval = interval
	}
	if c.Backoff == nil {
		c.Backoff = NewBackoff(nil)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	return &loop{log: c.Log.With(attrs...), interval: c.Interval, backoff: c.Backoff, now: c.Now, after: c.After,
		kick: make(chan struct{}, 1)}
}

// Kick makes Run look now. It never blocks.
func (l *loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// pause waits d, or less if kicked or ctx ends.
func (l *loop) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-l.kick:
	case <-l.after(d):
	}
}

// retryIn is how long to wait after a step that ended in err: the
// backoff's next delay for a failure worth retrying soon, the slowest
// pace for the others.
func (l *loop) retryIn(err error) time.Duration {
	if Retryable(err) {
		return l.backoff.Next()
	}
	return l.backoff.Slowest()
}

// run runs step now, then every l's interval or kick, until ctx ends. A
// failure is logged with msg (at the level level gives it; warn when
// level is nil) and retried at the backoff's pace. What step returns
// besides its error is not used.
func run[T any](ctx context.Context, l *loop, msg string, step func(context.Context) (T, error), level func(error) slog.Level) {
	for ctx.Err() == nil {
		_, err := step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := l.interval
		if err != nil {
			wait = l.retryIn(err)
			lv := slog.LevelWarn
			if level != nil {
				lv = level(err)
			}
			l.log.Log(ctx, lv, msg, "error", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			l.backoff.Reset()
		}
		l.pause(ctx, wait)
	}
}

// uploadBook keeps an uploader's UploadStatus. mu also guards what its
// owner keeps beside it.
type uploadBook struct {
	now func() time.Time

	mu sync.Mutex
	st UploadStatus
}

// took records that the cloud took n more items; clearError also clears
// the last failure.
func (b *uploadBook) took(n int, clearError bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Uploaded += n
	b.st.LastUploadAt = b.now()
	if clearError {
		b.st.LastError = ""
	}
}

// failed records err, and returns it.
func (b *uploadBook) failed(err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Drained = false
	b.st.LastError = err.Error()
	b.st.LastErrorAt = b.now()
	return err
}
