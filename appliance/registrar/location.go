package registrar

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Location is the node's location service: the live bindings of the phones
// registered here, in memory for the hot path, written through to the
// store's local_bindings (group-committed) so a restarted node keeps them.
// Removed bindings become tombstones in the store so that an older copy
// elsewhere cannot bring them back; expired ones simply stop being live.
type Location struct {
	log     *slog.Logger
	persist func([]store.Binding) error

	mu      sync.Mutex
	byAOR   map[string][]store.Binding
	perSite map[string]int
	// tombs remembers recent removals' versions, so a binding added back
	// within the same millisecond is versioned after its tombstone.
	tombs   map[string]time.Time
	pending []store.Binding // changes not yet persisted
	kick    chan struct{}
	// queued counts the Updates that changed something; durable is the
	// count the store has (the last group commit that succeeded covered
	// them), and wake is closed and replaced whenever it moves. running
	// is set while Run commits, so WaitDurable only waits for a commit
	// that will come.
	queued, durable uint64
	wake            chan struct{}
	running         atomic.Bool
	failing         atomic.Bool // the last group commit failed
}

// NewLocation keeps bindings in memory and hands changes to persist in batches.
func NewLocation(persist func([]store.Binding) error, log *slog.Logger) *Location {
	return &Location{
		log:     log,
		persist: persist,
		byAOR:   map[string][]store.Binding{},
		perSite: map[string]int{},
		tombs:   map[string]time.Time{},
		kick:    make(chan struct{}, 1),
		wake:    make(chan struct{}),
	}
}

// Load fills the location from stored rows (tombstones and expired rows are
// skipped), at start.
func (l *Location) Load(rows []store.Binding, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range rows {
		if b.Deleted || !b.Expires.After(now) {
			continue
		}
		l.byAOR[b.AOR] = append(l.byAOR[b.AOR], b)
		l.perSite[b.Site]++
	}
}

