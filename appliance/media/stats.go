package media

import (
	"net/netip"
	"time"
)

// Flow counts what was forwarded in one direction, as sent (after SRTP).
type Flow struct {
	RTPPackets, RTPBytes   uint64
	RTCPPackets, RTCPBytes uint64
}

// Drops counts packets not forwarded, by reason.
type Drops struct {
	Invalid uint64 // not RTP/RTCP version 2, or too large
	SRTP    uint64 // failed SRTP authentication, replay or encryption
	Source  uint64 // from a source other than the latched one
	NoRoute uint64 // the other side has no address yet
	Send    uint64 // the send failed
}

// Total is the sum of all reasons.
func (d Drops) Total() uint64 { return d.Invalid + d.SRTP + d.Source + d.NoRoute + d.Send }

// Counters are the packet counters of a session or of the whole relay.
type Counters struct {
	AtoB, BtoA Flow
	Dropped    Drops
	// Latches counts how often a remote address was learned or moved.
	Latches uint64
}

func (c *Counters) add(o Counters) {
	c.AtoB.add(o.AtoB)
	c.BtoA.add(o.BtoA)
	c.Dropped.Invalid += o.Dropped.Invalid
	c.Dropped.SRTP += o.Dropped.SRTP
	c.Dropped.Source += o.Dropped.Source
	c.Dropped.NoRoute += o.Dropped.NoRoute
	c.Dropped.Send += o.Dropped.Send
	c.Latches += o.Latches
}

func (f *Flow) add(o Flow) {
	f.RTPPackets += o.RTPPackets
	f.RTPBytes += o.RTPBytes
	f.RTCPPackets += o.RTCPPackets
	f.RTCPBytes += o.RTCPBytes
}

// SideStats describes one side of a session.
type SideStats struct {
	LocalRTP, LocalRTCP netip.AddrPort
	// RemoteRTP and RemoteRTCP are where media for the party goes now:
	// the latched source, else the SDP address (zero when neither).
	RemoteRTP, RemoteRTCP   netip.AddrPort
	LatchedRTP, LatchedRTCP bool
	SRTP                    bool
}

// SessionStats is a snapshot of one session.
type SessionStats struct {
	CallID string
	Counters
	A, B SideStats
	// Idle is the time since the last packet taken from either side.
	Idle     time.Duration
	TimedOut bool
}

// Stats is a snapshot of the relay.
type Stats struct {
	Sessions                 int // live sessions
	PortPairs, PortPairsUsed int // pairs in the range, pairs bound by sessions
	Timeouts                 uint64
	// Counters cover every session since the relay started.
	Counters
}

// Stats returns a snapshot of the session's counters and addresses.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	timedOut := s.timedOut
	s.mu.Unlock()
	return SessionStats{
		CallID:   s.callID,
		Counters: s.counters(),
		A:        s.a.stats(),
		B:        s.b.stats(),
		Idle:     s.relay.now() - time.Duration(s.lastActive.Load()),
		TimedOut: timedOut,
	}
}

func (s *Session) counters() Counters {
	var c Counters
	c.AtoB = Flow{
		RTPPackets: s.a.rtp.fwdPackets.Load(), RTPBytes: s.a.rtp.fwdBytes.Load(),
		RTCPPackets: s.a.rtcp.fwdPackets.Load(), RTCPBytes: s.a.rtcp.fwdBytes.Load(),
	}
	c.BtoA = Flow{
		RTPPackets: s.b.rtp.fwdPackets.Load(), RTPBytes: s.b.rtp.fwdBytes.Load(),
		RTCPPackets: s.b.rtcp.fwdPackets.Load(), RTCPBytes: s.b.rtcp.fwdBytes.Load(),
	}
	for _, e := range s.endpoints() {
		c.Dropped.Invalid += e.drops.invalid.Load()
		c.Dropped.SRTP += e.drops.srtp.Load()
		c.Dropped.Source += e.drops.source.Load()
		c.Dropped.NoRoute += e.drops.noRoute.Load()
		c.Dropped.Send += e.drops.send.Load()
		c.Latches += e.latches.Load()
	}
	return c
}

func (sd *Side) stats() SideStats {
	return SideStats{
		LocalRTP:    sd.rtp.local,
		LocalRTCP:   sd.rtcp.local,
		RemoteRTP:   loadAddr(&sd.rtp),
		RemoteRTCP:  loadAddr(&sd.rtcp),
		LatchedRTP:  sd.rtp.latched.Load(),
		LatchedRTCP: sd.rtcp.latched.Load(),
		SRTP:        sd.srtp.Load() != nil,
	}
}

func loadAddr(e *endpoint) netip.AddrPort {
	if p := e.dest.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}
