package sbc

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testZone is the zone the test DNS server answers.
var testZone = []string{
	// NAPTR: TLS and TCP, and UDP on another SRV name; a regexp record and an
	// "a"-flag record that must be ignored.
	`naptr.example.test. 300 IN NAPTR 5 10 "s" "SIPS+D2T" "" _sips._tcp.naptr.example.test.`,
	`naptr.example.test. 300 IN NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.naptr.example.test.`,
	`naptr.example.test. 300 IN NAPTR 1 10 "u" "SIP+D2U" "!^.*$!sip:x@evil.test!" .`,
	`naptr.example.test. 300 IN NAPTR 2 10 "a" "SIP+D2U" "" wrong.example.test.`,
	`naptr.example.test. 300 IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.pool.example.test.`,
	`naptr.example.test. 30 IN A 192.0.2.30`,
	`_sip._tcp.naptr.example.test. 60 IN SRV 0 0 5060 sbc-a.example.test.`,
	`_sip._udp.pool.example.test. 60 IN SRV 10 60 5070 sbc-a.example.test.`,
	`_sip._udp.pool.example.test. 60 IN SRV 10 40 5072 sbc-b.example.test.`,
	`_sip._udp.pool.example.test. 60 IN SRV 20 0 5074 sbc-c.example.test.`,
	`sbc-a.example.test. 30 IN A 192.0.2.10`,
	`sbc-b.example.test. 300 IN A 192.0.2.11`,
	`sbc-b.example.test. 300 IN AAAA 2001:db8::11`,
	`sbc-c.example.test. 300 IN A 192.0.2.12`,
	// SRV without NAPTR.
	`srvonly.example.test. 300 IN TXT "no naptr here"`,
	`_sip._tcp.srvonly.example.test. 120 IN SRV 0 0 5080 sbc-b.example.test.`,
	// Neither: A/AAAA on the trunk's port; through a CNAME too.
	`plain.example.test. 30 IN A 192.0.2.20`,
	`alias.example.test. 20 IN CNAME plain.example.test.`,
	// SRV says "not here".
	`_sip._udp.dead.example.test. 300 IN SRV 0 0 0 .`,
	`dead.example.test. 300 IN A 192.0.2.40`,
	// An SRV pointing at a name without addresses.
	`_sip._udp.hollow.example.test. 300 IN SRV 0 0 5060 nowhere.example.test.`,
	`hollow.example.test. 300 IN TXT "x"`,
	// A huge TTL, capped.
	`long.example.test. 999999 IN A 192.0.2.50`,
}

// dnsServer is a real miekg/dns server on 127.0.0.1:0 (UDP) over testZone.
type dnsServer struct {
	addr string
	srv  *dns.Server

	mu      sync.Mutex
	rrs     map[string][]dns.RR
	queries map[string]int // "name TYPE"
	fail    bool           // answer SERVFAIL to everything
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{rrs: make(map[string][]dns.RR), queries: make(map[string]int)}
	for _, line := range testZone {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		name := dns.CanonicalName(rr.Header().Name)
		s.rrs[name] = append(s.rrs[name], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = s.srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = s.srv.Shutdown() })
	s.addr = pc.LocalAddr().String()
	return s
}

func (s *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.Lock()
	s.queries[name+" "+dns.TypeToString[q.Qtype]]++
	rrs, exists := s.rrs[name]
	fail := s.fail
	for _, rr := range rrs { // one level of CNAME, as a recursive server answers
		if c, ok := rr.(*dns.CNAME); ok && q.Qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, c)
			rrs = s.rrs[dns.CanonicalName(c.Target)]
		}
	}
	s.mu.Unlock()
	switch {
	case fail:
		m.Rcode = dns.RcodeServerFailure
	case !exists:
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	_ = w.WriteMsg(m)
}

