package voicemail

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Replication defaults (ReplicatorOptions).
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultResweep    = 5 * time.Minute
	// sweepLimit bounds the messages one sweep reads (messages not
	// uploaded: what an outage leaves, far fewer).
	sweepLimit = 100_000
	// fetchTimeout bounds one attempt (every member asked in turn).
	fetchTimeout = time.Minute
)

// ReplicatorOptions tune a Replicator; zero values take the defaults.
type ReplicatorOptions struct {
	MinBackoff time.Duration // the first wait after a failed fetch, doubled after each failure
	MaxBackoff time.Duration // the longest wait
	Resweep    time.Duration // how often the whole store is swept again
	// Now and After are the clock (time.Now and time.After by default;
	// tests inject a fake one).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Replicator keeps on this node a copy of the audio of every message the
// cloud has not taken, wherever it was recorded, so that a message
// survives the loss of the recording node's disk. Messages are queued by
// Add (the messages the FSM applied) and by a sweep of the store at start
// and every Resweep (which catches a node up after it was down or
// installed a Raft snapshot); one worker fetches them one at a time,
// deduplicated by sha256, retrying each with a backoff from MinBackoff
// doubling to MaxBackoff while no member can give it. A message the cloud
// took is dropped from the queue (its audio is freed everywhere).
type Replicator struct {
	box    *Box
	log    *slog.Logger
	opt    ReplicatorOptions
	wake   chan struct{}
	fetchs *prometheus.CounterVec

	mu    sync.Mutex
	queue map[string]*pendingAudio // by sha256
}

type pendingAudio struct {
	m     store.VoicemailMessage
	tries int       // failed fetches so far
	due   time.Time // when to try next
}

// NewReplicator is b's replicator; Run starts it.
func NewReplicator(b *Box, o ReplicatorOptions) *Replicator {
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Resweep <= 0 {
		o.Resweep = DefaultResweep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return &Replicator{
		box: b, log: b.log.With("component", "voicemail_replication"), opt: o,
		wake:  make(chan struct{}, 1),
		queue: map[string]*pendingAudio{},
		fetchs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "outpost", Subsystem: "voicemail", Name: "audio_fetches_total",
			Help: "Fetches of message audio recorded elsewhere, to keep a copy here, by result (ok, error).",
		}, []string{"result"}),
	}
}

// Collectors are the replicator's metrics.
func (r *Replicator) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "outpost", Subsystem: "voicemail", Name: "audio_missing",
			Help: "Messages not uploaded to the cloud whose audio this node does not hold yet (queued for fetching).",
		}, func() float64 { return float64(r.Missing()) }),
		r.fetchs,
	}
}

// Missing is how many messages' audio is queued (this node lacks it).
func (r *Replicator) Missing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// Add queues the audio of those of ms not uploaded that this node lacks,
// and drops from the queue those uploaded. It never blocks on the network.
func (r *Replicator) Add(ms []store.VoicemailMessage) {
	added := false
	r.mu.Lock()
	for _, m := range ms {
		if len(m.SHA256) != 64 {
			continue
		}
		if !m.UploadedAt.IsZero() {
			delete(r.queue, m.SHA256)
			continue
		}
		if _, queued := r.queue[m.SHA256]; queued || r.box.haveAudio(m) {
			continue
		}
		r.queue[m.SHA256] = &pendingAudio{m: m, due: r.opt.Now()}
		added = true
	}
	r.mu.Unlock()
	if added {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Sweep queues every message not uploaded whose audio this node lacks.
func (r *Replicator) Sweep(ctx context.Context) error {
	ms, err := r.box.Pending(ctx, sweepLimit)
	if err != nil {
		return err
	}
	r.Add(ms)
	if n := r.Missing(); n > 0 {
		r.log.Info("voicemail audio to fetch from other nodes", "messages", n)
	}
	return nil
}

// Run sweeps, then fetches what is queued until ctx ends.
func (r *Replicator) Run(ctx context.Context) {
	sweepAt := r.opt.Now()
	for ctx.Err() == nil {
		if !r.opt.Now().Before(sweepAt) {
			if err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("voicemail replication sweep", "error", err)
			}
			sweepAt = r.opt.Now().Add(r.opt.Resweep)
		}
		select { // what an Add signalled, next sees
		case <-r.wake:
		default:
		}
		p, wait := r.next(sweepAt)
		if p != nil {
			r.fetch(ctx, p)
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-r.opt.After(wait):
		}
	}
}

// next is the queued audio due now, oldest message first, or how long to
// wait for the first one due (or the next sweep).
func (r *Replicator) next(sweepAt time.Time) (*pendingAudio, time.Duration) {
	now := r.opt.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var first *pendingAudio
	for _, p := range r.queue {
		if first == nil || p.due.Before(first.due) || p.due.Equal(first.due) && p.m.ReceivedAt.Before(first.m.ReceivedAt) {
			first = p
		}
	}
	if first != nil && !first.due.After(now) {
		return first, 0
	}
	wait := sweepAt.Sub(now)
	if first != nil {
		wait = min(wait, first.due.Sub(now))
	}
	return nil, wait
}

// fetch tries once to fetch p's audio; on failure it is due again after
// the backoff.
func (r *Replicator) fetch(ctx context.Context, p *pendingAudio) {
	m := p.m
	if cur, err := r.box.Message(ctx, m.ID); err == nil {
		m = cur
	}
	if !m.UploadedAt.IsZero() || r.box.haveAudio(m) {
		r.done(p)
		return
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	_, err := r.box.Audio(fctx, m)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.fetchs.WithLabelValues("error").Inc()
		r.mu.Lock()
		p.tries++
		wait := r.opt.MinBackoff << min(p.tries-1, 30)
		if wait > r.opt.MaxBackoff || wait <= 0 {
			wait = r.opt.MaxBackoff
		}
		p.due = r.opt.Now().Add(wait)
		r.mu.Unlock()
		log := r.log.Debug
		if p.tries == 1 {
			log = r.log.Warn
		}
		log("voicemail audio not fetched yet; will retry", "id", m.ID, "sha256", m.SHA256, "node", m.Node,
			"tries", p.tries, "retry_in", wait, "error", err)
		return
	}
	r.done(p) // before the log line and the counter, which tell it is held
	r.fetchs.WithLabelValues("ok").Inc()
	r.log.Info("voicemail audio replicated", "id", m.ID, "sha256", m.SHA256, "node", m.Node, "tries", p.tries+1)
	// The cloud may have taken it while it was fetched, its mark applied
	// before the file was written: free the copy again. (A mark applied
	// after this read frees it through the FSM's hook.)
	if cur, err := r.box.Message(ctx, m.ID); err == nil && !cur.UploadedAt.IsZero() {
		if err := r.box.Free(cur); err != nil {
			r.log.Warn("voicemail audio not freed", "id", m.ID, "error", err)
		}
	}
}

// done drops p from the queue (unless a newer entry replaced it).
func (r *Replicator) done(p *pendingAudio) {
	r.mu.Lock()
	if r.queue[p.m.SHA256] == p {
		delete(r.queue, p.m.SHA256)
	}
	r.mu.Unlock()
}
