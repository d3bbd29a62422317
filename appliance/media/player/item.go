package player

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
)

// Errors a Playback ends with.
var (
	// ErrStopped: Stop was called (barge-in) before the playback ended.
	ErrStopped = errors.New("playback stopped")
	// ErrClosed: the session or the player was closed.
	ErrClosed = errors.New("player session closed")
)

// Timing of key presses sent by Digits.
const (
	KeyDuration = 100 * time.Millisecond // each key is held this long
	KeyGap      = 100 * time.Millisecond // silence after each key
)

// Item is one thing a session plays: audio, silence or key presses.
type Item struct {
	samples []int16   // audio at 8 kHz
	loop    bool      // samples start over at their end, until Stop
	silence int       // frames of silence
	keys    []keyStep // frame by frame
}

// keyStep is one frame of a Digits item: an RFC 4733 packet, or silence
// between keys.
type keyStep struct {
	gap    bool
	marker bool
	ev     dtmf.Event
	since  uint32 // frames since the key's first packet (its timestamp)
	last   int    // index of the key's last step, where Stop may cut
}

// Audio plays 8 kHz mono linear samples (a prompts.Prompt's Samples), the
// first packet with the marker bit. The last packet is padded with
// silence. The samples are read while playing: do not modify them.
func Audio(samples []int16) Item { return Item{samples: samples} }

// Loop plays 8 kHz mono linear samples over and over (music on hold):
// the playback never ends by itself, only by Stop or Close. Only the
// first packet has the marker bit; at each turn the audio goes on without
// a gap, so samples that end where they begin loop seamlessly. An empty
// loop plays silence.
func Loop(samples []int16) Item {
	if len(samples) == 0 {
		samples = make([]int16, frameSamples)
	}
	return Item{samples: samples, loop: true}
}

// Silence plays silence for d, rounded up to whole 20 ms packets.
func Silence(d time.Duration) Item {
	return Item{silence: int((d + frameDur - 1) / frameDur)}
}

// Digits sends keys ('0'-'9', '*', '#', 'A'-'D') as RFC 4733 events on
// the session's telephone-event payload type: each held KeyDuration with
// an update every 20 ms and three end packets, then KeyGap of silence.
func Digits(keys string) (Item, error) {
	snd := dtmf.Sender{Duration: KeyDuration, Interval: frameDur}
	var steps []keyStep
	for i := range len(keys) {
		pk, err := snd.Packets(keys[i])
		if err != nil {
			return Item{}, fmt.Errorf("player digits %q: %w", keys, err)
		}
		first := len(steps)
		last := first + len(pk) - 1
		for j, p := range pk {
			steps = append(steps, keyStep{marker: p.Marker, ev: p.Event, since: uint32(j), last: last})
		}
		for range int(KeyGap / frameDur) {
			steps = append(steps, keyStep{gap: true})
		}
	}
	return Item{keys: steps}, nil
}

// Duration is how long the item plays (a Loop: one turn).
func (it Item) Duration() time.Duration {
	frames := it.silence + len(it.keys) + (len(it.samples)+frameSamples-1)/frameSamples
	return time.Duration(frames) * frameDur
}

// Playback is one call of Session.Play.
type Playback struct {
	items []Item
	done  chan struct{}
	err   error
}

func newPlayback(items []Item) *Playback {
	return &Playback{items: slices.Clone(items), done: make(chan struct{})}
}

// Done is closed when the playback has ended: its last packet sent and
// its 20 ms elapsed, or stopped, or the session closed.
func (pb *Playback) Done() <-chan struct{} { return pb.done }

// Err is nil once the playback played to its end, ErrStopped or
// ErrClosed if it was cut short; nil before Done.
func (pb *Playback) Err() error {
	select {
	case <-pb.done:
		return pb.err
	default:
		return nil
	}
}

// Wait waits for the playback to end or ctx to be done.
func (pb *Playback) Wait(ctx context.Context) error {
	select {
	case <-pb.done:
		return pb.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (pb *Playback) finish(err error) {
	pb.err = err
	close(pb.done)
}
