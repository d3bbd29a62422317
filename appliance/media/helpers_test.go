package media

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// nextRange hands every test its own ports (up to 64 pairs), cycling
// below Linux's ephemeral range (32768 up) so that other sockets rarely
// land in them.
var nextRange atomic.Int32

func testPorts(pairs int) (lo, hi int) {
	if pairs > 64 {
		panic("testPorts: at most 64 pairs")
	}
	lo = 20000 + int(nextRange.Add(1)%90)*128
	return lo, lo + 2*pairs - 1
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestRelay starts a relay on its own ports with a fake clock and a
// sweeper that never ticks on its own (tests call sweep).
func newTestRelay(t *testing.T, pairs int, edit func(*Config)) (*Relay, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	lo, hi := testPorts(pairs)
	cfg := Config{
		IP: loopback, PortMin: lo, PortMax: hi,
		SweepInterval: time.Hour,
		Now:           clk.Now,
		Logger:        testLogger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("relay Close: %v", err)
		}
	})
	return r, clk
}

func testLogger() *slog.Logger {
	if os.Getenv("MEDIA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// phone is a party's UDP socket on loopback.
type phone struct {
	t    *testing.T
	conn *net.UDPConn
	buf  []byte
}

func newPhone(t *testing.T) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("phone listen: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &phone{t: t, conn: c, buf: make([]byte, 4096)}
}

func (p *phone) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *phone) send(to netip.AddrPort, pkt []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		p.t.Fatalf("phone send: %v", err)
	}
}

// recv waits up to 5 s for one datagram.
func (p *phone) recv() ([]byte, netip.AddrPort) {
	p.t.Helper()
	if err := p.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		p.t.Fatalf("deadline: %v", err)
	}
	n, from, err := p.conn.ReadFromUDPAddrPort(p.buf)
	if err != nil {
		p.t.Fatalf("phone %s recv: %v", p.addr(), err)
	}
	return append([]byte(nil), p.buf[:n]...), from
}

// rtpPacket makes a G.711-sized RTP packet.
func rtpPacket(t *testing.T, ssrc uint32, seq uint16) []byte {
	t.Helper()
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(seq) + byte(i)
	}
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatalf("marshal RTP: %v", err)
	}
	return b
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronising
	}
}

// call allocates a session whose sides are phones a and b.
func call(t *testing.T, r *Relay, onTimeout func(*Session)) (s *Session, a, b *phone) {
	t.Helper()
	s, err := r.Allocate(t.Name(), onTimeout)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	a, b = newPhone(t), newPhone(t)
	s.A().SetRemote(a.addr(), netip.AddrPort{})
	s.B().SetRemote(b.addr(), netip.AddrPort{})
	return s, a, b
}
