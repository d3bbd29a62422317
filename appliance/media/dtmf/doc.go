// Package dtmf owns DTMF signalling: RFC 4733 telephone-event payloads,
// a Receiver that turns a stream of received RTP packets into key
// presses, each reported once however its packets were duplicated,
// retransmitted, reordered or lost, the SIP INFO bodies some phones send
// instead (application/dtmf-relay and application/dtmf), and a Sender
// that lays out the packets of one key press for whoever transmits the
// RTP stream (the player package does).
//
// It must never touch a socket or a clock of its own (callers pass the
// time), never decode audio (in-band tone detection is not done here),
// and never panic on a malformed packet or body.
package dtmf
