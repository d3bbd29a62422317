package player

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// capture records the packets a session writes.
type capture struct {
	mu   sync.Mutex
	pkts []rtp.Packet
	at   []int64 // player time of each write, when driven by clock
	now  *int64
	fail bool
}

func (c *capture) WritePacket(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("no route")
	}
	var p rtp.Packet
	if err := p.Unmarshal(slices.Clone(b)); err != nil {
		return err
	}
	c.pkts = append(c.pkts, p)
	if c.now != nil {
		c.at = append(c.at, *c.now)
	}
	return nil
}

func (c *capture) packets() []rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

// clock drives a player without its goroutine: run steps it at every
// wake-up time it asks for, up to a horizon.
type clock struct {
	p   *Player
	now int64
}

func newClock(t *testing.T) (*Player, *clock) {
	t.Helper()
	p := newPlayer(Config{})
	c := &clock{p: p, now: p.now()}
	p.clock = func() int64 { return c.now }
	return p, c
}

// runUntil steps the player at each time it asks for until end.
func (c *clock) runUntil(end int64) {
	for {
		next, ok := c.p.step(c.now)
		if !ok || next > end {
			c.now = end
			c.p.step(c.now)
			return
		}
		c.now = max(next, c.now)
	}
}

func (c *clock) run(d time.Duration) { c.runUntil(c.now + int64(d)) }

// checkStream checks the RTP invariants of a stream sent without pauses:
// one SSRC, consecutive sequence numbers and, for audio, timestamps 160
// apart.
func checkStream(t *testing.T, pkts []rtp.Packet, ssrc uint32) {
	t.Helper()
	for i, p := range pkts {
		if p.Version != 2 || p.SSRC != ssrc {
			t.Fatalf("packet %d: version %d ssrc %#x, want 2 and %#x", i, p.Version, p.SSRC, ssrc)
		}
		if i == 0 {
			continue
		}
		if want := pkts[i-1].SequenceNumber + 1; p.SequenceNumber != want {
			t.Fatalf("packet %d: seq %d, want %d", i, p.SequenceNumber, want)
		}
	}
}
