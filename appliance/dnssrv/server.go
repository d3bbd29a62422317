package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("dns server closed")

// Source is the server's view of the cluster: every member, healthy or not.
type Source interface {
	Members(ctx context.Context) ([]Member, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) ([]Member, error)

// Members calls f.
func (f SourceFunc) Members(ctx context.Context) ([]Member, error) { return f(ctx) }

// Config configures a Server. Only Domain is required.
type Config struct {
	Domain string // the zone answered, e.g. survive.acme.example
	Self   string // this node's id, named as the SOA's primary server
	// TTL of every record and of negative answers. Default 30s: a phone's
	// resolver forgets a dead node at most this long after the zone did.
	TTL time.Duration
	// Refresh is the most a view of the cluster is reused: the first query
	// after it asks the Source again. Default 1s.
	Refresh time.Duration
	// MaxStale: while the Source fails, the last zone is served for this
	// long after it was built; then the answer is SERVFAIL, and resolvers
	// ask another node. Default 5s.
	MaxStale time.Duration
	// UDPSize is the EDNS0 payload size this server advertises, and the
	// most it sends over UDP whatever the client offers. Default 1232
	// (no IP fragmentation on any usual path). Without EDNS0: 512.
	UDPSize   int
	RateLimit RateLimit
	Log       *slog.Logger
	Now       func() time.Time // default time.Now
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 30 * time.Second
	}
	if c.Refresh <= 0 {
		c.Refresh = time.Second
	}
	if c.MaxStale <= 0 {
		c.MaxStale = 5 * time.Second
	}
	if c.UDPSize < dns.MinMsgSize {
		c.UDPSize = 1232
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.RateLimit = c.RateLimit.withDefaults()
	return c
}

// Server answers DNS queries for one zone over UDP and TCP. Its handler,
// ServeDNS, may also be driven directly (tests, fuzzing).
type Server struct {
	cfg     Config
	src     Source
	limit   *limiter
	metrics *metrics

	view atomic.Pointer[view]

	buildMu  sync.Mutex // one rebuild at a time; guards the fields below
	failedAt time.Time  // of the last failed rebuild, so a failing Source is asked once per Refresh
	failing  bool
	serial   uint32
	print    string // what the zone was built from, to bump serial on change

	mu      sync.Mutex
	closed  bool
	servers []*dns.Server
}

// view is one built zone and when it was built.
type view struct {
	zone  *Zone
	built time.Time
}

// New checks c and returns a server reading the cluster from src.
func New(c Config, src Source) (*Server, error) {
	c = c.withDefaults()
	if _, ok := dns.IsDomainName(c.Domain); !ok || dns.CanonicalName(c.Domain) == "." {
		return nil, fmt.Errorf("dns domain %q is not a domain name: set dns.domain to the zone to answer, e.g. survive.acme.example", c.Domain)
	}
	if src == nil {
		return nil, errors.New("dns server needs a source of cluster members")
	}
	return &Server{cfg: c, src: src, limit: newLimiter(c.RateLimit), metrics: newMetrics()}, nil
}

// Serve answers queries on pc (UDP) and ln (TCP), either of which may be
// nil, until Shutdown (then it returns nil) or until one of them fails
// (then it stops the other and returns the error). It closes both.
func (s *Server) Serve(pc net.PacketConn, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	var srvs []*dns.Server
	if pc != nil {
		srvs = append(srvs, s.newServer(&dns.Server{PacketConn: pc, Net: "udp"}))
	}
	if ln != nil {
		srvs = append(srvs, s.newServer(&dns.Server{Listener: ln, Net: "tcp"}))
	}
	s.servers = append(s.servers, srvs...)
	s.mu.Unlock()

	errc := make(chan error, len(srvs))
	for _, srv := range srvs {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	var first error
	for range srvs {
		if err := <-errc; err != nil && first == nil && !s.isClosed() {
			first = fmt.Errorf("serve dns: %w", err)
			go func() { _ = s.Shutdown(context.Background()) }() // stop the other transport; first is the error
		}
	}
	return first
}

func (s *Server) newServer(srv *dns.Server) *dns.Server {
	srv.Handler = s
	srv.UDPSize = 4096 // the read buffer: larger queries are cut, then dropped as malformed
	srv.MsgAcceptFunc = s.accept
	srv.MsgInvalidFunc = func([]byte, error) { s.metrics.malformed.Inc() }
	srv.DecorateWriter = func(w dns.Writer) dns.Writer { return rejectDropper{w} }
	return srv
}

// Shutdown stops serving; queries in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		err := srv.ShutdownContext(ctx)
		// Not started yet (or already stopped): closing its socket makes
		// ActivateAndServe return as soon as it runs.
		if srv.PacketConn != nil {
			_ = srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			_ = srv.Listener.Close()
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("stop dns server: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// accept is the first look at a packet, its header only. Anything but a
// plain query is dropped without a word: answering malformed packets
// (even FORMERR) feeds reflection attacks.
func (s *Server) accept(h dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	opcode := int(h.Bits>>11) & 0xF
	if h.Bits&qr != 0 || opcode != dns.OpcodeQuery || h.Qdcount != 1 || h.Ancount != 0 || h.Nscount != 0 || h.Arcount > 2 {
		s.metrics.malformed.Inc()
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// rejectDropper drops the FORMERR and NOTIMP replies miekg/dns writes by
// itself for a query whose header passed accept but whose body does not
// parse. ServeDNS never answers with those codes.
type rejectDropper struct{ dns.Writer }

func (d rejectDropper) Write(b []byte) (int, error) {
	if len(b) >= 4 {
		if rc := int(b[3] & 0xF); rc == dns.RcodeFormatError || rc == dns.RcodeNotImplemented {
			return len(b), nil
		}
	}
	return d.Writer.Write(b)
}

// ServeDNS answers one query. Over UDP it applies the rate limit first and
// truncates the answer to what the client can take.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if !tcp {
		switch s.limit.check(addrOf(w.RemoteAddr()), s.cfg.Now()) {
		case drop:
			s.metrics.limited.WithLabelValues("drop").Inc()
			return
		case slip:
			s.metrics.limited.WithLabelValues("slip").Inc()
			if !wellFormed(r) {
				return
			}
			m := new(dns.Msg)
			m.SetReply(r)
			m.Truncated = true
			s.write(w, m)
			return
		}
	}
	m := s.answer(r, !tcp)
	if m == nil {
		s.metrics.malformed.Inc()
		return
	}
	s.write(w, m)
}

func (s *Server) write(w dns.ResponseWriter, m *dns.Msg) {
	if err := w.WriteMsg(m); err != nil {
		s.cfg.Log.Debug("dns reply not sent", "remote", w.RemoteAddr().String(), "error", err)
		return
	}
	s.metrics.responses.WithLabelValues(rcodeName(m.Rcode)).Inc()
}

// wellFormed is the handler's own check of what accept lets through, for
// callers that skip accept (tests, fuzzing): one question, a query, at
// most one OPT.
func wellFormed(r *dns.Msg) bool {
	if r.Response || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 || len(r.Answer) != 0 || len(r.Ns) != 0 {
		return false
	}
	opts := 0
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
		}
	}
	return opts <= 1
}

// answer builds the response to r, or nil when r gets none (malformed).
func (s *Server) answer(r *dns.Msg, udp bool) *dns.Msg {
	if !wellFormed(r) {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Compress = true
	size := dns.MinMsgSize
	opt := r.IsEdns0()
	if opt != nil {
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3
			m.SetEdns0(uint16(s.cfg.UDPSize), false)
			return m
		}
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), s.cfg.UDPSize)
	}
	defer func() {
		if opt != nil {
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.SetUDPSize(uint16(s.cfg.UDPSize))
			o.SetDo(opt.Do()) // RFC 3225 §3: copied, though nothing here is signed
			m.Extra = append(m.Extra, o)
		}
		if udp {
			m.Truncate(size)
			m.Compress = true
		}
	}()

	q := r.Question[0]
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY,
		q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR: // no transfers: every node builds its own zone
		m.Rcode = dns.RcodeRefused
		return m
	}
	z, err := s.zone()
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	a := z.Lookup(q.Name, q.Qtype)
	m.Rcode = a.Rcode
	m.Authoritative = a.Authoritative
	m.Answer = slices.Clip(a.Answer)
	m.Ns = slices.Clip(a.Ns)
	m.Extra = slices.Clip(a.Extra)
	return m
}

