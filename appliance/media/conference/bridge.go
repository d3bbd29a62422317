package conference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// The prompts played when someone joins (to the others, once the
// conference has three or more) and leaves (to those who remain). An
// account's custom recording of the same name replaces the built-in tone.
const (
	JoinTone  = "join-tone"
	LeaveTone = "leave-tone"
)

// toneShift attenuates the join and leave tones by 12 dB: the built-in
// ones are recorded at -3 dBFS, loud over a conversation, and would clip
// the mix of anyone talking.
const toneShift = 2

var (
	// ErrClosed: the conference was closed.
	ErrClosed = errors.New("conference closed")
	// ErrExists: a conference or a participant of that id is open already.
	ErrExists = errors.New("already open")
)

// Config configures the conferences of a node.
type Config struct {
	IP      netip.Addr       // the media IP the participants' sockets bind
	Prompts *prompts.Library // resolves Play's prompts and the join and leave tones
	Log     *slog.Logger
	// SendLate is for benchmarks and off (nil) in production. When set,
	// it is called for every packet of the mix sent, with how late it
	// left: from the time its frame was due to just after the send
	// returned (the mixing, the packets sent before it and waiting for a
	// CPU included); and for every packet a mixer too late did not send
	// (maxBehind), with how late it was then. It runs on a mixing
	// goroutine: it must be quick, safe for concurrent use and must not
	// block.
	SendLate func(time.Duration)
}

// Bridges opens conferences and mixes them (clock.go).
type Bridges struct {
	cfg   Config
	log   *slog.Logger
	clock *clock

	mu    sync.Mutex
	confs map[string]*Conference
}