func (s *dnsServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func (s *dnsServer) setFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

func newTestResolver(t *testing.T, s *dnsServer, clk *clock, rnd Rand) *Resolver {
	t.Helper()
	r, err := NewResolver(ResolverOptions{Servers: []string{s.addr}, Now: clk.Now, Rand: rnd,
		Timeout: time.Second, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addrs(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Transport+":"+e.Addr())
	}
	return out
}

func TestResolveChain(t *testing.T) {
	s := startDNS(t)
	for _, tc := range []struct {
		name      string
		host      string
		port      int
		transport string
		rnd       []int
		want      []string
		wantErr   error
	}{
		{"ip", "192.0.2.7", 5062, "tls", nil, []string{"tls:192.0.2.7:5062"}, nil},
		{"ipv6", "2001:db8::7", 5060, "udp", nil, []string{"udp:[2001:db8::7]:5060"}, nil},
		{"naptr udp to another srv name, weight draw 0: a first", "naptr.example.test", 5060, "udp", []int{0},
			[]string{"udp:192.0.2.10:5070", "udp:192.0.2.11:5072", "udp:[2001:db8::11]:5072", "udp:192.0.2.12:5074"}, nil},
		{"naptr udp, weight draw 60: b first", "naptr.example.test", 5060, "udp", []int{60},
			[]string{"udp:192.0.2.11:5072", "udp:[2001:db8::11]:5072", "udp:192.0.2.10:5070", "udp:192.0.2.12:5074"}, nil},
		{"naptr tcp", "NAPTR.example.test.", 5060, "tcp", nil, []string{"tcp:192.0.2.10:5060"}, nil},
		{"naptr tls to a missing srv: the host's A on the trunk port", "naptr.example.test", 5061, "tls", nil,
			[]string{"tls:192.0.2.30:5061"}, nil},
		{"srv without naptr", "srvonly.example.test", 5060, "tcp", nil,
			[]string{"tcp:192.0.2.11:5080", "tcp:[2001:db8::11]:5080"}, nil},
		{"a only", "plain.example.test", 5099, "udp", nil, []string{"udp:192.0.2.20:5099"}, nil},
		{"cname", "alias.example.test", 5099, "tcp", nil, []string{"tcp:192.0.2.20:5099"}, nil},
		{"srv dot: not offered", "dead.example.test", 5060, "udp", nil, nil, ErrNoAddress},
		{"srv target without address", "hollow.example.test", 5060, "udp", nil, nil, ErrNoAddress},
		{"nxdomain", "missing.example.test", 5060, "udp", nil, nil, ErrNoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestResolver(t, s, newClock(), script(tc.rnd...))
			eps, err := r.Resolve(context.Background(), Target{TrunkID: "t", Host: tc.host, Port: tc.port, Transport: tc.transport})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := addrs(eps); !slices.Equal(got, tc.want) {
				t.Errorf("endpoints\n got %v\nwant %v", got, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.host) {
				t.Errorf("error %q does not name the host", err)
			}
		})
	}
}

func TestResolveEndpointHost(t *testing.T) {
	s := startDNS(t)
	r := newTestResolver(t, s, newClock(), script(0))
	eps, err := r.Resolve(context.Background(), Target{TrunkID: "t", Host: "srvonly.example.test", Port: 5061, Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if eps[0].Host != "sbc-b.example.test" {
		t.Errorf("endpoint host %q, want the SRV target (the TLS server name)", eps[0].Host)
	}
}

func TestResolveCachesByMinimumTTL(t *testing.T) {
	s := startDNS(t)
	clk := newClock()
	r := newTestResolver(t, s, clk, script(0))
	tg := Target{TrunkID: "t", Host: "naptr.example.test", Port: 5060, Transport: "udp"}
	resolve := func() []string {
		t.Helper()
		eps, err := r.Resolve(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		return addrs(eps)
	}
	first := resolve()
	n := s.total()
	clk.Advance(29 * time.Second) // the chain's smallest TTL is sbc-a's 30 s
	if got := resolve(); !slices.Equal(got, first) || s.total() != n {
		t.Errorf("within the TTL: %v, %d new queries", got, s.total()-n)
	}
	clk.Advance(2 * time.Second)
	resolve()
	if s.total() == n {
		t.Error("after the TTL the chain was not looked up again")
	}

	n = s.total()
	long := Target{TrunkID: "l", Host: "long.example.test", Port: 5060, Transport: "udp"}
	if _, err := r.Resolve(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	n2 := s.total()
	clk.Advance(DefaultMaxTTL + time.Second)
	if _, err := r.Resolve(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	if s.total() == n2 || n2 == n {
		t.Error("a 999999 s TTL was not capped at MaxTTL")
	}
}

func TestResolveCachesNegativeAnswers(t *testing.T) {
	s := startDNS(t)
	clk := newClock()
	r := newTestResolver(t, s, clk, script(0))
	tg := Target{TrunkID: "t", Host: "missing.example.test", Port: 5060, Transport: "udp"}
	for range 3 {
		if _, err := r.Resolve(context.Background(), tg); !errors.Is(err, ErrNoAddress) {
			t.Fatalf("err = %v", err)
		}
	}
	n := s.total()
	if n != 4 { // NAPTR, SRV, A, AAAA once
		t.Errorf("%d queries for three lookups of a missing name, want 4", n)
	}
	clk.Advance(DefaultNegativeTTL + time.Second)
	_, _ = r.Resolve(context.Background(), tg)
	if s.total() == n {
		t.Error("the negative answer outlived NegativeTTL")
	}
}

func TestResolveServesStaleWhileDNSIsDown(t *testing.T) {
	s := startDNS(t)
	clk := newClock()
	r := newTestResolver(t, s, clk, script(0))
	tg := Target{TrunkID: "t", Host: "plain.example.test", Port: 5060, Transport: "udp"}
	if _, err := r.Resolve(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	s.setFail(true)
	clk.Advance(time.Minute)
	eps, err := r.Resolve(context.Background(), tg)
	if err != nil || len(eps) != 1 || eps[0].Addr() != "192.0.2.20:5060" {
		t.Fatalf("with DNS failing: %v, %v; want the expired answer", addrs(eps), err)
	}
	clk.Advance(DefaultServeStale)
	if _, err := r.Resolve(context.Background(), tg); !errors.Is(err, ErrDNSUnavailable) {
		t.Errorf("past ServeStale: err = %v, want ErrDNSUnavailable", err)
	}
	s.setFail(false)
	clk.Advance(DefaultNegativeTTL + time.Second)
	if _, err := r.Resolve(context.Background(), tg); err != nil {
		t.Errorf("DNS back: %v", err)
	}

	none := Target{TrunkID: "u", Host: "srvonly.example.test", Port: 5060, Transport: "tcp"}
	s.setFail(true)
	if _, err := r.Resolve(context.Background(), none); !errors.Is(err, ErrDNSUnavailable) {
		t.Errorf("never resolved, DNS failing: err = %v", err)
	}
}

func TestResolveTriesServersInOrder(t *testing.T) {
	s := startDNS(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	_ = dead.Close() // connection refused
	r, err := NewResolver(ResolverOptions{Servers: []string{deadAddr, s.addr}, Timeout: time.Second, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := r.Resolve(context.Background(), Target{TrunkID: "t", Host: "plain.example.test", Port: 5060, Transport: "udp"})
	if err != nil || len(eps) != 1 {
		t.Errorf("Resolve = %v, %v; want the second server's answer", addrs(eps), err)
	}
}

func TestResolveRejectsUnknownTransport(t *testing.T) {
	s := startDNS(t)
	r := newTestResolver(t, s, newClock(), script(0))
	if _, err := r.Resolve(context.Background(), Target{TrunkID: "t", Host: "plain.example.test", Port: 5060, Transport: "sctp"}); err == nil {
		t.Error("sctp accepted")
	}
}

func TestNewResolverReadsResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(path, []byte("nameserver 127.0.0.53\nnameserver ::1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(ResolverOptions{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.53:53", "[::1]:53"}; !slices.Equal(r.servers, want) {
		t.Errorf("servers %v, want %v", r.servers, want)
	}
	if _, err := NewResolver(ResolverOptions{ResolvConf: t.TempDir() + "/none"}); err == nil {
		t.Error("a missing resolv.conf was accepted")
	}
}