// zone is the current zone, rebuilt from the Source when older than
// Refresh. A failing Source keeps the last zone for MaxStale.
func (s *Server) zone() (*Zone, error) {
	now := s.cfg.Now()
	if v := s.view.Load(); v != nil && now.Sub(v.built) < s.cfg.Refresh {
		return v.zone, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	now = s.cfg.Now()
	v := s.view.Load()
	if v != nil && now.Sub(v.built) < s.cfg.Refresh {
		return v.zone, nil // built while this query waited
	}
	stale := func(err error) (*Zone, error) {
		if v != nil && now.Sub(v.built) < s.cfg.MaxStale {
			return v.zone, nil
		}
		return nil, err
	}
	if s.failing && now.Sub(s.failedAt) < s.cfg.Refresh {
		return stale(errors.New("cluster view unavailable"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ms, err := s.src.Members(ctx)
	if err != nil {
		if !s.failing {
			s.cfg.Log.Warn("dns: cannot read the cluster; answering from the last view while it is fresh, then SERVFAIL", "error", err)
		}
		s.failing, s.failedAt = true, now
		return stale(err)
	}
	if s.failing {
		s.cfg.Log.Info("dns: cluster view readable again")
		s.failing = false
	}
	if p := fingerprint(ms); p != s.print || s.serial == 0 {
		s.print = p
		s.serial = max(s.serial+1, uint32(now.Unix()))
	}
	z := Build(ZoneConfig{Domain: s.cfg.Domain, Self: s.cfg.Self, TTL: s.cfg.TTL, Serial: s.serial}, ms)
	s.view.Store(&view{zone: z, built: now})
	return z, nil
}

// fingerprint is what a zone is built from, in a stable order.
func fingerprint(ms []Member) string {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return fmt.Sprint(ms)
}

func addrOf(a net.Addr) (ip netip.Addr) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	}
	return ip
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprint(rc)
}