// Lookup returns the live bindings of an AOR.
func (l *Location) Lookup(aor string, now time.Time) []store.Binding {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.Binding
	for _, b := range l.byAOR[aor] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// Live returns every live binding held here, oldest refresh first.
func (l *Location) Live(now time.Time) []store.Binding {
	l.mu.Lock()
	var out []store.Binding
	for _, bs := range l.byAOR {
		for _, b := range bs {
			if b.Expires.After(now) {
				out = append(out, b)
			}
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b store.Binding) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Count is the number of live bindings held here, in all and per site.
func (l *Location) Count() (total int, perSite map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	perSite = make(map[string]int, len(l.perSite))
	for s, n := range l.perSite {
		perSite[s] = n
		total += n
	}
	return total, perSite
}

// Update replaces an AOR's bindings with what fn makes of the current ones,
// atomically with respect to other updates. siteCount tells fn how many live
// bindings a site holds here now, not counting this AOR's. When fn fails
// nothing changes. A binding fn changed is versioned strictly after the one
// it replaces, so the store (last writer wins, by millisecond) keeps it.
func (l *Location) Update(aor string, now time.Time,
	fn func(cur []store.Binding, siteCount func(string) int) ([]store.Binding, error)) ([]store.Binding, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	before := len(l.pending)
	old := l.byAOR[aor]
	var cur []store.Binding
	for _, b := range old {
		if b.Expires.After(now) {
			cur = append(cur, b)
		}
	}
	siteCount := func(site string) int {
		n := l.perSite[site]
		for _, b := range old {
			if b.Site == site {
				n--
			}
		}
		return n
	}
	next, err := fn(cur, siteCount)
	if err != nil {
		return nil, err
	}
	prev := make(map[string]store.Binding, len(old))
	for _, b := range old {
		prev[b.ID] = b
	}
	for i := range next {
		b := &next[i]
		p, existed := prev[b.ID]
		if existed && *b == p {
			continue // unchanged
		}
		if existed {
			b.UpdatedAt = newerThan(p.UpdatedAt, b.UpdatedAt)
		} else if v, ok := l.tombs[b.ID]; ok {
			b.UpdatedAt = newerThan(v, b.UpdatedAt)
			delete(l.tombs, b.ID)
		}
		l.pending = append(l.pending, *b)
	}
	kept := make(map[string]bool, len(next))
	for _, b := range next {
		kept[b.ID] = true
	}
	for _, b := range old {
		l.perSite[b.Site]--
		if !kept[b.ID] && b.Expires.After(now) { // removed, not merely expired
			b.Deleted, b.UpdatedAt = true, newerThan(b.UpdatedAt, now)
			l.pending = append(l.pending, b)
			l.tombs[b.ID] = b.UpdatedAt
		}
	}
	for _, b := range next {
		l.perSite[b.Site]++
	}
	if len(next) == 0 {
		delete(l.byAOR, aor)
	} else {
		l.byAOR[aor] = next
	}
	if len(l.pending) != before {
		l.queued++
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return next, nil
}

// newerThan returns t, or prev plus a millisecond when t is not after prev:
// the store versions bindings by UpdatedAt at millisecond precision and
// ignores a change that is not newer.
func newerThan(prev, t time.Time) time.Time {
	if floor := prev.Truncate(time.Millisecond).Add(time.Millisecond); t.Before(floor) {
		return floor
	}
	return t
}

// expire forgets bindings past their expiry. It writes no tombstone: an
// expired binding is not live anywhere anyway (readers filter on expiry),
// and a tombstone stamped now could hide the same phone's newer registration
// on another node. Only an explicit removal (Expires: 0, Contact: *) is
// versioned as a tombstone.
func (l *Location) expire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, v := range l.tombs {
		if v.Before(now.Add(-time.Second)) {
			delete(l.tombs, id)
		}
	}
	for aor, bs := range l.byAOR {
		if !anyExpired(bs, now) {
			continue // the common case: no copy, no garbage
		}
		live := bs[:0:0]
		for _, b := range bs {
			if b.Expires.After(now) {
				live = append(live, b)
				continue
			}
			l.perSite[b.Site]--
		}
		if len(live) == 0 {
			delete(l.byAOR, aor)
		} else {
			l.byAOR[aor] = live
		}
	}
}

func anyExpired(bs []store.Binding, now time.Time) bool {
	for _, b := range bs {
		if !b.Expires.After(now) {
			return true
		}
	}
	return false
}

// takePending takes the changes to persist, and the count of Updates they
// cover.
func (l *Location) takePending() ([]store.Binding, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = nil
	return p, l.queued
}

// Queued is a mark for WaitDurable: the changes made so far.
func (l *Location) Queued() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued
}

// WaitDurable waits until the changes up to mark are in the store, or ctx
// ends (false). It does not wait when nothing commits (Run not running)
// or the last commit failed (a full disk: waiting would only slow every
// answer).
func (l *Location) WaitDurable(ctx context.Context, mark uint64) bool {
	for {
		l.mu.Lock()
		done, wake := l.durable >= mark, l.wake
		l.mu.Unlock()
		if done || !l.running.Load() || l.failing.Load() {
			return done
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

func (l *Location) markDurable(upTo uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if upTo > l.durable {
		l.durable = upTo
		close(l.wake)
		l.wake = make(chan struct{})
	}
}

// Run group-commits changes (at most every 20 ms, more under load in one
// batch) and expires bindings every second, until ctx ends; then it flushes
// what is left and returns.
func (l *Location) Run(ctx context.Context) {
	l.running.Store(true)
	defer func() {
		l.running.Store(false)
		l.mu.Lock()
		close(l.wake) // nobody waits for a commit that will not come
		l.wake = make(chan struct{})
		l.mu.Unlock()
	}()
	expiry := time.NewTicker(time.Second)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flush()
			return
		case <-l.kick:
			time.Sleep(20 * time.Millisecond) // let a burst gather into one transaction
		case now := <-expiry.C:
			l.expire(now)
		}
		l.flush()
	}
}

// persistChunk bounds one group commit, which holds the store's single
// writer (and so delays Raft applies) while it runs.
const persistChunk = 1000

func (l *Location) flush() {
	batch, upTo := l.takePending()
	for len(batch) > 0 {
		chunk := batch[:min(persistChunk, len(batch))]
		err := l.persist(chunk)
		switch {
		case errors.Is(err, store.ErrInvalidBinding):
			l.log.Error("dropping bindings the store refuses", "bindings", len(chunk), "error", err)
		case err != nil:
			l.log.Error("persist bindings; will retry", "bindings", len(batch), "error", err)
			l.failing.Store(true)
			l.mu.Lock()
			l.pending = append(batch, l.pending...)
			close(l.wake) // the waiters answer now: see WaitDurable
			l.wake = make(chan struct{})
			l.mu.Unlock()
			return
		}
		batch = batch[len(chunk):]
	}
	l.failing.Store(false)
	l.markDurable(upTo)
}
