package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultInactivityTimeout = 30 * time.Second
	DefaultRelatchAfter      = 2 * time.Second
	DefaultRTCPRelatchAfter  = 12 * time.Second
	DefaultSweepInterval     = time.Second
)

// ErrNoPorts is returned by Allocate when every port pair of the range is
// in use (or cannot be bound).
var ErrNoPorts = errors.New("no free RTP port pair")

// ErrClosed is returned by Allocate after the relay was closed.
var ErrClosed = errors.New("media relay closed")

// Config configures a Relay.
type Config struct {
	// IP is the address the sockets bind on and the B2BUA advertises in
	// its SDP. It must be a specific address, not 0.0.0.0.
	IP netip.Addr
	// PortMin and PortMax bound the inclusive port range (media.rtp_ports,
	// see config.Media.PortRange). PortMin must be even: each pair is an
	// even RTP port and the odd RTCP port above it.
	PortMin, PortMax int
	// InactivityTimeout is how long media may stop in both directions
	// before OnTimeout is called. Zero means DefaultInactivityTimeout.
	InactivityTimeout time.Duration
	// RelatchAfter is how long the latched RTP source must be silent
	// before another source may take over. Zero means DefaultRelatchAfter.
	RelatchAfter time.Duration
	// RTCPRelatchAfter is the same for RTCP, which is sent every few
	// seconds only. Zero means DefaultRTCPRelatchAfter.
	RTCPRelatchAfter time.Duration
	// StrictLatch turns off re-latching on a new SSRC: only silence lets
	// another source take over. Without it a source with a fresh SSRC
	// takes over at once (a far end that restarted its media), which an
	// off-path sender that guesses the port can also do.
	StrictLatch bool
	// SweepInterval is how often the relay looks for idle sessions. Zero
	// means DefaultSweepInterval.
	SweepInterval time.Duration
	// Workers is how many goroutines forward packets, each for a share of
	// the sessions. Zero means GOMAXPROCS, at most 4.
	Workers int
	// SocketBuffer sets SO_RCVBUF and SO_SNDBUF on every socket, in bytes.
	// Zero keeps the system default.
	SocketBuffer int
	// Residence is for benchmarks and off (nil) in production. When set,
	// every socket asks the kernel to stamp each datagram's arrival
	// (SO_TIMESTAMPNS) and Residence is called for every packet forwarded
	// with the time it spent in the relay: from that stamp to just before
	// it was sent on, waiting for the CPU and behind other packets
	// included. It is the delay the relay adds, measured where it happens.
	// It runs on a forwarding goroutine: it must be quick, safe for
	// concurrent use and must not block. Linux only (elsewhere it is never
	// called).
	Residence func(time.Duration)
	// Logger receives the relay's logs; component=media is added. Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for latching and inactivity. Nil means time.Now.
	Now func() time.Time
}

// Relay owns a port range on one IP and relays RTP and RTCP for the
// sessions it allocates. It is safe for concurrent use.
type Relay struct {
	cfg   Config
	log   *slog.Logger
	epoch time.Time
	rtp   latchPolicy
	rtcp  latchPolicy

	mu         sync.Mutex
	used       []bool // one per port pair, by index from PortMin
	inUse      int
	next       int
	sessions   map[*Session]struct{}
	closed     bool
	pollers    []*poller
	nextPoller int
	gone       Counters // totals of closed sessions
	timeouts   uint64

	stop     chan struct{}
	sweeping sync.WaitGroup
}

