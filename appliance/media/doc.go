// Package media owns the RTP relay that anchors trunk calls: a Relay holds
// the media.rtp_ports range on one IP and hands out Sessions, each with two
// sides (A and B) that own an RTP socket on an even port and an RTCP socket
// on the next one. For every side the relay latches the real remote address
// from the first packets (symmetric RTP, for NAT), re-latching only after
// the current source falls silent or sends a new SSRC; forwards RTP and
// RTCP to the other side with the payload untouched; decrypts and encrypts
// SDES-keyed SRTP (RFC 4568, pion/srtp) on a side that asks for it; counts
// packets, bytes, drops and latches; and reports a session whose media has
// stopped both ways for the inactivity timeout, once. On Linux a few
// goroutines (Config.Workers) forward for all sessions, each waiting on an
// epoll set of sockets and using non-blocking system calls; elsewhere each
// socket has a goroutine. Forwarding does not allocate. For benchmarks,
// Config.Residence reports each packet's time in the relay, from the
// kernel's arrival stamp to its send (off, and free, in production).
//
// It must never speak SIP or SDP beyond the a=crypto helpers: the B2BUA
// puts a side's local addresses in the SDP it sends and gives the session
// the addresses the other party announced. It must never transcode, mix
// or alter a payload (SRTP protection is removed or added; the RTP inside
// goes on as it came), nor forward a packet that is not RTP/RTCP version 2
// or that comes from a source other than the latched one. It never ends a call
// itself: OnTimeout tells the caller, who ends the call and closes the
// session. It holds no replicated state: sessions die with the node.
//
// Prompts, RFC 4733 DTMF detection and conference mixing (issues 6 and 8)
// will live beside the relay.
package media
