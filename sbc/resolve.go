package sbc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver errors. Both are cached for ResolverOptions.NegativeTTL.
var (
	// ErrNoAddress: DNS answered, and the trunk host has no usable address.
	ErrNoAddress = errors.New("trunk host has no address")
	// ErrDNSUnavailable: no DNS server gave an answer (timeout, SERVFAIL, REFUSED, network).
	ErrDNSUnavailable = errors.New("dns unavailable")
)

// Resolver defaults.
const (
	DefaultDNSTimeout  = 2 * time.Second
	DefaultMaxTTL      = time.Hour
	DefaultNegativeTTL = 10 * time.Second
	DefaultServeStale  = 24 * time.Hour
	minTTL             = time.Second
)

// Endpoint is one address to send a trunk's requests to.
type Endpoint struct {
	IP        netip.Addr
	Port      int
	Transport string // udp, tcp or tls
	Host      string // the name the address came from (SRV target or trunk host): TLS server name
}

// Addr is "ip:port".
func (e Endpoint) Addr() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}

// ResolverOptions configures a Resolver. Every field is optional.
type ResolverOptions struct {
	Servers     []string // "host:port" tried in order; default the nameservers of ResolvConf
	ResolvConf  string   // default /etc/resolv.conf
	Now         func() time.Time
	Rand        Rand // SRV weight order; default a PCG seeded from the clock
	Timeout     time.Duration
	MaxTTL      time.Duration // cap on a cached answer
	NegativeTTL time.Duration // how long failures are cached
	ServeStale  time.Duration // how long past its TTL an answer is served while DNS is unavailable
	Log         *slog.Logger
}

// Resolver resolves trunk hosts per RFC 3263: an IP is used as is; an FQDN
// goes NAPTR (the trunk's transport only) → SRV → A/AAAA, or A/AAAA on the
// trunk's port when there is no NAPTR or SRV. Whole chains are cached for the
// smallest TTL in them (at least 1 s, at most MaxTTL); SRV weights are drawn
// again on every call. Safe for concurrent use.
type Resolver struct {
	servers []string
	now     func() time.Time
	timeout time.Duration
	maxTTL  time.Duration
	negTTL  time.Duration
	stale   time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	rnd   Rand
	cache map[cacheKey]*cacheEntry
}

type cacheKey struct {
	host      string
	port      int
	transport string
}

type cacheEntry struct {
	chain     []srvTarget // last good answer; nil after ErrNoAddress
	goodUntil time.Time
	err       error
	errUntil  time.Time
}

// srvTarget is one SRV record with its addresses (or the host itself when there is no SRV).
type srvTarget struct {
	priority, weight int
	port             int
	host             string
	addrs            []netip.Addr
}

// NewResolver returns a Resolver; without Servers it reads ResolvConf.
func NewResolver(o ResolverOptions) (*Resolver, error) {
	r := &Resolver{
		servers: o.Servers, now: o.Now, rnd: o.Rand, timeout: o.Timeout, maxTTL: o.MaxTTL,
		negTTL: o.NegativeTTL, stale: o.ServeStale, log: o.Log, cache: make(map[cacheKey]*cacheEntry),
	}
	if len(r.servers) == 0 {
		path := cmp.Or(o.ResolvConf, "/etc/resolv.conf")
		cfg, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("new resolver: read %s: %w (or set Servers)", path, err)
		}
		for _, s := range cfg.Servers {
			r.servers = append(r.servers, net.JoinHostPort(s, cfg.Port))
		}
		if len(r.servers) == 0 {
			return nil, fmt.Errorf("new resolver: %s names no nameserver; add one or set Servers", path)
		}
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rnd == nil {
		seed := uint64(time.Now().UnixNano())
		r.rnd = rand.New(rand.NewPCG(seed, seed>>1|1))
	}
	r.timeout = cmp.Or(r.timeout, DefaultDNSTimeout)
	r.maxTTL = cmp.Or(r.maxTTL, DefaultMaxTTL)
	r.negTTL = cmp.Or(r.negTTL, DefaultNegativeTTL)
	r.stale = cmp.Or(r.stale, DefaultServeStale)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "sbc")
	return r, nil
}

// transportNames maps a trunk transport to its NAPTR service and SRV prefix.
var transportNames = map[string]struct{ service, srv string }{
	"udp": {"SIP+D2U", "_sip._udp."},
	"tcp": {"SIP+D2T", "_sip._tcp."},
	"tls": {"SIPS+D2T", "_sips._tcp."},
}

