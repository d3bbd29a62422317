package sbc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// State is a trunk's health as OPTIONS probes have seen it.
type State string

// Trunk health states.
const (
	StateUnknown State = "unknown" // not answered yet and not failed DownAfter times: usable
	StateUp      State = "up"
	StateDown    State = "down"
)

// Usable reports whether calls may be sent to a trunk in this state: any
// state but down, so that a fresh node can place calls before its first probe.
func (s State) Usable() bool { return s != StateDown }

// Thresholds of the health machine.
const (
	DownAfter = 3 // consecutive failures that take a trunk down
	UpAfter   = 2 // consecutive successes that bring a down trunk back up
)

// DefaultProbeTimeout bounds one OPTIONS probe (never more than the trunk's interval).
const DefaultProbeTimeout = 5 * time.Second

// ErrTrunkUnavailable marks an OPTIONS answer that counts as a failure.
var ErrTrunkUnavailable = errors.New("trunk unavailable")

// OptionsError classifies the final status of an OPTIONS transaction for the
// Ping func: nil when the trunk is alive (200-699: whatever it answered, it
// is there), an error wrapping ErrTrunkUnavailable for 503 (the SBC says it
// is out of service), for 408 (most stacks synthesise it on a timeout, so it
// cannot be told from silence) and for anything that is not a final status.
func OptionsError(status int) error {
	switch {
	case status == 503:
		return fmt.Errorf("%w: OPTIONS answered 503 Service Unavailable", ErrTrunkUnavailable)
	case status == 408:
		return fmt.Errorf("%w: OPTIONS answered 408 Request Timeout", ErrTrunkUnavailable)
	case status >= 200 && status <= 699:
		return nil
	default:
		return fmt.Errorf("%w: OPTIONS answered %d, which is not a final status", ErrTrunkUnavailable, status)
	}
}

// Target is where a trunk's requests go: what a probe pings and what the
// resolver resolves. Two trunks with the same Target are the same peer.
type Target struct {
	TrunkID   string
	Host      string // IP address or FQDN
	Port      int
	Transport string // udp, tcp or tls
}

// TargetOf is the trunk's Target.
func TargetOf(t account.Trunk) Target {
	return Target{TrunkID: t.ID, Host: t.Host, Port: t.Port, Transport: t.Transport}
}

// Health is one trunk's health. It is a value: Observe returns the next one.
type Health struct {
	State        State
	LastProbeAt  time.Time     // when the last probe finished
	LastAnswerAt time.Time     // when the trunk last answered alive
	RTT          time.Duration // round trip of the last alive answer
	LastError    string        // the last failure, kept after recovery for the status page
	Failures     int           // consecutive failures
	Successes    int           // consecutive successes
}

// Observe applies one probe result (err nil: alive, answered after rtt) at time at.
func (h Health) Observe(at time.Time, rtt time.Duration, err error) Health {
	h.LastProbeAt = at
	if err != nil {
		h.Failures++
		h.Successes = 0
		h.LastError = err.Error()
		if h.Failures >= DownAfter {
			h.State = StateDown
		}
		if h.State == "" {
			h.State = StateUnknown
		}
		return h
	}
	h.Successes++
	h.Failures = 0
	h.LastAnswerAt = at
	h.RTT = rtt
	switch h.State {
	case StateDown:
		if h.Successes >= UpAfter {
			h.State = StateUp
		}
	default:
		h.State = StateUp
	}
	return h
}

// TrunkStatus is one trunk's health for the API (/api/v1/status "trunks").
type TrunkStatus struct {
	ID                   string     `json:"id"`
	Healthy              bool       `json:"healthy"` // usable: up or unknown
	State                State      `json:"state"`
	LastOptionsAt        *time.Time `json:"last_options_at"` // last alive answer; null before the first
	RTTMs                *float64   `json:"rtt_ms"`          // of that answer
	LastError            string     `json:"last_error"`
	ConsecutiveFailures  int        `json:"consecutive_failures"`
	ConsecutiveSuccesses int        `json:"consecutive_successes"`
}

func (h Health) status(id string) TrunkStatus {
	s := TrunkStatus{
		ID: id, Healthy: h.State.Usable(), State: h.State, LastError: h.LastError,
		ConsecutiveFailures: h.Failures, ConsecutiveSuccesses: h.Successes,
	}
	if !h.LastAnswerAt.IsZero() {
		at := h.LastAnswerAt
		ms := float64(h.RTT) / float64(time.Millisecond)
		s.LastOptionsAt, s.RTTMs = &at, &ms
	}
	return s
}

// Ping sends one OPTIONS to the target and reports the round trip, or an
// error when the trunk did not answer alive (see OptionsError).
type Ping func(ctx context.Context, t Target) (rtt time.Duration, err error)

// Rand is the randomness sbc needs; *math/rand/v2.Rand satisfies it. Prober
// and Resolver call it under their own locks; Select needs none.
type Rand interface {
	IntN(n int) int
}

// ProberOptions configures a Prober. Only Ping is required.
type ProberOptions struct {
	Ping    Ping
	Now     func() time.Time // default time.Now
	Rand    Rand             // jitter; default a PCG seeded from the clock
	Timeout time.Duration    // per probe, default DefaultProbeTimeout, capped at the trunk's interval
	Log     *slog.Logger
}

