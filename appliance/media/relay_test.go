package media

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestRelayForwardsBothWays(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, a, b := call(t, r, nil)

	const n = 20
	for i := range n {
		want := rtpPacket(t, 0xA, uint16(i))
		a.send(s.A().LocalRTP(), want)
		got, from := b.recv()
		if !bytes.Equal(got, want) {
			t.Fatalf("A->B packet %d changed: got %x, want %x", i, got, want)
		}
		if from != s.B().LocalRTP() {
			t.Fatalf("A->B packet came from %s, want the B side's local %s (symmetric RTP)", from, s.B().LocalRTP())
		}
	}
	for i := range n {
		want := rtpPacket(t, 0xB, uint16(i))
		b.send(s.B().LocalRTP(), want)
		got, from := a.recv()
		if !bytes.Equal(got, want) || from != s.A().LocalRTP() {
			t.Fatalf("B->A packet %d: got %x from %s", i, got, from)
		}
	}

	size := uint64(len(rtpPacket(t, 0, 0)))
	eventually(t, "counters", func() bool {
		c := s.Stats().Counters
		return c.AtoB.RTPPackets == n && c.BtoA.RTPPackets == n
	})
	st := s.Stats()
	if st.AtoB.RTPBytes != n*size || st.BtoA.RTPBytes != n*size {
		t.Errorf("bytes: A->B %d, B->A %d, want %d each", st.AtoB.RTPBytes, st.BtoA.RTPBytes, n*size)
	}
	if st.Dropped.Total() != 0 {
		t.Errorf("dropped %+v, want none", st.Dropped)
	}
	if st.Latches != 2 || !st.A.LatchedRTP || !st.B.LatchedRTP {
		t.Errorf("latches %d (A %v, B %v), want 2 (both)", st.Latches, st.A.LatchedRTP, st.B.LatchedRTP)
	}
	if rs := r.Stats(); rs.AtoB.RTPPackets != n || rs.BtoA.RTPPackets != n || rs.Sessions != 1 || rs.PortPairsUsed != 2 {
		t.Errorf("relay stats %+v", rs)
	}
}

func TestRelayLatchesSourceBehindNAT(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := newPhone(t), newPhone(t)
	sdpA := newPhone(t) // the address A's SDP announced; A really sends from a
	s.A().SetRemote(sdpA.addr(), netip.AddrPort{})
	s.B().SetRemote(b.addr(), netip.AddrPort{})

	// Before A sends, B's media goes to the SDP address.
	b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, 1))
	sdpA.recv()

	a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 1))
	b.recv()
	b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, 2))
	if got, _ := a.recv(); !bytes.Equal(got, rtpPacket(t, 0xB, 2)) {
		t.Fatalf("after latching A got %x", got)
	}
	if st := s.Stats().A; st.RemoteRTP != a.addr() || !st.LatchedRTP {
		t.Errorf("A side %+v, want latched to %s", st, a.addr())
	}
}

func TestRelayRelatchesAfterSilence(t *testing.T) {
	r, clk := newTestRelay(t, 4, nil)
	s, a, b := call(t, r, nil)
	a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 1))
	b.recv()

	// A's NAT binding changes: same stream, new source port, after 3 s
	// of silence (more than RelatchAfter).
	clk.Advance(3 * time.Second)
	a2 := newPhone(t)
	a2.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 2))
	b.recv()
	b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, 1))
	if got, _ := a2.recv(); !bytes.Equal(got, rtpPacket(t, 0xB, 1)) {
		t.Fatalf("new source got %x", got)
	}
	if st := s.Stats(); st.A.RemoteRTP != a2.addr() || st.Latches != 3 {
		t.Errorf("A remote %s latches %d, want %s and 3", st.A.RemoteRTP, st.Latches, a2.addr())
	}
}

