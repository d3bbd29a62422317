// Package dnssrv is the node's authoritative DNS server for the phones'
// domain (dns.domain): it tells phones where a live node is, over UDP and
// TCP, with miekg/dns.
//
// It owns three things: the zone builder (Build, pure: a view of the
// cluster in, records out), the query handler (Server.ServeDNS: authority,
// EDNS0, truncation, rate limiting, metrics) and the Server that serves
// both transports on listeners it is handed. It learns the cluster from a
// Source, at most once per Config.Refresh, and names only the members the
// Source calls healthy.
//
// It never writes state, never recurses, never answers for a name outside
// its zone (REFUSED) and never replies to a packet it cannot parse: a
// reply to garbage is an amplifier. Health is not decided here; the
// Source's Healthy flag (the node's member prober) is.
//
// The records, names and timings are described for admins in docs/dns.md.
package dnssrv
