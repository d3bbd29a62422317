package player

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

const (
	frameDur     = 20 * time.Millisecond
	frameSamples = g711.SampleRate / 50 // 160 samples, 160 timestamp units
	grid         = time.Millisecond     // session starts are spread on this grid
	phases       = int(frameDur / grid)
	headerSize   = 12

	// DefaultMaxBurst is the default Config.MaxBurst.
	DefaultMaxBurst = 2
	// catchUpGap is the pause of a late session between two bursts.
	catchUpGap = 5 * time.Millisecond
	// DefaultDTMFPayloadType is the default SessionConfig.DTMFPayloadType.
	DefaultDTMFPayloadType = 101
)

// PacketWriter sends one RTP packet. b is only valid during the call.
// The RTP layer implements it over a UDP socket.
type PacketWriter interface {
	WritePacket(b []byte) error
}

// Config configures a Player.
type Config struct {
	// MaxBurst is the most packets a late session sends back to back
	// while catching up. Zero means DefaultMaxBurst.
	MaxBurst int
	// Logger receives the player's logs; component=player is added. Nil
	// discards them.
	Logger *slog.Logger
}

// Stats are a player's counters since New.
type Stats struct {
	Sessions    int    // open sessions
	Packets     uint64 // packets written
	WriteErrors uint64 // packets the PacketWriter refused
	// Late counts the times a session was still behind after a burst:
	// the pacing goroutine did not get the CPU in time.
	Late uint64
}

// Player paces the RTP streams of many sessions from one goroutine. It is
// safe for concurrent use.
type Player struct {
	log      *slog.Logger
	maxBurst int
	epoch    time.Time // the monotonic zero of every session time
	clock    func() int64

	mu       sync.Mutex
	heap     sessionHeap
	perPhase [phases]int
	sessions map[*Session]struct{}
	closed   bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	batch []*Session // owned by the pacing goroutine

	packets, writeErrs, late atomic.Uint64
}

// ErrPlayerClosed is returned by Start after Close.
var ErrPlayerClosed = errors.New("player closed")

// New starts a Player's pacing goroutine. Close stops it.
func New(cfg Config) *Player {
	p := newPlayer(cfg)
	go p.run()
	return p
}