func TestRelayIgnoresSpoofedSourceMidStream(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "strict"}[strict], func(t *testing.T) {
			r, clk := newTestRelay(t, 4, func(c *Config) { c.StrictLatch = strict })
			s, a, b := call(t, r, nil)
			a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 1))
			b.recv()

			// 1 s later (A still active) a spoofer sends A's SSRC from
			// elsewhere. In strict mode it may even use a new SSRC.
			clk.Advance(time.Second)
			spoofSSRC := uint32(0xA)
			if strict {
				spoofSSRC = 0x5EED
			}
			evil := newPhone(t)
			evil.send(s.A().LocalRTP(), rtpPacket(t, spoofSSRC, 99))
			a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 2))
			// One reader handles A's socket in order: had the spoofed
			// packet been forwarded, B would see it first.
			if got, _ := b.recv(); !bytes.Equal(got, rtpPacket(t, 0xA, 2)) {
				t.Fatalf("B got %x, want A's second packet", got)
			}
			b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, 1))
			a.recv()
			st := s.Stats()
			if st.Dropped.Source != 1 || st.A.RemoteRTP != a.addr() {
				t.Errorf("source drops %d, A remote %s; want 1 and %s", st.Dropped.Source, st.A.RemoteRTP, a.addr())
			}
		})
	}
}