// Resolve returns the trunk's endpoints in the order to try them.
func (r *Resolver) Resolve(ctx context.Context, t Target) ([]Endpoint, error) {
	if ip, err := netip.ParseAddr(t.Host); err == nil {
		return []Endpoint{{IP: ip.Unmap(), Port: t.Port, Transport: t.Transport, Host: t.Host}}, nil
	}
	if _, ok := transportNames[t.Transport]; !ok {
		return nil, fmt.Errorf("resolve trunk %s: unknown transport %q", t.TrunkID, t.Transport)
	}
	key := cacheKey{host: dns.CanonicalName(t.Host), port: t.Port, transport: t.Transport}
	now := r.now()
	r.mu.Lock()
	e := r.cache[key]
	switch {
	case e != nil && now.Before(e.goodUntil):
		defer r.mu.Unlock()
		return endpoints(order(e.chain, r.rnd), t.Transport), nil
	case e != nil && e.err != nil && now.Before(e.errUntil):
		defer r.mu.Unlock()
		return r.staleOr(e, now, t)
	}
	r.mu.Unlock()

	chain, ttl, err := r.lookup(ctx, key)
	now = r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if e = r.cache[key]; e == nil {
		e = &cacheEntry{}
		r.cache[key] = e
	}
	if err != nil {
		err = fmt.Errorf("resolve trunk %s host %s: %w", t.TrunkID, t.Host, err)
		e.err, e.errUntil = err, now.Add(r.negTTL)
		if errors.Is(err, ErrNoAddress) {
			e.chain = nil
		}
		return r.staleOr(e, now, t)
	}
	e.chain, e.goodUntil, e.err = chain, now.Add(min(max(ttl, minTTL), r.maxTTL)), nil
	return endpoints(order(chain, r.rnd), t.Transport), nil
}

// staleOr serves the last good answer while DNS is unavailable, within the
// ServeStale window; otherwise it returns the cached error. Callers hold r.mu.
func (r *Resolver) staleOr(e *cacheEntry, now time.Time, t Target) ([]Endpoint, error) {
	if e.chain != nil && errors.Is(e.err, ErrDNSUnavailable) && now.Before(e.goodUntil.Add(r.stale)) {
		r.log.Warn("dns unavailable: using an expired answer", "trunk_id", t.TrunkID, "host", t.Host,
			"expired_for", now.Sub(e.goodUntil).Round(time.Second).String(), "error", e.err)
		return endpoints(order(e.chain, r.rnd), t.Transport), nil
	}
	return nil, e.err
}

// lookup runs the NAPTR → SRV → A/AAAA chain and returns its smallest TTL.
func (r *Resolver) lookup(ctx context.Context, key cacheKey) ([]srvTarget, time.Duration, error) {
	names := transportNames[key.transport]
	ttl := r.maxTTL
	naptr, nttl, err := r.query(ctx, key.host, dns.TypeNAPTR)
	if err != nil {
		return nil, 0, err
	}
	srvNames := naptrTargets(naptr, names.service)
	if len(srvNames) > 0 {
		ttl = min(ttl, nttl)
	} else {
		srvNames = []string{names.srv + key.host}
	}
	var targets []srvTarget
	for _, name := range srvNames {
		rrs, sttl, err := r.query(ctx, name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		if targets = srvTargets(rrs); len(targets) > 0 {
			ttl = min(ttl, sttl)
			break
		}
		if len(rrs) > 0 {
			return nil, 0, fmt.Errorf("%w: SRV %s says the service is not offered (target \".\")", ErrNoAddress, name)
		}
	}
	if len(targets) == 0 {
		targets = []srvTarget{{port: key.port, host: key.host}}
	}
	found := 0
	for i := range targets {
		addrs, attl, err := r.addresses(ctx, targets[i].host)
		if err != nil {
			return nil, 0, err
		}
		if len(addrs) > 0 {
			ttl = min(ttl, attl)
		}
		targets[i].addrs = addrs
		found += len(addrs)
	}
	if found == 0 {
		return nil, 0, fmt.Errorf("%w: no A or AAAA record for %s", ErrNoAddress, targets[0].host)
	}
	return targets, ttl, nil
}

// addresses looks up A, then AAAA, for one name.
func (r *Resolver) addresses(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	var out []netip.Addr
	ttl := r.maxTTL
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, t, err := r.query(ctx, name, qtype)
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok {
					out = append(out, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
					out = append(out, ip)
				}
			}
		}
		if len(rrs) > 0 {
			ttl = min(ttl, t)
		}
	}
	return out, ttl, nil
}

