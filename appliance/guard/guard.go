package guard

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Config sets a Guard's limits. Zero values take the defaults noted.
type Config struct {
	// Limiter: the per-source rate and ban, on every transport (a TCP or
	// TLS connection counts as one message too).
	Limiter LimiterConfig
	// MaxConns caps the open TCP and TLS connections accepted, together;
	// 0: no cap.
	MaxConns int
	// MaxConnsPerSource caps them per source (allowed sources are not
	// held to it); 0: no cap.
	MaxConnsPerSource int
	// MessageTimeout is how long a connection may take to deliver its
	// first message, from the moment it is accepted (the TLS handshake
	// included), and any message, from its first byte. Default: 10 s.
	MessageTimeout time.Duration
	// IdleTimeout is how long a connection that delivered a message may
	// then stay silent (CRLF keep-alives count as traffic). Default: 1 h.
	// Keep it above the longest registration interval granted: a phone's
	// calls reach it through the connection it registered on.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a connection (a peer that does not
	// read). Default: 10 s.
	WriteTimeout time.Duration
	// Log gets bans and connection refusals (the latter at debug level).
	Log *slog.Logger
}

// Guard is the flood and connection guard of a node's SIP listeners.
type Guard struct {
	c   Config
	lim *Limiter
	log *slog.Logger

	mu        sync.Mutex
	open      int                // accepted connections still open
	perSource map[netip.Addr]int // open connections by source, for sources not allowed

	metrics *metrics
}

// New returns a Guard with c's limits.
func New(c Config) *Guard {
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = time.Hour
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Limiter.Log == nil {
		c.Limiter.Log = c.Log
	}
	lim := NewLimiter(c.Limiter)
	return &Guard{c: c, lim: lim, log: c.Log, perSource: make(map[netip.Addr]int), metrics: newMetrics()}
}

// Limiter is the guard's per-source limiter.
func (g *Guard) Limiter() *Limiter { return g.lim }

// ReadFilter is a sipgo transport read filter: a UDP datagram over its
// source's rate, or from a banned source, is dropped before it is parsed;
// the rest goes on to next (nil: kept as is). Stream transports pass
// through: their connections count their messages themselves (Listen),
// since a read of a stream is no message boundary. It never returns an
// error, which would stop sipgo's UDP listener.
func (g *Guard) ReadFilter(next sip.TransportReadFilter) sip.TransportReadFilter {
	return func(p sip.TransportReadProps, data []byte) ([]byte, error) {
		if strings.EqualFold(p.Transport, "UDP") {
			if ip, ok := addrOf(p.RemoteAddr); ok && g.lim.Allow(ip) != Pass {
				return nil, nil
			}
		}
		if next == nil {
			return data, nil
		}
		return next(p, data)
	}
}

// addrOf is the IP address of a transport address.
func addrOf(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// admit decides whether a connection from ip may be served, and counts it
// open when it may; perSource says whether it counts against its source's
// cap (release needs to know). reason is why not.
func (g *Guard) admit(ip netip.Addr) (ok, perSource bool, reason string) {
	switch g.lim.Allow(ip) {
	case Banned:
		return false, false, "banned"
	case Limited:
		return false, false, "rate"
	}
	allowed := g.c.Limiter.Allow.Contains(ip)
	key := SourceKey(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c.MaxConns > 0 && g.open >= g.c.MaxConns {
		return false, false, "total"
	}
	if !allowed && g.c.MaxConnsPerSource > 0 && g.perSource[key] >= g.c.MaxConnsPerSource {
		return false, false, "per_source"
	}
	g.open++
	if !allowed {
		g.perSource[key]++
	}
	return true, !allowed, ""
}

// release counts a connection admitted by admit closed.
func (g *Guard) release(ip netip.Addr, perSource bool) {
	key := SourceKey(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if !perSource {
		return
	}
	if g.perSource[key] <= 1 {
		delete(g.perSource, key)
	} else {
		g.perSource[key]--
	}
}

// OpenConns is the number of accepted connections open now.
func (g *Guard) OpenConns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// Collectors are the guard's metrics, to register with the node's
// registry.
func (g *Guard) Collectors() []prometheus.Collector { return g.metrics.collectors(g) }
