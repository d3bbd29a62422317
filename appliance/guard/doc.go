// Package guard protects the node's SIP listeners from floods and from
// connections that hold resources without using them. It owns three
// things:
//
//   - the Limiter: a token bucket per source (an IPv4 address, or the /64
//     of an IPv6 address) for every SIP message on every transport, and a
//     temporary ban for a source that keeps sending over its rate;
//   - the UDP read filter (Guard.ReadFilter): each datagram is one message,
//     and one over the limit or from a banned source is dropped unanswered
//     before sipgo parses it;
//   - the stream listener (Guard.Listen) for SIP over TCP and TLS: caps on
//     connections in total and per source, the same per-source limit on
//     connections and on messages (it frames the stream to count them),
//     and deadlines: a connection must deliver its first message, and
//     every message must arrive whole, within Config.MessageTimeout
//     (slowloris), and may then stay silent for Config.IdleTimeout.
//
// Sources in the Allowlist (loopback by default, the trunks' SBCs and the
// cluster's members, which the node keeps in it) are never limited or
// banned, and are not held to the per-source connection cap.
//
// It never answers anything: what it refuses is dropped (UDP) or closed
// (TCP, TLS) without a word, since an answer to a flood is work for the
// node and information for the sender. It holds no state outside memory,
// and that state is bounded: at most Config.MaxSources sources, and one
// entry per open connection's source.
//
// The limits, the figures measured against a running node and the tests
// that prove them: docs/reliability.md; the keys: docs/configuration.md.
package guard