// query asks each server in turn until one answers; an NXDOMAIN or empty
// answer is no records and no error.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	var errs []error
	for _, server := range r.servers {
		resp, err := r.exchange(ctx, m, server)
		if err == nil {
			var rrs []dns.RR
			var ttl time.Duration
			if rrs, ttl, err = answer(resp, name, qtype); err == nil {
				return rrs, ttl, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s %s at %s: %w", dns.TypeToString[qtype], name, server, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, fmt.Errorf("%w: %w", ErrDNSUnavailable, errors.Join(errs...))
}

// exchange sends one query over UDP, and again over TCP when the answer is truncated.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server)
	}
	return resp, err
}

// answer takes the records of type qtype for name (following CNAMEs inside
// the answer) and their smallest TTL. NXDOMAIN is an empty answer; any other
// failing rcode is an error.
func answer(resp *dns.Msg, name string, qtype uint16) ([]dns.RR, time.Duration, error) {
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, 0, nil
	default:
		return nil, 0, fmt.Errorf("server answered %s", dns.RcodeToString[resp.Rcode])
	}
	owners := map[string]bool{dns.CanonicalName(name): true}
	ttl := uint32(1<<31 - 1)
	for grew := true; grew; {
		grew = false
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && owners[dns.CanonicalName(c.Hdr.Name)] && !owners[dns.CanonicalName(c.Target)] {
				owners[dns.CanonicalName(c.Target)], grew = true, true
				ttl = min(ttl, c.Hdr.Ttl)
			}
		}
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype == qtype && owners[dns.CanonicalName(h.Name)] {
			out = append(out, rr)
			ttl = min(ttl, h.Ttl)
		}
	}
	if len(out) == 0 {
		return nil, 0, nil
	}
	return out, time.Duration(ttl) * time.Second, nil
}

// naptrTargets are the SRV names of the NAPTR records for service ("SIP+D2U"
// ...), terminal ("s" flag), without a regexp, in order then preference.
func naptrTargets(rrs []dns.RR, service string) []string {
	var recs []*dns.NAPTR
	for _, rr := range rrs {
		n, ok := rr.(*dns.NAPTR)
		if !ok || !strings.EqualFold(n.Service, service) || !strings.EqualFold(n.Flags, "s") ||
			n.Regexp != "" || n.Replacement == "" || n.Replacement == "." {
			continue
		}
		recs = append(recs, n)
	}
	slices.SortStableFunc(recs, func(a, b *dns.NAPTR) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Preference, b.Preference))
	})
	out := make([]string, 0, len(recs))
	for _, n := range recs {
		out = append(out, dns.CanonicalName(n.Replacement))
	}
	return out
}

// srvTargets are the usable SRV records: not ".", port not 0.
func srvTargets(rrs []dns.RR) []srvTarget {
	var out []srvTarget
	for _, rr := range rrs {
		s, ok := rr.(*dns.SRV)
		if !ok || s.Target == "." || s.Target == "" || s.Port == 0 {
			continue
		}
		out = append(out, srvTarget{priority: int(s.Priority), weight: int(s.Weight), port: int(s.Port),
			host: dns.CanonicalName(s.Target)})
	}
	return out
}

// order sorts SRV targets by priority, weighted random within (RFC 2782).
func order(targets []srvTarget, rnd Rand) []srvTarget {
	sorted := slices.Clone(targets)
	slices.SortStableFunc(sorted, func(a, b srvTarget) int { return cmp.Compare(a.priority, b.priority) })
	out := make([]srvTarget, 0, len(sorted))
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].priority == sorted[i].priority {
			j++
		}
		group := sorted[i:j]
		for _, k := range weightedOrder(len(group), func(k int) int { return group[k].weight }, rnd) {
			out = append(out, group[k])
		}
		i = j
	}
	return out
}

func endpoints(targets []srvTarget, transport string) []Endpoint {
	var out []Endpoint
	for _, t := range targets {
		for _, ip := range t.addrs {
			out = append(out, Endpoint{IP: ip, Port: t.port, Transport: transport, Host: strings.TrimSuffix(t.host, ".")})
		}
	}
	return out
}
