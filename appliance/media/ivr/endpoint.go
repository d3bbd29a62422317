package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/player"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// ErrNoInput: a Menu's timeout passed without a key.
var ErrNoInput = errors.New("no key pressed")

// ErrClosed: the endpoint was closed.
var ErrClosed = errors.New("ivr endpoint closed")

// Config configures the endpoints of a node.
type Config struct {
	IP      netip.Addr       // the media IP the sockets bind
	Player  *player.Player   // paces every endpoint's prompts
	Prompts *prompts.Library // resolves prompt names
	Log     *slog.Logger
}

// Endpoints opens endpoints.
type Endpoints struct {
	cfg Config
	log *slog.Logger
}

// New returns the node's endpoint factory.
func New(cfg Config) (*Endpoints, error) {
	if cfg.Player == nil || cfg.Prompts == nil || !cfg.IP.IsValid() {
		return nil, errors.New("ivr: the media IP, a player and a prompt library are required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Endpoints{cfg: cfg, log: log.With("component", "ivr")}, nil
}

// Endpoint is one call's IVR media.
type Endpoint struct {
	e    *Endpoints
	conn *net.UDPConn
	raw  syscall.RawConn
	sess *player.Session
	log  *slog.Logger

	codec   g711.Codec
	rec     atomic.Pointer[chan []int16] // set while Record runs: the caller's audio goes there
	keys    chan byte                    // keys pressed, in order
	pressed chan struct{}                // a key arrived (barge-in), capacity 1
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// Open binds a socket and starts sending to peer (silence until a prompt
// plays) with codec, reading keys of telephone-event payload type dtmfPT
// (0: keys come only through Key).
func (e *Endpoints) Open(callID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (*Endpoint, error) {
	// Connected to the peer: what it sends is all the socket reads, and
	// the player's writes need no address.
	conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.cfg.IP, 0)), net.UDPAddrFromAddrPort(peer))
	if err != nil {
		return nil, fmt.Errorf("ivr: socket on %s toward %s: %w", e.cfg.IP, peer, err)
	}
	ep := &Endpoint{e: e, conn: conn, log: e.log.With("call_id", callID), codec: codec,
		keys: make(chan byte, 32), pressed: make(chan struct{}, 1), closed: make(chan struct{})}
	if ep.raw, err = conn.SyscallConn(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ivr: %w", err)
	}
	pt := dtmfPT
	if pt == 0 {
		pt = player.DefaultDTMFPayloadType
	}
	ep.sess, err = e.cfg.Player.Start(writer{ep}, player.SessionConfig{Codec: codec, DTMFPayloadType: pt,
		IdleSilence: true, CallID: callID})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ivr: %w", err)
	}
	ep.wg.Add(1)
	go ep.read(dtmfPT)
	return ep, nil
}

// writer sends the player's packets to the peer (send, per platform).
type writer struct{ ep *Endpoint }

func (w writer) WritePacket(b []byte) error { return w.ep.send(b) }

// Addr is the endpoint's socket: where the peer sends the caller's media.
func (ep *Endpoint) Addr() netip.AddrPort {
	return ep.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// read decodes the telephone-events of what comes back into keys.
func (ep *Endpoint) read(pt uint8) {
	defer ep.wg.Done()
	recv := dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: pt})
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var digits []dtmf.Digit
	armed := false // a read deadline is set: only while a key is down
	for {
		switch _, down := recv.Pressed(); {
		case down: // its end packets may all be lost: Expire ends it
			_ = ep.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			armed = true
		case armed:
			_ = ep.conn.SetReadDeadline(time.Time{})
			armed = false
		}
		n, err := ep.conn.Read(buf)
		now := time.Now()
		digits = digits[:0]
		switch {
		case err == nil:
			if pkt.Unmarshal(buf[:n]) != nil {
				break
			}
			if pt != 0 && pkt.PayloadType == pt {
				digits = recv.Feed(digits, &pkt, now)
			} else if rec := ep.rec.Load(); rec != nil && pkt.PayloadType == ep.codec.PayloadType() {
				frame := make([]int16, len(pkt.Payload))
				ep.codec.Decode(frame, pkt.Payload)
				select {
				case *rec <- frame:
				default: // the recorder is behind: the frame is lost, as on the network
				}
			}
		case errors.Is(err, net.ErrClosed):
			return
		default: // the read deadline: an event whose end packets were lost ends here
			digits = recv.Expire(digits, now)
		}
		for _, d := range digits {
			ep.Key(d.Key)
		}
	}
}

// Key hands in a key pressed (from the telephone-events, or a SIP INFO).
func (ep *Endpoint) Key(k byte) {
	select {
	case ep.keys <- k:
	default:
		ep.log.Warn("ivr key dropped: too many unread", "key", string(k))
	}
	select {
	case ep.pressed <- struct{}{}:
	default:
	}
}

