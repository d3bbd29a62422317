package ivr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/player"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
)

// caller is the far end of an endpoint: it receives the prompts and sends
// key presses.
type caller struct {
	conn *net.UDPConn
	got  chan rtp.Packet
}

func newCaller(t *testing.T) *caller {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &caller{conn: conn, got: make(chan rtp.Packet, 4096)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(slices.Clone(buf[:n])) == nil { // the payload aliases what it parsed
				select {
				case c.got <- p:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *caller) addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// press sends key to ep as RFC 4733 packets of payload type pt.
func (c *caller) press(t *testing.T, ep *Endpoint, key byte, pt uint8) {
	t.Helper()
	c.pressKeep(t, ep, key, pt, func(dtmf.Packet) bool { return true })
}

// pressKeep is press sending only the packets keep keeps.
func (c *caller) pressKeep(t *testing.T, ep *Endpoint, key byte, pt uint8, keep func(dtmf.Packet) bool) {
	t.Helper()
	pkts, err := dtmf.Sender{Interval: 20 * time.Millisecond}.Packets(key)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if !keep(p) {
			continue
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: p.Marker, SequenceNumber: uint16(100 + i),
			Timestamp: 8000, SSRC: 0xC0FFEE}, Payload: p.Event.AppendTo(nil)}
		b, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.conn.WriteToUDPAddrPort(b, ep.Addr()); err != nil {
			t.Fatal(err)
		}
	}
}

func newEndpoints(t *testing.T) *Endpoints {
	t.Helper()
	pl := player.New(player.Config{})
	t.Cleanup(func() { _ = pl.Close() })
	e, err := New(Config{IP: netip.MustParseAddr("127.0.0.1"), Player: pl, Prompts: prompts.NewLibrary(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMenuBargeIn(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-1", c.addr(), g711.PCMA, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	keys := make(chan byte, 1)
	errs := make(chan error, 1)
	start := time.Now()
	go func() {
		k, err := ep.Menu(context.Background(), []string{"main-menu"}, 5*time.Second)
		keys <- k
		errs <- err
	}()
	// The prompt reaches the caller as PCMA...
	select {
	case p := <-c.got:
		if p.PayloadType != uint8(g711.PCMA) || len(p.Payload) != 160 {
			t.Fatalf("first packet: payload type %d, %d bytes; want PCMA, 160", p.PayloadType, len(p.Payload))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no prompt packet within 2 s")
	}
	// ...and a key pressed during it ends the menu at once (barge-in).
	c.press(t, ep, '7', 101)
	if k, err := <-keys, <-errs; err != nil || k != '7' {
		t.Fatalf("Menu = %q, %v; want '7'", k, err)
	}
	if took := time.Since(start); took > 3*time.Second { // main-menu lasts 4.3 s
		t.Errorf("Menu took %v: the prompt was not cut short", took)
	}
}

func TestMenuNoInputAndTypeAhead(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-2", c.addr(), g711.PCMU, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if _, err := ep.Menu(context.Background(), []string{"beep"}, 200*time.Millisecond); !errors.Is(err, ErrNoInput) {
		t.Fatalf("Menu with no key = %v, want ErrNoInput", err)
	}
	// A key from SIP INFO before the menu counts (type-ahead).
	ep.Key('#')
	if k, err := ep.Menu(context.Background(), []string{"beep"}, time.Second); err != nil || k != '#' {
		t.Fatalf("Menu after a key = %q, %v; want '#'", k, err)
	}
	// Keys of another payload type are not keys.
	c.press(t, ep, '3', 96)
	if _, err := ep.Menu(context.Background(), nil, 300*time.Millisecond); !errors.Is(err, ErrNoInput) {
		t.Fatalf("Menu after events of another payload type = %v, want ErrNoInput", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ep.Menu(ctx, []string{"main-menu"}, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Menu after hang-up = %v, want context.Canceled", err)
	}
}

func TestPlayEndsAndCloseReleases(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-3", c.addr(), g711.PCMU, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Play(context.Background(), "beep"); err != nil {
		t.Fatalf("Play: %v", err)
	}
	addr := ep.Addr()
	ep.Close()
	ep.Close() // twice is fine
	if err := ep.Play(context.Background(), "beep"); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Close = %v, want ErrClosed", err)
	}
	// The port is free again.
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("the endpoint's port is still held: %v", err)
	}
	conn.Close()
}

func TestNewNeedsItsParts(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a player, prompts or IP succeeded")
	}
}

// A key whose end packets were all lost still counts, once the receiver's
// timeout ends it (the endpoint reads with a deadline while a key is down).
func TestMenuKeyWithLostEnds(t *testing.T) {
	c := newCaller(t)
	ep, err := newEndpoints(t).Open("call-4", c.addr(), g711.PCMU, 101)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	c.pressKeep(t, ep, '5', 101, func(p dtmf.Packet) bool { return !p.Event.End })
	if k, err := ep.Menu(context.Background(), nil, 5*time.Second); err != nil || k != '5' {
		t.Fatalf("Menu = %q, %v; want '5' once the event times out", k, err)
	}
}
