package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Session relays one call's media between side A and side B. Its methods
// are safe for concurrent use.
type Session struct {
	relay     *Relay
	callID    string
	log       *slog.Logger
	onTimeout func(*Session)
	a, b      Side

	// lastActive is the relay clock of the last packet taken from either
	// side; armedAt is the relay clock of the last SetRemote that left both
	// sides with a remote address (zero: not armed, no timeout yet).
	lastActive atomic.Int64
	armedAt    atomic.Int64

	poller *poller // reads the session's sockets

	mu       sync.Mutex
	closed   bool
	timedOut bool
	gone     chan struct{} // closed when Close has finished
}

// Side is one party of a session: its local RTP/RTCP socket pair and where
// its media goes.
type Side struct {
	s     *Session
	name  string
	peer  *Side
	pair  int // port pair index in the relay, -1 when none
	rtp   endpoint
	rtcp  endpoint
	srtp  atomic.Pointer[srtpKeys]
	hasTo atomic.Bool // SetRemote gave an address
}

// endpoint is one local socket of a side: what arrives on it comes from the
// side's party; what the other side sends leaves through it.
type endpoint struct {
	side   *Side
	rtcp   bool
	sock   udpSocket
	local  netip.AddrPort
	policy latchPolicy

	// dest is where packets for this side's party go: the latched source,
	// else the SDP address. announced is the SDP address; announceGen
	// changes when it does, telling the reader to forget its latch.
	dest        atomic.Pointer[netip.AddrPort]
	announced   atomic.Pointer[netip.AddrPort]
	announceGen atomic.Uint64
	latched     atomic.Bool

	// Counters of packets that arrived on this socket.
	fwdPackets, fwdBytes atomic.Uint64
	drops                dropCounters
	latches              atomic.Uint64

	// Owned by the goroutine that reads the socket.
	latch     latch
	latchGen  uint64
	warned    bool  // an unlatched source was logged
	readErrs  int   // consecutive read errors
	slot, gen int32 // place in the poller
}

type dropCounters struct {
	invalid, srtp, source, noRoute, send atomic.Uint64
}

func (sd *Side) init(s *Session, name string, peer *Side) {
	sd.s, sd.name, sd.peer, sd.pair = s, name, peer, -1
	sd.rtp = endpoint{side: sd, policy: s.relay.rtp}
	sd.rtcp = endpoint{side: sd, rtcp: true, policy: s.relay.rtcp}
}

// bind opens the side's RTP socket on port and RTCP on port+1; stamp asks
// the kernel for arrival timestamps (Config.Residence).
func (sd *Side) bind(ip netip.Addr, port, sockBuf int, stamp bool) error {
	rtp, err := listenUDP(ip, port, sockBuf, stamp)
	if err != nil {
		return err
	}
	rtcp, err := listenUDP(ip, port+1, sockBuf, stamp)
	if err != nil {
		_ = rtp.close()
		return err
	}
	sd.rtp.sock, sd.rtp.local = rtp, netip.AddrPortFrom(ip, uint16(port))
	sd.rtcp.sock, sd.rtcp.local = rtcp, netip.AddrPortFrom(ip, uint16(port+1))
	return nil
}

// CallID is the label given to Allocate.
func (s *Session) CallID() string { return s.callID }

// A is the side the call came from (by convention; the relay is symmetric).
func (s *Session) A() *Side { return &s.a }

// B is the other side.
func (s *Session) B() *Side { return &s.b }

func (s *Session) endpoints() []*endpoint {
	return []*endpoint{&s.a.rtp, &s.a.rtcp, &s.b.rtp, &s.b.rtcp}
}

// Name is "a" or "b".
func (sd *Side) Name() string { return sd.name }

// LocalRTP is the address to announce to this side's party in SDP (c= and
// m= port); RTCP is on the next port.
func (sd *Side) LocalRTP() netip.AddrPort { return sd.rtp.local }

// LocalRTCP is the RTCP address (LocalRTP's port + 1).
func (sd *Side) LocalRTCP() netip.AddrPort { return sd.rtcp.local }