// Prober probes every trunk of the snapshot every options_interval_s from
// one scheduler goroutine (Run), each probe in its own short goroutine, with
// ±10 % jitter and first probes spread over the first interval.
type Prober struct {
	ping    Ping
	now     func() time.Time
	rnd     Rand
	timeout time.Duration
	log     *slog.Logger
	unit    time.Duration // the unit of options_interval_s: a second, shorter in tests

	mu     sync.Mutex
	trunks map[string]*probeEntry
	order  []string // snapshot order, for Status
	wake   chan struct{}
	wg     sync.WaitGroup
}

type probeEntry struct {
	target   Target
	interval time.Duration
	health   Health
	next     time.Time
	inflight bool
}

// NewProber returns a Prober with no trunks; call SetTrunks, then Run.
func NewProber(o ProberOptions) (*Prober, error) {
	if o.Ping == nil {
		return nil, errors.New("new prober: Ping is required")
	}
	p := &Prober{
		ping: o.Ping, now: o.Now, rnd: o.Rand, timeout: o.Timeout, log: o.Log, unit: time.Second,
		trunks: make(map[string]*probeEntry), wake: make(chan struct{}, 1),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rnd == nil {
		seed := uint64(time.Now().UnixNano())
		p.rnd = rand.New(rand.NewPCG(seed, seed>>1|1))
	}
	if p.timeout <= 0 {
		p.timeout = DefaultProbeTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "sbc")
	return p, nil
}

// SetTrunks replaces the probed trunks with a snapshot's. A trunk whose
// Target is unchanged keeps its health and schedule; a new or changed one
// starts unknown, its first probe somewhere within its first interval.
func (p *Prober) SetTrunks(trunks []account.Trunk) {
	now := p.now()
	p.mu.Lock()
	next := make(map[string]*probeEntry, len(trunks))
	order := make([]string, 0, len(trunks))
	for _, t := range trunks {
		if _, dup := next[t.ID]; dup {
			continue
		}
		interval := time.Duration(max(t.OptionsIntervalS, 1)) * p.unit
		e, ok := p.trunks[t.ID]
		if !ok || e.target != TargetOf(t) {
			e = &probeEntry{target: TargetOf(t), health: Health{State: StateUnknown}}
			e.next = now.Add(time.Duration(p.rnd.IntN(int(interval))))
		} else if e.next.After(now.Add(interval)) {
			e.next = now.Add(p.jitter(interval))
		}
		e.interval = interval
		next[t.ID] = e
		order = append(order, t.ID)
	}
	p.trunks, p.order = next, order
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// jitter is d ± 10 %. Callers hold p.mu.
func (p *Prober) jitter(d time.Duration) time.Duration {
	spread := int(d / 5)
	if spread <= 0 {
		return d
	}
	return d - d/10 + time.Duration(p.rnd.IntN(spread))
}

// Run schedules probes until ctx ends, then waits for probes in flight.
// Call it once, from the node's start-up; SetTrunks may be called at any time.
func (p *Prober) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer p.wg.Wait()
	for {
		now := p.now()
		p.startDue(ctx, now)
		timer.Reset(p.untilNext(now))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-p.wake:
		}
	}
}

// startDue launches a probe for every trunk due at now that is not already
// being probed, and schedules its next probe.
func (p *Prober) startDue(ctx context.Context, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range p.order {
		e := p.trunks[id]
		if e.inflight || e.next.After(now) {
			continue
		}
		e.inflight = true
		e.next = now.Add(p.jitter(e.interval))
		timeout := min(p.timeout, e.interval)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			rtt, err := p.ping(pctx, e.target)
			cancel()
			if err != nil && ctx.Err() != nil {
				p.mu.Lock()
				e.inflight = false
				p.mu.Unlock()
				return // shutting down: not the trunk's fault
			}
			p.record(e, rtt, err)
		}()
	}
}

// untilNext is how long the scheduler may sleep from now.
func (p *Prober) untilNext(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := time.Hour
	for _, e := range p.trunks {
		if e.inflight {
			continue // record wakes the scheduler
		}
		d = min(d, max(e.next.Sub(now), 0))
	}
	return d
}

// record applies a probe result, unless the trunk was removed or changed meanwhile.
func (p *Prober) record(e *probeEntry, rtt time.Duration, err error) {
	at := p.now()
	p.mu.Lock()
	e.inflight = false
	if p.trunks[e.target.TrunkID] != e {
		p.mu.Unlock()
		return
	}
	before := e.health.State
	e.health = e.health.Observe(at, rtt, err)
	after, failures := e.health.State, e.health.Failures
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if before == after {
		return
	}
	log := p.log.With("trunk_id", e.target.TrunkID, "host", e.target.Host, "port", e.target.Port,
		"transport", e.target.Transport, "from", string(before), "to", string(after))
	if after == StateDown {
		log.Warn("trunk down", "failures", failures, "error", err)
		return
	}
	log.Info("trunk health changed", "rtt_ms", float64(rtt)/float64(time.Millisecond))
}

// States returns every trunk's state, for Select.
func (p *Prober) States() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.trunks))
	for id, e := range p.trunks {
		out[id] = e.health.State
	}
	return out
}

// Health returns one trunk's health; false when the trunk is not probed.
func (p *Prober) Health(id string) (Health, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.trunks[id]
	if !ok {
		return Health{}, false
	}
	return e.health, true
}

// Status returns every trunk's health for the API, in snapshot order.
func (p *Prober) Status() []TrunkStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TrunkStatus, 0, len(p.order))
	for _, id := range p.order {
		out = append(out, p.trunks[id].health.status(id))
	}
	return out
}