// New checks cfg and starts the relay's forwarding workers and its
// inactivity sweeper. Close stops them.
func New(cfg Config) (*Relay, error) {
	switch {
	case !cfg.IP.IsValid() || cfg.IP.IsUnspecified():
		return nil, fmt.Errorf("media relay: IP %q must be a specific address to bind and advertise", cfg.IP)
	case cfg.PortMin < 1024 || cfg.PortMax > 65535 || cfg.PortMin >= cfg.PortMax:
		return nil, fmt.Errorf("media relay: port range %d-%d: want 1024 <= min < max <= 65535", cfg.PortMin, cfg.PortMax)
	case cfg.PortMin%2 != 0:
		return nil, fmt.Errorf("media relay: port range %d-%d: min must be even (RTP even, RTCP odd)", cfg.PortMin, cfg.PortMax)
	}
	cfg.IP = cfg.IP.Unmap()
	if cfg.InactivityTimeout <= 0 {
		cfg.InactivityTimeout = DefaultInactivityTimeout
	}
	if cfg.RelatchAfter <= 0 {
		cfg.RelatchAfter = DefaultRelatchAfter
	}
	if cfg.RTCPRelatchAfter <= 0 {
		cfg.RTCPRelatchAfter = DefaultRTCPRelatchAfter
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{
		cfg: cfg,
		log: log.With("component", "media"),
		// One second before now, so that every relay time is positive and
		// zero can mean "never".
		epoch:    cfg.Now().Add(-time.Second),
		rtp:      latchPolicy{silence: cfg.RelatchAfter, newSSRC: !cfg.StrictLatch},
		rtcp:     latchPolicy{silence: cfg.RTCPRelatchAfter, newSSRC: !cfg.StrictLatch},
		used:     make([]bool, (cfg.PortMax-cfg.PortMin+1)/2),
		sessions: make(map[*Session]struct{}),
		stop:     make(chan struct{}),
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	for range workers {
		p, err := newPoller(cfg.Residence)
		if err != nil {
			for _, p := range r.pollers {
				_ = p.close()
			}
			return nil, fmt.Errorf("media relay: %w", err)
		}
		r.pollers = append(r.pollers, p)
	}
	r.sweeping.Add(1)
	go r.sweepLoop()
	return r, nil
}

// now is the relay clock: time since the epoch, always positive.
func (r *Relay) now() time.Duration { return r.cfg.Now().Sub(r.epoch) }

// Allocate binds two port pairs (one per side) and starts relaying between
// them. callID labels the session in logs and stats. onTimeout, if not
// nil, is called once, on its own goroutine, when media has stopped both
// ways for the inactivity timeout; the caller ends the call and closes the
// session. A full range returns an error wrapping ErrNoPorts.
func (r *Relay) Allocate(callID string, onTimeout func(*Session)) (*Session, error) {
	s := &Session{relay: r, callID: callID, onTimeout: onTimeout,
		log: r.log.With("call_id", callID), gone: make(chan struct{})}
	s.a.init(s, "a", &s.b)
	s.b.init(s, "b", &s.a)
	s.lastActive.Store(int64(r.now()))

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("allocate media for call %s: %w", callID, ErrClosed)
	}
	for _, side := range []*Side{&s.a, &s.b} {
		idx, err := r.bindPairLocked(side)
		if err != nil {
			s.closeSocketsLocked()
			return nil, fmt.Errorf("allocate media for call %s: %w", callID, err)
		}
		side.pair = idx
	}
	s.poller = r.pollers[r.nextPoller%len(r.pollers)]
	r.nextPoller++
	if err := s.poller.attach(s.endpoints()); err != nil {
		s.closeSocketsLocked()
		return nil, fmt.Errorf("allocate media for call %s: %w", callID, err)
	}
	r.sessions[s] = struct{}{}
	s.log.Debug("media session allocated", "a_rtp", s.a.rtp.local, "b_rtp", s.b.rtp.local)
	return s, nil
}

// bindPairLocked finds a free pair, binds it for side and marks it used.
// Pairs are handed out round robin, so a freed pair rests before it is
// reused and late packets of an old call rarely reach a new one.
func (r *Relay) bindPairLocked(side *Side) (int, error) {
	n := len(r.used)
	var lastErr error
	for i := range n {
		idx := (r.next + i) % n
		if r.used[idx] {
			continue
		}
		port := r.cfg.PortMin + 2*idx
		if port+1 > r.cfg.PortMax {
			continue
		}
		if err := side.bind(r.cfg.IP, port, r.cfg.SocketBuffer, r.cfg.Residence != nil); err != nil {
			lastErr = err // held by another process: try the next pair
			continue
		}
		r.used[idx] = true
		r.inUse++
		r.next = (idx + 1) % n
		return idx, nil
	}
	if lastErr != nil {
		return 0, fmt.Errorf("%w in %d-%d (%d pairs in use by calls; last bind error: %w): widen media.rtp_ports or end calls",
			ErrNoPorts, r.cfg.PortMin, r.cfg.PortMax, r.inUse, lastErr)
	}
	return 0, fmt.Errorf("%w in %d-%d (all %d pairs in use by calls): widen media.rtp_ports or end calls",
		ErrNoPorts, r.cfg.PortMin, r.cfg.PortMax, r.inUse)
}

// release returns a closed session's pairs and keeps its counters.
func (r *Relay) release(s *Session, c Counters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, side := range []*Side{&s.a, &s.b} {
		if side.pair >= 0 && r.used[side.pair] {
			r.used[side.pair] = false
			r.inUse--
		}
	}
	delete(r.sessions, s)
	r.gone.add(c)
}

// Stats returns the relay's counters: those of every session since New,
// live or closed, and the port usage.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	st := Stats{
		Sessions:      len(r.sessions),
		PortPairs:     len(r.used),
		PortPairsUsed: r.inUse,
		Timeouts:      r.timeouts,
		Counters:      r.gone,
	}
	live := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		live = append(live, s)
	}
	r.mu.Unlock()
	for _, s := range live {
		st.Counters.add(s.counters())
	}
	return st
}

// Sessions returns the stats of every live session.
func (r *Relay) Sessions() []SessionStats {
	r.mu.Lock()
	live := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		live = append(live, s)
	}
	r.mu.Unlock()
	out := make([]SessionStats, 0, len(live))
	for _, s := range live {
		out = append(out, s.Stats())
	}
	return out
}

// Close stops the sweeper and closes every session (without calling their
// OnTimeout). Allocate fails afterwards.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	live := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		live = append(live, s)
	}
	r.mu.Unlock()
	close(r.stop)
	r.sweeping.Wait()
	var errs []error
	for _, s := range live {
		errs = append(errs, s.Close())
	}
	for _, p := range r.pollers {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

func (r *Relay) sweepLoop() {
	defer r.sweeping.Done()
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	var buf []*Session
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			buf = r.sweep(buf[:0])
		}
	}
}

// sweep calls OnTimeout for every session idle for the inactivity
// timeout. buf is scratch space, returned for reuse.
func (r *Relay) sweep(buf []*Session) []*Session {
	now := r.now()
	r.mu.Lock()
	for s := range r.sessions {
		buf = append(buf, s)
	}
	r.mu.Unlock()
	for i, s := range buf {
		buf[i] = nil
		if !s.expire(now, r.cfg.InactivityTimeout) {
			continue
		}
		r.mu.Lock()
		r.timeouts++
		r.mu.Unlock()
		s.log.Info("media inactive, ending call", "idle_s", r.cfg.InactivityTimeout.Seconds())
		if s.onTimeout != nil {
			go s.onTimeout(s)
		}
	}
	return buf
}