func TestRelayRelaysRTCP(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	aRTP, aRTCP, bRTP, bRTCP := newPhone(t), newPhone(t), newPhone(t), newPhone(t)
	s.A().SetRemote(aRTP.addr(), aRTCP.addr())
	s.B().SetRemote(bRTP.addr(), bRTCP.addr())
	if s.A().LocalRTCP().Port() != s.A().LocalRTP().Port()+1 || s.A().LocalRTP().Port()%2 != 0 {
		t.Fatalf("A ports %s/%s, want even RTP and RTCP on the next", s.A().LocalRTP(), s.A().LocalRTCP())
	}

	rr, err := (&rtcp.ReceiverReport{SSRC: 0xA, Reports: []rtcp.ReceptionReport{{SSRC: 0xB, Jitter: 7}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	aRTCP.send(s.A().LocalRTCP(), rr)
	if got, from := bRTCP.recv(); !bytes.Equal(got, rr) || from != s.B().LocalRTCP() {
		t.Fatalf("B RTCP got %x from %s", got, from)
	}
	sr, err := (&rtcp.SenderReport{SSRC: 0xB, PacketCount: 5}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bRTCP.send(s.B().LocalRTCP(), sr)
	if got, _ := aRTCP.recv(); !bytes.Equal(got, sr) {
		t.Fatalf("A RTCP got %x", got)
	}
	eventually(t, "RTCP counters", func() bool {
		c := s.Stats().Counters
		return c.AtoB.RTCPPackets == 1 && c.BtoA.RTCPPackets == 1 && c.AtoB.RTPPackets == 0
	})
}

func TestRelayDropsWhatIsNotRTP(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, a, b := call(t, r, nil)
	v1 := rtpPacket(t, 0xA, 1)
	v1[0] = 0x40 // version 1
	for _, junk := range [][]byte{[]byte("hello"), v1, make([]byte, 11), {0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		a.send(s.A().LocalRTP(), junk)
	}
	a.send(s.A().LocalRTCP(), []byte("not rtcp either"))
	// RTP on the RTCP port: version 2 but payload type 0 is not RTCP.
	a.send(s.A().LocalRTCP(), rtpPacket(t, 0xA, 1))
	good := rtpPacket(t, 0xA, 2)
	a.send(s.A().LocalRTP(), good)
	if got, _ := b.recv(); !bytes.Equal(got, good) {
		t.Fatalf("B got %x, want the valid packet only", got)
	}
	eventually(t, "invalid count", func() bool { return s.Stats().Dropped.Invalid == 6 })
	if st := s.Stats(); st.AtoB.RTPPackets != 1 || st.Latches != 1 {
		t.Errorf("forwarded %d latches %d, want 1 and 1 (junk must not latch)", st.AtoB.RTPPackets, st.Latches)
	}
}

func TestRelayNoRouteUntilTheOtherSideIsKnown(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newPhone(t)
	a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 1))
	eventually(t, "no-route drop", func() bool { return s.Stats().Dropped.NoRoute == 1 })
}

func TestRelayInactivityTimeoutFiresOnce(t *testing.T) {
	r, clk := newTestRelay(t, 4, func(c *Config) { c.InactivityTimeout = 30 * time.Second })
	var fired atomic.Int32
	done := make(chan *Session, 4)
	s, a, b := call(t, r, func(s *Session) { fired.Add(1); done <- s })

	a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, 1))
	b.recv()
	clk.Advance(20 * time.Second)
	b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, 1)) // activity one way only resets the clock
	a.recv()
	clk.Advance(20 * time.Second)
	r.sweep(nil)
	if fired.Load() != 0 {
		t.Fatal("timed out 20 s after the last packet")
	}

	clk.Advance(11 * time.Second)
	r.sweep(nil)
	select {
	case got := <-done:
		if got != s {
			t.Fatal("callback got another session")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no timeout 31 s after the last packet")
	}
	clk.Advance(time.Minute)
	r.sweep(nil)
	r.sweep(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r.sweep(nil)
	if n := fired.Load(); n != 1 || r.Stats().Timeouts != 1 || !s.Stats().TimedOut {
		t.Errorf("fired %d times, relay counted %d; want once", n, r.Stats().Timeouts)
	}
}

func TestRelayInactivityWaitsForBothRemotes(t *testing.T) {
	r, clk := newTestRelay(t, 4, nil)
	var fired atomic.Int32
	s, err := r.Allocate(t.Name(), func(*Session) { fired.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // ringing, no answer SDP yet
	r.sweep(nil)
	s.A().SetRemote(netip.MustParseAddrPort("127.0.0.1:9"), netip.AddrPort{})
	clk.Advance(time.Hour)
	r.sweep(nil)
	if fired.Load() != 0 {
		t.Fatal("timed out before both sides had an address")
	}
	s.B().SetRemote(netip.MustParseAddrPort("127.0.0.1:9"), netip.AddrPort{})
	clk.Advance(29 * time.Second)
	r.sweep(nil)
	if fired.Load() != 0 {
		t.Fatal("timed out 29 s after the answer")
	}
}

func TestRelaySweeperRunsOnItsOwn(t *testing.T) {
	r, clk := newTestRelay(t, 4, func(c *Config) { c.SweepInterval = 5 * time.Millisecond })
	done := make(chan struct{})
	s, _, _ := call(t, r, func(*Session) { close(done) })
	clk.Advance(DefaultInactivityTimeout + time.Second)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("background sweeper never timed the session out")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRelayCloseFreesPortsAndExhaustionErrors(t *testing.T) {
	r, _ := newTestRelay(t, 2, nil) // two pairs: one session
	s1, err := r.Allocate("first", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Allocate("second", nil)
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("second Allocate: %v, want ErrNoPorts", err)
	}
	ports := []netip.AddrPort{s1.A().LocalRTP(), s1.A().LocalRTCP(), s1.B().LocalRTP(), s1.B().LocalRTCP()}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Freed at once: the ports bind again right away.
	for _, p := range ports {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(p))
		if err != nil {
			t.Fatalf("port %s not free after Close: %v", p, err)
		}
		_ = c.Close()
	}
	s2, err := r.Allocate("third", nil)
	if err != nil {
		t.Fatalf("Allocate after Close: %v", err)
	}
	if st := r.Stats(); st.PortPairsUsed != 2 || st.PortPairs != 2 || st.Sessions != 1 {
		t.Errorf("stats %+v", st)
	}
	_ = s2
}

func TestRelaySkipsPortsHeldElsewhere(t *testing.T) {
	r, _ := newTestRelay(t, 3, nil)
	held, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: r.cfg.PortMin + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s, err := r.Allocate(t.Name(), nil)
	if err != nil {
		t.Fatalf("Allocate with pair 0 held elsewhere: %v", err)
	}
	for _, p := range []netip.AddrPort{s.A().LocalRTP(), s.B().LocalRTP()} {
		if int(p.Port()) == r.cfg.PortMin {
			t.Errorf("allocated the pair whose RTCP port is held: %s", p)
		}
	}
	if _, err := r.Allocate("more", nil); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("Allocate: %v, want ErrNoPorts", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{IP: netip.IPv4Unspecified(), PortMin: 20000, PortMax: 20009},
		{IP: loopback, PortMin: 20001, PortMax: 20009},
		{IP: loopback, PortMin: 20000, PortMax: 20000},
		{IP: loopback, PortMin: 80, PortMax: 90},
	} {
		if r, err := New(c); err == nil {
			_ = r.Close()
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestRelayClosedRefusesAllocate(t *testing.T) {
	r, _ := newTestRelay(t, 4, nil)
	s, _, _ := call(t, r, nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Allocate("late", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allocate after Close: %v", err)
	}
	if st := r.Stats(); st.Sessions != 0 || st.PortPairsUsed != 0 {
		t.Errorf("after Close: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRelayForwardDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations")
	}
	t.Run("plain", func(t *testing.T) { testForwardAllocs(t, nil) })
	// With Residence set (benchmarks), reading the arrival stamps must not
	// allocate either.
	t.Run("residence", func(t *testing.T) {
		var n atomic.Int64
		testForwardAllocs(t, func(c *Config) { c.Residence = func(time.Duration) { n.Add(1) } })
	})
}

func testForwardAllocs(t *testing.T, edit func(*Config)) {
	r, _ := newTestRelay(t, 4, edit)
	s, a, b := call(t, r, nil)
	pkt := rtpPacket(t, 0xA, 1)
	a.send(s.A().LocalRTP(), pkt) // latch first: that allocates once
	b.recv()
	if err := b.conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	to := s.A().LocalRTP()
	allocs := testing.AllocsPerRun(2000, func() {
		if _, err := a.conn.WriteToUDPAddrPort(pkt, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.conn.ReadFromUDPAddrPort(b.buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%v allocations per relayed packet, want 0", allocs)
	}
}

// TestRelayClosesUnderTraffic closes sessions while their media flows and
// checks that the others keep forwarding (run it with -race).
func TestRelayClosesUnderTraffic(t *testing.T) {
	r, _ := newTestRelay(t, 40, func(c *Config) { c.Workers = 2 })
	type leg struct {
		s    *Session
		a, b *phone
	}
	var legs []leg
	for range 20 {
		s, a, b := call(t, r, nil)
		legs = append(legs, leg{s, a, b})
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		// At most 100 packets a leg, so that the phones' receive buffers
		// keep room for the last packet below.
		for seq := range uint16(100) {
			select {
			case <-stop:
				return
			default:
			}
			for _, l := range legs {
				_, _ = l.a.conn.WriteToUDPAddrPort(rtpPacket(t, 0xA, seq), l.s.A().LocalRTP())
			}
		}
	}()
	for _, l := range legs[:10] {
		if err := l.s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-sent
	for i, l := range legs[10:] {
		want := rtpPacket(t, 0xA, 60000)
		l.a.send(l.s.A().LocalRTP(), want)
		for {
			got, _ := l.b.recv()
			if bytes.Equal(got, want) {
				break
			}
		}
		if l.s.Stats().Dropped.Total() != 0 {
			t.Errorf("session %d dropped %+v", i+10, l.s.Stats().Dropped)
		}
	}
	if st := r.Stats(); st.Sessions != 10 || st.PortPairsUsed != 20 {
		t.Errorf("relay %+v", st)
	}
}

// TestRelayResidence checks that Config.Residence sees every forwarded
// packet with the time it spent in the relay.
func TestRelayResidence(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("arrival stamps are read on Linux only")
	}
	var (
		mu   sync.Mutex
		seen []time.Duration
	)
	r, _ := newTestRelay(t, 4, func(c *Config) {
		c.Residence = func(d time.Duration) {
			mu.Lock()
			seen = append(seen, d)
			mu.Unlock()
		}
	})
	s, a, b := call(t, r, nil)
	for seq := range uint16(5) {
		a.send(s.A().LocalRTP(), rtpPacket(t, 0xA, seq))
		b.recv()
		b.send(s.B().LocalRTP(), rtpPacket(t, 0xB, seq))
		a.recv()
	}
	a.send(s.A().LocalRTP(), []byte("not RTP at all")) // dropped: not counted
	eventually(t, "the invalid packet dropped", func() bool { return s.Stats().Dropped.Invalid == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 10 {
		t.Fatalf("residence reported %d times, want 10 (one per forwarded packet)", len(seen))
	}
	for _, d := range seen {
		if d <= 0 || d > time.Second {
			t.Errorf("residence %v, want a positive time under a second", d)
		}
	}
}