// SetRemote records where this side's party said, in its SDP, it receives
// RTP and RTCP. A zero rtcp means the RTP port + 1; a zero rtp means not
// known (packets for the party are dropped until it sends some). Until the
// party's own packets arrive, media goes to these addresses; a changed
// address forgets what was latched. Once both sides have an address the
// inactivity clock starts, and each later SetRemote restarts it.
func (sd *Side) SetRemote(rtp, rtcp netip.AddrPort) {
	rtp = netip.AddrPortFrom(rtp.Addr().Unmap(), rtp.Port())
	if rtp.IsValid() && !rtcp.IsValid() {
		rtcp = netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	}
	rtcp = netip.AddrPortFrom(rtcp.Addr().Unmap(), rtcp.Port())
	sd.rtp.announce(rtp)
	sd.rtcp.announce(rtcp)
	sd.hasTo.Store(rtp.IsValid())
	if sd.hasTo.Load() && sd.peer.hasTo.Load() {
		sd.s.armedAt.Store(int64(sd.s.relay.now()))
	}
	sd.s.log.Debug("media remote set", "side", sd.name, "rtp", rtp, "rtcp", rtcp)
}

func (e *endpoint) announce(addr netip.AddrPort) {
	if old := e.announced.Load(); old != nil && *old == addr {
		return
	}
	if !addr.IsValid() || addr.Port() == 0 {
		e.announced.Store(nil)
		e.dest.Store(nil)
	} else {
		e.announced.Store(&addr)
		e.dest.Store(&addr)
	}
	e.latched.Store(false)
	e.announceGen.Add(1)
}

// SetSRTP makes this side speak SRTP (SDES): the relay encrypts what it
// sends to the party with local (the a=crypto the relay put in its SDP)
// and decrypts what the party sends with remote (the a=crypto of the
// party's SDP). Call it before the party can send media; calling it again
// (re-INVITE with new keys) replaces both keys.
func (sd *Side) SetSRTP(local, remote Crypto) error {
	k, err := newSRTPKeys(local, remote)
	if err != nil {
		return fmt.Errorf("set SRTP on side %s of call %s: %w", sd.name, sd.s.callID, err)
	}
	sd.srtp.Store(k)
	sd.s.log.Debug("media SRTP set", "side", sd.name, "suite", local.Suite)
	return nil
}

// ClearSRTP makes this side plain RTP again (a call that moved on to
// another party, which speaks plain RTP).
func (sd *Side) ClearSRTP() {
	if sd.srtp.Swap(nil) != nil {
		sd.s.log.Debug("media SRTP cleared", "side", sd.name)
	}
}

// touch records activity at now.
func (s *Session) touch(now time.Duration) { s.lastActive.Store(int64(now)) }

// expire reports, once, that the session has been idle for timeout at now.
func (s *Session) expire(now, timeout time.Duration) bool {
	armed := time.Duration(s.armedAt.Load())
	if armed == 0 {
		return false
	}
	last := max(time.Duration(s.lastActive.Load()), armed)
	if now-last < timeout {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.timedOut {
		return false
	}
	s.timedOut = true
	return true
}

// Close stops relaying and frees the session's ports at once: when it
// returns no goroutine touches them. It is idempotent (a second Close waits
// for the first); OnTimeout is not called after it.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.gone
		return nil
	}
	defer close(s.gone)
	s.closed = true
	s.mu.Unlock()
	eps := s.endpoints()
	s.poller.detach(eps)
	var errs []error
	for _, e := range eps {
		if err := e.sock.close(); err != nil {
			errs = append(errs, fmt.Errorf("close port %d: %w", e.local.Port(), err))
		}
	}
	c := s.counters()
	s.relay.release(s, c)
	s.log.Debug("media session closed",
		"a_to_b_packets", c.AtoB.RTPPackets, "b_to_a_packets", c.BtoA.RTPPackets)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close media session of call %s: %w", s.callID, err)
	}
	return nil
}

// closeSocketsLocked undoes a failed Allocate; the relay's mu is held.
func (s *Session) closeSocketsLocked() {
	for _, sd := range []*Side{&s.a, &s.b} {
		if sd.pair >= 0 {
			_ = sd.rtp.sock.close()
			_ = sd.rtcp.sock.close()
			s.relay.used[sd.pair] = false
			s.relay.inUse--
			sd.pair = -1
		}
	}
}