// New returns the node's conference factory.
func New(cfg Config) (*Bridges, error) {
	if cfg.Prompts == nil || !cfg.IP.IsValid() {
		return nil, errors.New("conference: the media IP and a prompt library are required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bridges{cfg: cfg, log: log.With("component", "conference"), clock: newClock(), confs: map[string]*Conference{}}, nil
}

// Open starts a conference, empty, under id (unique among the open ones).
// The node's clock mixes it until Close.
func (b *Bridges) Open(id string) (*Conference, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.confs[id]; ok {
		return nil, fmt.Errorf("conference %s: %w", id, ErrExists)
	}
	c := &Conference{b: b, id: id, log: b.log.With("conference_id", id), done: make(chan struct{})}
	b.confs[id] = c
	b.clock.add(c)
	return c, nil
}

// Lookup returns the open conference of that id, if any.
func (b *Bridges) Lookup(id string) (*Conference, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.confs[id]
	return c, ok
}

// Conference is one mix. Its methods are safe for concurrent use.
type Conference struct {
	b   *Bridges
	id  string
	log *slog.Logger

	mu      sync.Mutex
	parts   []*Participant // in join order
	pending []*overlay     // sounds to mix from the next frame
	gone    []*Participant // left since the last frame
	closed  bool

	done      chan struct{} // the clock has taken the conference out
	closeOnce sync.Once

	// Its place in the clock, under the clock's lock.
	slot   int
	weight int // 1 + its participants
	placed bool

	m mixer // owned by the clock's goroutine
}

// ID is the conference's id.
func (c *Conference) ID() string { return c.id }

// Join adds a party: it binds a UDP socket on the media IP (Addr, where
// peer must send the party's media), connected to peer, sends peer the mix
// of everyone else in codec from the next frame, and hears the party's
// keys as telephone-events of payload type dtmfPT (0: none). When the
// conference already has two parties or more, they hear the join tone;
// the one joining does not, nor does the second party of a two-party
// call turned into a conference.
func (c *Conference) Join(partID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (*Participant, error) {
	if !codec.Valid() {
		return nil, fmt.Errorf("conference %s join %s: codec %v: want PCMU or PCMA", c.id, partID, codec)
	}
	if dtmfPT > 127 || (dtmfPT != 0 && dtmfPT == codec.PayloadType()) {
		return nil, fmt.Errorf("conference %s join %s: telephone-event payload type %d: want 0 (none) or 1-127, not the codec's", c.id, partID, dtmfPT)
	}
	if !peer.IsValid() {
		return nil, fmt.Errorf("conference %s join %s: no peer address", c.id, partID)
	}
	tone := c.b.cfg.Prompts.Prompt(JoinTone).Samples // outside the lock: a custom one is read from disk
	p := newParticipant(c, partID, codec, dtmfPT)
	if err := p.sock.open(c.b.cfg.IP, peer); err != nil {
		return nil, fmt.Errorf("conference %s join %s: socket on %s toward %s: %w", c.id, partID, c.b.cfg.IP, peer, err)
	}
	c.mu.Lock()
	err := error(nil)
	switch {
	case c.closed:
		err = ErrClosed
	case slices.ContainsFunc(c.parts, func(q *Participant) bool { return q.id == partID }):
		err = fmt.Errorf("participant %s: %w", partID, ErrExists)
	}
	if err != nil {
		c.mu.Unlock()
		p.sock.close()
		return nil, fmt.Errorf("conference %s join: %w", c.id, err)
	}
	if len(c.parts) >= 2 {
		c.pending = append(c.pending, newOverlay([][]int16{tone}, toneShift, p))
	}
	c.parts = append(c.parts, p)
	c.mu.Unlock()
	c.b.clock.weigh(c, 1)
	c.poke()
	p.log.Info("conference joined", "codec", codec.String(), "peer", peer.String(), "addr", p.Addr().String())
	return p, nil
}

// leave is Participant.Leave.
func (c *Conference) leave(p *Participant) {
	p.leaveOnce.Do(func() {
		tone := c.b.cfg.Prompts.Prompt(LeaveTone).Samples
		c.mu.Lock()
		c.parts = slices.DeleteFunc(c.parts, func(q *Participant) bool { return q == p })
		handed := !c.closed // the mixer closes Keys when it takes p out
		if handed {
			c.gone = append(c.gone, p)
			if len(c.parts) > 0 {
				c.pending = append(c.pending, newOverlay([][]int16{tone}, toneShift, nil))
			}
		}
		c.mu.Unlock()
		c.b.clock.weigh(c, -1)
		p.sock.close()
		if handed {
			c.poke()
		} else {
			<-c.done
			p.closeKeys()
		}
		p.log.Info("conference left")
	})
}

// Play mixes the prompts, in order, into what everyone hears and returns
// when they end, ctx ends (they stop) or the conference closes. Prompts
// played at the same time are mixed together.
func (c *Conference) Play(ctx context.Context, names ...string) error {
	var segs [][]int16
	for _, n := range names {
		if n != "" {
			segs = append(segs, c.b.cfg.Prompts.Prompt(n).Samples)
		}
	}
	o := newOverlay(segs, 0, nil)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.pending = append(c.pending, o)
	c.mu.Unlock()
	c.poke()
	select {
	case <-o.done:
		return nil
	case <-ctx.Done():
		o.cancel.Store(true)
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// Participants lists the ids of the parties in the conference, in the
// order they joined.
func (c *Conference) Participants() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(c.parts))
	for i, p := range c.parts {
		ids[i] = p.id
	}
	return ids
}

// Close ends the conference: its mixing stops (within a frame), every
// participant leaves (no tones) and its socket is closed, Play returns
// ErrClosed. Calling it again does nothing.
func (c *Conference) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.poke()
		<-c.done
		c.mu.Lock()
		parts := slices.Clone(c.parts)
		c.mu.Unlock()
		for _, p := range parts {
			p.Leave()
		}
		c.b.mu.Lock()
		if c.b.confs[c.id] == c {
			delete(c.b.confs, c.id)
		}
		c.b.mu.Unlock()
		c.log.Info("conference closed")
	})
}

// poke wakes the clock if it is parked.
func (c *Conference) poke() { c.b.clock.poke() }
