// Package conference owns the node's conference bridge: a Conference
// mixes the G.711 audio of its participants (PCMU and PCMA side by side)
// so that each hears everyone but itself, with per-participant mute,
// join and leave tones, prompts played to everyone, and each
// participant's RFC 4733 keys delivered for features like "press 1".
//
// A Participant is one UDP socket on the media IP, connected to its peer
// (a phone, or the relay's side of the party's call), like an ivr
// Endpoint. One goroutine per node, the clock (clock.go), mixes every
// conference: a frame's 20 ms are cut into twenty 1 ms slots and each
// conference is mixed in one slot of every frame, the lightest when it
// opened, so that the node's work is spread over the frame and each
// conference's packets leave on its own 20 ms grid (frame n due at its
// slot plus n times 20 ms, by the monotonic clock, so no drift
// accumulates; a clock more than three frames late for a conference skips
// what it missed). On Linux the clock sleeps on a timerfd, waking to the
// microsecond. For each conference's frame it drains every participant's
// socket with non-blocking reads (on Linux; elsewhere a goroutine per
// socket queues what it reads), puts the peer's 20 ms audio frames in a
// jitter buffer ordered by sequence number, 2–3 frames deep (see
// jitter), and its telephone-events in a dtmf.Receiver; ignores any
// other payload type; takes one frame from each buffer, concealing a
// missing one by repeating the last faded out, then silence; sums every
// unmuted participant and the prompts playing into 32-bit linear PCM;
// and sends each participant the sum less its own frame (and less the
// join tone it must not hear), saturated to 16 bits and encoded in its
// own codec. Participants with nothing to take out (silent or muted)
// share one encoding per codec. Nothing on that path allocates. The
// clock parks while no conference has anyone in it or anything to play,
// and ends when the node has none. The shared player does not fit: it
// paces queued items per session, where a mix must compute every
// participant's frame from everyone's input at one instant; and reading
// in the mixing goroutine, once a frame, costs no wake-up per packet
// (the relay's epoll poller is private to the relay and forwards rather
// than buffers).
//
// Each participant's outgoing stream is its own (RFC 3550): a random
// SSRC, sequence number and timestamp start, the marker bit on its first
// packet, then sequence +1 and timestamp +160 a packet (a skipped frame
// shows as a timestamp jump of the time skipped). So a two-party call
// becomes a conference without a re-INVITE: the caller points each
// party's media at its participant's Addr; the party hears a new stream
// whose first packet (marker set) leaves at its conference's next frame,
// within 20 ms of Join, and its own voice enters the mix once two frames are
// buffered, faded in over a frame, so neither party hears more than a
// gap of a frame or two. The first two parties hear no join tone for each
// other; from the third on, everyone already in hears the join tone (the
// joiner does not), and those who remain hear the leave tone. The tones
// are the prompts JoinTone and LeaveTone, 12 dB down.
//
// It must never speak SIP or SDP (the B2BUA negotiates and tells it each
// participant's peer, codec and telephone-event payload type), send or
// read RTCP (none is sent; RTCP arriving on the RTP port is ignored),
// accept audio frames other than 20 ms (the B2BUA offers a=ptime:20), or
// hold replicated state: a conference dies with its node.
package conference