func newPlayer(cfg Config) *Player {
	if cfg.MaxBurst <= 0 {
		cfg.MaxBurst = DefaultMaxBurst
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Player{
		log:      log.With("component", "player"),
		maxBurst: cfg.MaxBurst,
		epoch:    time.Now(),
		sessions: map[*Session]struct{}{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.clock = func() int64 { return int64(time.Since(p.epoch)) }
	return p
}

// SessionConfig configures one stream.
type SessionConfig struct {
	// Codec is PCMU or PCMA, as negotiated.
	Codec g711.Codec
	// DTMFPayloadType is the negotiated telephone-event payload type for
	// Digits. Zero means 101.
	DTMFPayloadType uint8
	// SSRC of the stream. Zero means a random one.
	SSRC uint32
	// IdleSilence sends silence while nothing is queued, which keeps NAT
	// bindings open and the far end's jitter buffer primed. Without it
	// the stream pauses (the timestamps still advance with the clock).
	IdleSilence bool
	// CallID labels the session's logs.
	CallID string
}

// Start opens a session that writes its packets to w. Nothing is sent
// until Play, unless IdleSilence is set. The first packet is due within
// 21 ms.
func (p *Player) Start(w PacketWriter, cfg SessionConfig) (*Session, error) {
	if w == nil {
		return nil, errors.New("player start: nil PacketWriter")
	}
	if !cfg.Codec.Valid() {
		return nil, fmt.Errorf("player start: codec %v: want PCMU or PCMA", cfg.Codec)
	}
	if cfg.DTMFPayloadType == 0 {
		cfg.DTMFPayloadType = DefaultDTMFPayloadType
	}
	if cfg.DTMFPayloadType > 127 || cfg.DTMFPayloadType == cfg.Codec.PayloadType() {
		return nil, fmt.Errorf("player start: telephone-event payload type %d: want 1-127, not the codec's", cfg.DTMFPayloadType)
	}
	if cfg.SSRC == 0 {
		cfg.SSRC = rand.Uint32() | 1
	}
	s := &Session{
		p:     p,
		w:     w,
		cfg:   cfg,
		log:   p.log.With("call_id", cfg.CallID, "ssrc", cfg.SSRC),
		index: -1,
		ts0:   rand.Uint32(),
		seq:   uint16(rand.Uint32()),
	}
	s.hdr.Version = 2
	s.hdr.SSRC = cfg.SSRC

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("player start: %w", ErrPlayerClosed)
	}
	// The least busy millisecond of a frame, from the next but one on.
	first := (p.now()/int64(grid) + 2) * int64(grid)
	base := int(first / int64(grid))
	best := 0
	for k := 1; k < phases; k++ {
		if p.perPhase[(base+k)%phases] < p.perPhase[(base+best)%phases] {
			best = k
		}
	}
	s.start = first + int64(best)*int64(grid)
	s.phase = int(s.start/int64(grid)) % phases
	s.due, s.wakeAt = s.start, s.start
	p.perPhase[s.phase]++
	p.sessions[s] = struct{}{}
	if cfg.IdleSilence {
		p.heap.push(s)
		p.poke()
	} else {
		s.parked = true
	}
	return s, nil
}

// Close ends every session (their playbacks end with ErrClosed) and stops
// the pacing goroutine.
func (p *Player) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	all := make([]*Session, 0, len(p.sessions))
	for s := range p.sessions {
		all = append(all, s)
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, s := range all {
		s.Close()
	}
	return nil
}

// Stats returns the player's counters.
func (p *Player) Stats() Stats {
	p.mu.Lock()
	n := len(p.sessions)
	p.mu.Unlock()
	return Stats{Sessions: n, Packets: p.packets.Load(), WriteErrors: p.writeErrs.Load(), Late: p.late.Load()}
}

// now is the monotonic time since the epoch, in nanoseconds.
func (p *Player) now() int64 { return p.clock() }

// poke wakes the pacing goroutine to look at the heap again.
func (p *Player) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Player) run() {
	defer close(p.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next, ok := p.step(p.now())
		wait := time.Hour
		if ok {
			wait = time.Duration(next - p.now())
		}
		if wait <= 0 {
			select {
			case <-p.stop:
				return
			default:
				continue
			}
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-p.wake:
		case <-p.stop:
			return
		}
	}
}

// step sends what is due at now and returns when the next session is
// due, if any.
func (p *Player) step(now int64) (next int64, ok bool) {
	p.mu.Lock()
	batch := p.batch[:0]
	for len(p.heap) > 0 && p.heap[0].wakeAt <= now {
		batch = append(batch, p.heap.pop())
	}
	p.mu.Unlock()

	for _, s := range batch {
		s.tick(now)
	}

	p.mu.Lock()
	for i, s := range batch {
		if s.resched {
			p.heap.push(s)
		}
		batch[i] = nil
	}
	p.batch = batch[:0]
	if len(p.heap) > 0 {
		next, ok = p.heap[0].wakeAt, true
	}
	p.mu.Unlock()
	return next, ok
}

// sessionHeap is a min-heap of sessions by wakeAt; each knows its index.
type sessionHeap []*Session

func (h *sessionHeap) push(s *Session) {
	s.index = len(*h)
	*h = append(*h, s)
	h.up(s.index)
}

func (h *sessionHeap) pop() *Session {
	old := *h
	s := old[0]
	last := len(old) - 1
	old.swap(0, last)
	old[last] = nil
	*h = old[:last]
	if last > 0 {
		h.down(0)
	}
	s.index = -1
	return s
}

func (h *sessionHeap) remove(s *Session) {
	i := s.index
	if i < 0 || i >= len(*h) || (*h)[i] != s {
		return
	}
	old := *h
	last := len(old) - 1
	old.swap(i, last)
	old[last] = nil
	*h = old[:last]
	if i < last {
		h.down(i)
		h.up(i)
	}
	s.index = -1
}

func (h sessionHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h sessionHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].wakeAt <= h[i].wakeAt {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h sessionHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].wakeAt < h[l].wakeAt {
			m = r
		}
		if h[i].wakeAt <= h[m].wakeAt {
			return
		}
		h.swap(i, m)
		i = m
	}
}
