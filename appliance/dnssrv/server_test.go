package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeSource is a cluster view tests change as they go.
type fakeSource struct {
	mu      sync.Mutex
	members []Member
	err     error
	calls   atomic.Int64
}

func (f *fakeSource) Members(context.Context) ([]Member, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members), f.err
}

func (f *fakeSource) set(ms []Member, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members, f.err = ms, err
}

// testServer is a Server serving UDP and TCP on 127.0.0.1.
type testServer struct {
	*Server
	udp, tcp string
}

func startServer(t testing.TB, src Source, c Config) *testServer {
	t.Helper()
	if c.Domain == "" {
		c.Domain = testDomain
	}
	if c.Self == "" {
		c.Self = "n1"
	}
	s, err := New(c, src)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc, ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ts := &testServer{Server: s, udp: pc.LocalAddr().String(), tcp: ln.Addr().String()}
	// Serve starts the transports in goroutines: wait until both answer.
	for _, network := range []string{"udp", "tcp"} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := ts.exchange(network, query(testDomain, dns.TypeSOA)); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("server not answering over %s: %v", network, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ts
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func (ts *testServer) exchange(network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: 65535}
	addr := ts.udp
	if network == "tcp" {
		addr = ts.tcp
	}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func (ts *testServer) mustExchange(t testing.TB, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := ts.exchange(network, m)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, m.Question[0].String(), err)
	}
	return r
}

func TestServerAnswers(t *testing.T) {
	src := &fakeSource{members: testMembers()}
	ts := startServer(t, src, Config{})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			tests := []struct {
				qname string
				qtype uint16
				rcode int
				want  []string
			}{
				{"_sip._udp.hq." + testDomain, dns.TypeSRV, dns.RcodeSuccess, []string{
					"_sip._udp.hq.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
					"_sip._udp.hq.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
					"_sip._udp.hq.survive.acme.example. 30 IN SRV 20 75 5070 n3.survive.acme.example.",
				}},
				{"_sips._tcp." + testDomain, dns.TypeSRV, dns.RcodeSuccess, []string{
					"_sips._tcp.survive.acme.example. 30 IN SRV 10 100 5061 n1.survive.acme.example.",
				}},
				{testDomain, dns.TypeNAPTR, dns.RcodeSuccess, []string{
					`survive.acme.example. 30 IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.survive.acme.example.`,
					`survive.acme.example. 30 IN NAPTR 10 20 "s" "SIP+D2T" "" _sip._tcp.survive.acme.example.`,
					`survive.acme.example. 30 IN NAPTR 10 30 "s" "SIP+D2U" "" _sip._udp.survive.acme.example.`,
				}},
				{"n3." + testDomain, dns.TypeA, dns.RcodeSuccess, []string{"n3.survive.acme.example. 30 IN A 192.0.2.3"}},
				{"n2." + testDomain, dns.TypeAAAA, dns.RcodeSuccess, []string{"n2.survive.acme.example. 30 IN AAAA 2001:db8::2"}},
				{"n4." + testDomain, dns.TypeA, dns.RcodeNameError, nil}, // unhealthy
				{"nope." + testDomain, dns.TypeSRV, dns.RcodeNameError, nil},
				{"n1." + testDomain, dns.TypeMX, dns.RcodeSuccess, nil},
				{"www.example.com", dns.TypeA, dns.RcodeRefused, nil},
				{"example", dns.TypeSOA, dns.RcodeRefused, nil},
			}
			for _, tc := range tests {
				r := ts.mustExchange(t, network, query(tc.qname, tc.qtype))
				name := fmt.Sprintf("%s %s", tc.qname, dns.TypeToString[tc.qtype])
				if r.Rcode != tc.rcode {
					t.Errorf("%s: rcode %s, want %s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got := rrStrings(r.Answer); !slices.Equal(got, tc.want) {
					t.Errorf("%s: answer\n got %q\nwant %q", name, got, tc.want)
				}
				if r.RecursionAvailable || r.Truncated {
					t.Errorf("%s: ra=%v tc=%v, want both false", name, r.RecursionAvailable, r.Truncated)
				}
				inZone := tc.rcode != dns.RcodeRefused
				if r.Authoritative != inZone {
					t.Errorf("%s: aa=%v, want %v", name, r.Authoritative, inZone)
				}
				if wantSOA := inZone && len(tc.want) == 0; wantSOA != (len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA) {
					t.Errorf("%s: authority %v, want the SOA: %v", name, r.Ns, wantSOA)
				}
				if tc.rcode == dns.RcodeRefused && len(r.Answer)+len(r.Ns)+len(r.Extra) > 0 {
					t.Errorf("%s: refused with records: %v", name, r)
				}
			}
			// SRV answers carry the targets' addresses.
			r := ts.mustExchange(t, network, query("_sip._udp."+testDomain, dns.TypeSRV))
			if got := len(r.Extra); got != 4 {
				t.Errorf("SRV additional section has %d records, want 4 (n1 A, n2 A+AAAA, n3 A): %v", got, r.Extra)
			}
		})
	}
}

