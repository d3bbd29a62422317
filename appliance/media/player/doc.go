// Package player owns the RTP streams the appliance originates: prompts,
// silence and RFC 4733 key presses, sent as G.711 (PCMU or PCMA) in
// 20 ms packets with a random SSRC, sequence number and timestamp start,
// the marker bit on the first packet of every prompt and key press.
//
// One goroutine paces every session of a Player by the monotonic clock:
// packet n of a session is due at its start plus n times 20 ms, so no
// drift accumulates whatever the scheduling delays; new sessions are
// spread over the 20 ms frame on a 1 ms grid, so their packets do not
// leave in one burst. A session that falls behind skips nothing and
// catches up in bursts of at most Config.MaxBurst packets. Sending does
// not allocate.
//
// It must never read packets (the receiving side, DTMF detection
// included, belongs to whoever owns the socket), own a socket (a
// PacketWriter is given), resample or mix, or block the pacing goroutine
// on anything but the PacketWriter.
package player