// Play plays the prompts in order and returns when they end, ctx ends or
// the endpoint closes.
func (ep *Endpoint) Play(ctx context.Context, names ...string) error {
	pb := ep.sess.Play(ep.items(names)...)
	select {
	case <-pb.Done():
		if errors.Is(pb.Err(), player.ErrClosed) {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		ep.sess.Stop()
		return ctx.Err()
	case <-ep.closed:
		return ErrClosed
	}
}

// Menu plays the prompts and returns the first key pressed, during them
// (barge-in: they stop) or within timeout after them; ErrNoInput when
// none came. Keys pressed before Menu was called count (type-ahead).
func (ep *Endpoint) Menu(ctx context.Context, names []string, timeout time.Duration) (byte, error) {
	if k, ended, err := ep.playUntilKey(ctx, ep.items(names)...); !ended {
		return k, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case k := <-ep.keys:
		return k, nil
	case <-t.C:
		return 0, ErrNoInput
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-ep.closed:
		return 0, ErrClosed
	}
}

// Record hands the caller's audio, decoded to 8 kHz 16-bit linear, to
// sink one packet at a time, from now until sink returns false (nil), a
// key is pressed (the key; keys pressed before Record are dropped), idle
// passes without a packet (ErrNoInput), ctx ends or the endpoint closes.
// Packets are taken in the order they arrive; lost ones are missing.
func (ep *Endpoint) Record(ctx context.Context, idle time.Duration, sink func([]int16) bool) (byte, error) {
	for drained := false; !drained; {
		select {
		case <-ep.keys:
		default:
			drained = true
		}
	}
	select {
	case <-ep.pressed:
	default:
	}
	frames := make(chan []int16, 64)
	ep.rec.Store(&frames)
	defer ep.rec.Store(nil)
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case f := <-frames:
			if !sink(f) {
				return 0, nil
			}
			t.Reset(idle)
		case <-ep.pressed:
			select {
			case k := <-ep.keys:
				return k, nil
			default:
			}
		case <-t.C:
			return 0, ErrNoInput
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-ep.closed:
			return 0, ErrClosed
		}
	}
}

// PlaySamples plays audio (8 kHz 16-bit linear; a recorded message) and
// returns when it ends, a key is pressed (the key), ctx ends or the
// endpoint closes. Keys pressed before count at once (type-ahead).
func (ep *Endpoint) PlaySamples(ctx context.Context, samples []int16) (byte, error) {
	k, ended, err := ep.playUntilKey(ctx, player.Audio(samples))
	switch {
	case !ended:
		return k, err
	case errors.Is(err, player.ErrClosed):
		return 0, ErrClosed
	}
	return 0, nil
}

// playUntilKey plays items and returns the first key pressed, before
// them (type-ahead: they do not start) or during them (barge-in: they
// stop), with a nil error; or ctx's error, or ErrClosed. When they play
// to their end first, ended is true and err is the playback's.
func (ep *Endpoint) playUntilKey(ctx context.Context, items ...player.Item) (k byte, ended bool, err error) {
	select {
	case k := <-ep.keys:
		return k, false, nil
	default:
	}
	pb := ep.sess.Play(items...)
	for {
		select {
		case <-pb.Done():
			return 0, true, pb.Err()
		case <-ep.pressed:
			select {
			case k := <-ep.keys:
				ep.sess.Stop()
				return k, false, nil
			default:
			}
		case <-ctx.Done():
			ep.sess.Stop()
			return 0, false, ctx.Err()
		case <-ep.closed:
			return 0, false, ErrClosed
		}
	}
}

// Loop stops what plays and plays the prompt name over and over (music
// on hold) until Stop, another Play or Close; it returns at once.
func (ep *Endpoint) Loop(name string) {
	ep.sess.Stop()
	ep.sess.Play(player.Loop(ep.e.cfg.Prompts.Prompt(name).Samples))
}

// Stop ends what plays (a Loop, a prompt): silence follows.
func (ep *Endpoint) Stop() { ep.sess.Stop() }

// SendDigits sends keys (0-9, *, #, A-D) as RFC 4733 events, with the
// usual pauses between them, and returns once they are sent.
func (ep *Endpoint) SendDigits(ctx context.Context, keys string) error {
	it, err := player.Digits(keys)
	if err != nil {
		return fmt.Errorf("send digits: %w", err)
	}
	pb := ep.sess.Play(it)
	select {
	case <-pb.Done():
		if errors.Is(pb.Err(), player.ErrClosed) {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		ep.sess.Stop()
		return ctx.Err()
	case <-ep.closed:
		return ErrClosed
	}
}

func (ep *Endpoint) items(names []string) []player.Item {
	var items []player.Item
	for _, n := range names {
		if n == "" {
			continue
		}
		items = append(items, player.Audio(ep.e.cfg.Prompts.Prompt(n).Samples))
	}
	return items
}

// Close stops sending and reading; the socket is released.
func (ep *Endpoint) Close() {
	ep.once.Do(func() {
		close(ep.closed)
		ep.sess.Close()
		_ = ep.conn.Close()
		ep.wg.Wait()
	})
}