func TestServerUnhealthyNodeLeaves(t *testing.T) {
	src := &fakeSource{members: testMembers()}
	ts := startServer(t, src, Config{Refresh: 50 * time.Millisecond})
	targets := func() []string {
		r := ts.mustExchange(t, "udp", query("_sip._udp."+testDomain, dns.TypeSRV))
		var out []string
		for _, rr := range r.Answer {
			out = append(out, rr.(*dns.SRV).Target)
		}
		return out
	}
	if got := targets(); !slices.Contains(got, "n2.survive.acme.example.") {
		t.Fatalf("n2 missing while healthy: %v", got)
	}
	ms := testMembers()
	ms[1].Healthy = false
	src.set(ms, nil)
	time.Sleep(60 * time.Millisecond)
	if got := targets(); slices.Contains(got, "n2.survive.acme.example.") || len(got) != 2 {
		t.Errorf("SRV targets after n2 died = %v, want n1 and n3", got)
	}
	if r := ts.mustExchange(t, "udp", query("n2."+testDomain, dns.TypeA)); r.Rcode != dns.RcodeNameError {
		t.Errorf("A of dead n2: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	src.set(testMembers(), nil)
	time.Sleep(60 * time.Millisecond)
	if got := targets(); !slices.Contains(got, "n2.survive.acme.example.") {
		t.Errorf("n2 not back: %v", got)
	}
}

func TestServerRefreshAtMostOncePerInterval(t *testing.T) {
	src := &fakeSource{members: testMembers()}
	ts := startServer(t, src, Config{Refresh: time.Hour})
	before := src.calls.Load()
	for range 20 {
		ts.mustExchange(t, "udp", query(testDomain, dns.TypeNAPTR))
	}
	if n := src.calls.Load() - before; n != 0 {
		t.Errorf("source read %d times for 20 queries within Refresh, want 0", n)
	}
}

func TestServerSourceFailing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	src := &fakeSource{members: testMembers()}
	ts := startServer(t, src, Config{Now: clock, Refresh: time.Second, MaxStale: 5 * time.Second})
	src.set(nil, errors.New("store closed"))
	advance(2 * time.Second)
	if r := ts.mustExchange(t, "udp", query("n1."+testDomain, dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("within MaxStale: %v, want the last zone's answer", r)
	}
	advance(4 * time.Second)
	if r := ts.mustExchange(t, "udp", query("n1."+testDomain, dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("past MaxStale: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	src.set(testMembers(), nil)
	advance(2 * time.Second)
	if r := ts.mustExchange(t, "udp", query("n1."+testDomain, dns.TypeA)); r.Rcode != dns.RcodeSuccess {
		t.Errorf("source back: rcode %s, want NOERROR", dns.RcodeToString[r.Rcode])
	}
}

func TestServerSerialFollowsChanges(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	src := &fakeSource{members: testMembers()}
	ts := startServer(t, src, Config{Now: clock})
	serial := func() uint32 {
		return ts.mustExchange(t, "udp", query(testDomain, dns.TypeSOA)).Answer[0].(*dns.SOA).Serial
	}
	first := serial()
	if first != 1_700_000_000 {
		t.Errorf("first serial = %d, want the build time", first)
	}
	advance(2 * time.Second)
	if s := serial(); s != first {
		t.Errorf("serial changed to %d without a change of the cluster", s)
	}
	ms := testMembers()
	ms[0].Healthy = false
	src.set(ms, nil)
	advance(2 * time.Second)
	if s := serial(); s <= first {
		t.Errorf("serial %d after a change, want more than %d", s, first)
	}
}

func TestServerANYAndTransfers(t *testing.T) {
	ts := startServer(t, &fakeSource{members: testMembers()}, Config{})
	r := ts.mustExchange(t, "udp", query(testDomain, dns.TypeANY))
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeHINFO {
		t.Errorf("ANY answer = %v, want one HINFO (RFC 8482)", r.Answer)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := ts.mustExchange(t, network, query(testDomain, dns.TypeAXFR))
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("AXFR over %s: rcode %s, want REFUSED", network, dns.RcodeToString[r.Rcode])
		}
	}
	m := query(testDomain, dns.TypeSOA)
	m.Question[0].Qclass = dns.ClassCHAOS
	if r := ts.mustExchange(t, "udp", m); r.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS class: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

// bigCluster has enough nodes that the apex SRV answer exceeds 512 bytes
// and 1232 bytes.
func bigCluster(n int) []Member {
	var ms []Member
	for i := range n {
		ms = append(ms, Member{ID: fmt.Sprintf("node-%02d", i), Site: "hq",
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})}, UDP: 5060, TCP: 5060, Healthy: true})
	}
	return ms
}

func TestServerEDNSAndTruncation(t *testing.T) {
	ts := startServer(t, &fakeSource{members: bigCluster(60)}, Config{})
	srv := query("_sip._udp."+testDomain, dns.TypeSRV)

	// No EDNS0: 512 bytes at most over UDP, TC set, no OPT. (Len is the
	// compressed size only with Compress set, as it was on the wire.)
	r := ts.mustExchange(t, "udp", srv.Copy())
	r.Compress = true
	if !r.Truncated || r.Len() > 512 || r.IsEdns0() != nil {
		t.Errorf("plain UDP: tc=%v len=%d opt=%v; want tc, ≤512, no OPT", r.Truncated, r.Len(), r.IsEdns0())
	}
	// EDNS0 at 4096: capped at the server's 1232, OPT echoed with its size.
	q := srv.Copy()
	q.SetEdns0(4096, true)
	r = ts.mustExchange(t, "udp", q)
	r.Compress = true
	opt := r.IsEdns0()
	if opt == nil || opt.UDPSize() != 1232 || !opt.Do() || opt.Version() != 0 {
		t.Fatalf("EDNS0 UDP: OPT = %v, want size 1232, DO echoed, version 0", opt)
	}
	if !r.Truncated || r.Len() > 1232 || len(r.Answer) <= 10 {
		t.Errorf("EDNS0 UDP: tc=%v len=%d answers=%d; want tc, ≤1232, more than 512 bytes' worth", r.Truncated, r.Len(), len(r.Answer))
	}
	// TCP: the whole answer.
	r = ts.mustExchange(t, "tcp", q.Copy())
	if r.Truncated || len(r.Answer) != 60 || r.IsEdns0() == nil {
		t.Errorf("TCP: tc=%v answers=%d opt=%v; want all 60, OPT", r.Truncated, len(r.Answer), r.IsEdns0())
	}
	// A small answer fits: no TC.
	q = query("node-01."+testDomain, dns.TypeA)
	q.SetEdns0(1232, false)
	if r = ts.mustExchange(t, "udp", q); r.Truncated || len(r.Answer) != 1 || r.IsEdns0() == nil {
		t.Errorf("small answer: tc=%v answers=%d opt=%v", r.Truncated, len(r.Answer), r.IsEdns0())
	}
	// An EDNS version this server does not speak: BADVERS (RFC 6891).
	q = query(testDomain, dns.TypeSOA)
	q.SetEdns0(1232, false)
	q.IsEdns0().SetVersion(1)
	if r = ts.mustExchange(t, "udp", q); r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
		t.Errorf("EDNS version 1: rcode %s opt %v, want BADVERS with a version 0 OPT", dns.RcodeToString[r.Rcode], r.IsEdns0())
	}
}

// rawExchange sends b over UDP from a socket bound to local and returns
// the reply, or nil when none comes within wait.
func rawExchange(t testing.TB, local, server string, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.ListenPacket("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(b, to); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestServerDropsMalformed(t *testing.T) {
	ts := startServer(t, &fakeSource{members: testMembers()}, Config{})
	good, err := query("n1."+testDomain, dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	response := query("n1."+testDomain, dns.TypeA)
	response.Response = true
	resp, _ := response.Pack()
	twoQuestions := query("n1."+testDomain, dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	two, _ := twoQuestions.Pack()
	update := query(testDomain, dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	upd, _ := update.Pack()
	tests := []struct {
		name string
		b    []byte
	}{
		{"garbage", []byte("\x00\x01this is not a dns message at all, just bytes")},
		{"short", []byte{0x12, 0x34, 0x01}},
		{"header only, claims a question", good[:12]},
		{"question cut short", good[:len(good)-3]},
		{"a response", resp},
		{"two questions", two},
		{"an update", upd},
		{"bad label length", append(slices.Clone(good[:12]), 0x3f, 'a', 0, 0, 1, 0, 1)},
	}
	before := counterValue(t, ts.metrics.malformed)
	for _, tc := range tests {
		if got := rawExchange(t, "127.0.0.1:0", ts.udp, tc.b, 200*time.Millisecond); got != nil {
			t.Errorf("%s: got a %d-byte reply, want none", tc.name, len(got))
		}
	}
	if got := counterValue(t, ts.metrics.malformed) - before; got != float64(len(tests)) {
		t.Errorf("malformed_total grew by %v, want %d", got, len(tests))
	}
	// Still serving.
	reply := rawExchange(t, "127.0.0.1:0", ts.udp, good, 2*time.Second)
	var r dns.Msg
	if reply == nil || r.Unpack(reply) != nil || len(r.Answer) != 1 {
		t.Fatalf("good query after garbage: %v", reply)
	}
	// Over TCP, garbage gets no reply either, and the server goes on.
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write(append([]byte{0, byte(len(good) - 3)}, good[:len(good)-3]...))
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 512)); err == nil {
		t.Errorf("TCP garbage: got a %d-byte reply, want none", n)
	}
	ts.mustExchange(t, "tcp", query("n1."+testDomain, dns.TypeA))
}

func TestServerRateLimit(t *testing.T) {
	ts := startServer(t, &fakeSource{members: testMembers()}, Config{
		RateLimit: RateLimit{QPS: 1, Burst: 5, Slip: 4},
	})
	good, _ := query("_sip._udp."+testDomain, dns.TypeSRV).Pack()
	// One socket from 127.0.0.2 sends 40 queries at once.
	c, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", ts.udp)
	const burst = 40
	for range burst {
		if _, err := c.WriteTo(good, to); err != nil {
			t.Fatal(err)
		}
	}
	var full, truncated int
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			break
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated {
			truncated++
			if len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || n > len(good) {
				t.Errorf("slip reply has records or is larger (%d bytes) than the query (%d)", n, len(good))
			}
		} else {
			full++
		}
	}
	// 5 from the burst (a token or two may refill while the burst runs);
	// a quarter of the rest slip.
	if full < 5 || full > 7 {
		t.Errorf("%d full answers to a burst of %d, want the burst size 5 (+2)", full, burst)
	}
	if wantSlip := (burst - full) / 4; truncated < wantSlip-1 || truncated > wantSlip+1 {
		t.Errorf("%d slipped (TC) answers, want about %d", truncated, wantSlip)
	}
	if dropped := counterValue(t, ts.metrics.limited.WithLabelValues("drop")); dropped < burst/2 {
		t.Errorf("rate_limited_total{action=drop} = %v, want at least %d", dropped, burst/2)
	}
	// Another source is answered meanwhile.
	r := rawExchange(t, "127.0.0.1:0", ts.udp, good, 2*time.Second)
	var m dns.Msg
	if r == nil || m.Unpack(r) != nil || m.Truncated || len(m.Answer) == 0 {
		t.Errorf("another source: reply %v, want a full answer", r)
	}
	// TCP is not limited: 127.0.0.2 still gets answers over TCP.
	cl := &dns.Client{Net: "tcp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}}
	if r, _, err := cl.Exchange(query("n1."+testDomain, dns.TypeA), ts.tcp); err != nil || len(r.Answer) != 1 {
		t.Errorf("TCP from the limited source: %v, %v", r, err)
	}
}

func TestServerShutdown(t *testing.T) {
	s, err := New(Config{Domain: testDomain}, &fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc, ln) }()
	// Shut down at once, perhaps before the transports started.
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Shutdown = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if err := s.Serve(pc, ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestNewRefusesBadDomain(t *testing.T) {
	for _, d := range []string{"", ".", "a..b"} {
		if _, err := New(Config{Domain: d}, &fakeSource{}); err == nil {
			t.Errorf("New(domain %q) = nil error", d)
		}
	}
}

func TestServerMetrics(t *testing.T) {
	ts := startServer(t, &fakeSource{members: testMembers()}, Config{})
	ts.mustExchange(t, "udp", query("nope."+testDomain, dns.TypeA))
	ts.mustExchange(t, "udp", query("example.com", dns.TypeA))
	if got := counterValue(t, ts.metrics.responses.WithLabelValues("NXDOMAIN")); got != 1 {
		t.Errorf("responses_total{rcode=NXDOMAIN} = %v, want 1", got)
	}
	if got := counterValue(t, ts.metrics.responses.WithLabelValues("REFUSED")); got != 1 {
		t.Errorf("responses_total{rcode=REFUSED} = %v, want 1", got)
	}
	if n := len(ts.Collectors()); n != 3 {
		t.Errorf("%d collectors, want 3", n)
	}
}

// BenchmarkServerUDP measures answered SRV queries per second over
// loopback UDP, with parallel clients (rate limit off).
func BenchmarkServerUDP(b *testing.B) {
	ts := startServer(b, &fakeSource{members: bigCluster(3)}, Config{RateLimit: RateLimit{QPS: -1}})
	q := query("_sip._udp.hq."+testDomain, dns.TypeSRV)
	q.SetEdns0(1232, false)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dns.Dial("udp", ts.udp)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if err := c.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.ReadMsg(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkServeDNS is the handler alone, without sockets.
func BenchmarkServeDNS(b *testing.B) {
	s, err := New(Config{Domain: testDomain, RateLimit: RateLimit{QPS: -1}}, &fakeSource{members: bigCluster(3)})
	if err != nil {
		b.Fatal(err)
	}
	q := query("_sip._udp.hq."+testDomain, dns.TypeSRV)
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353}}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
}

// counterValue reads one counter (or a vector's child) through a registry.
func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
