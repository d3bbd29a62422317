package dnssrv

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	remote net.Addr
	msgs   []*dns.Msg
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	if _, err := m.Pack(); err != nil {
		return err
	}
	r.msgs = append(r.msgs, m)
	return nil
}
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}

// FuzzServeDNS feeds the query path bytes as the server would see them:
// the header check, then the handler on whatever parses. A reply, if any,
// must pack, answer the query's id, and fit the UDP size the client may
// take. Seeds: testdata/fuzz/FuzzServeDNS.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("_sip._udp."+testDomain, dns.TypeSRV),
		query(testDomain, dns.TypeNAPTR),
		query("n1."+testDomain, dns.TypeA),
		query("example.com", dns.TypeA),
	} {
		b, _ := q.Pack()
		f.Add(b, false)
	}
	s, err := New(Config{Domain: testDomain, RateLimit: RateLimit{QPS: -1}}, &fakeSource{members: bigCluster(40)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, tcp bool) {
		if len(b) < 12 {
			return // shorter than a header: miekg/dns drops it before any hook
		}
		// The header check runs on the raw header, as in miekg/dns.
		hdr := dns.Header{Id: uint16(b[0])<<8 | uint16(b[1]), Bits: uint16(b[2])<<8 | uint16(b[3]),
			Qdcount: uint16(b[4])<<8 | uint16(b[5]), Ancount: uint16(b[6])<<8 | uint16(b[7]),
			Nscount: uint16(b[8])<<8 | uint16(b[9]), Arcount: uint16(b[10])<<8 | uint16(b[11])}
		if s.accept(hdr) != dns.MsgAccept {
			return
		}
		var q dns.Msg
		if err := q.Unpack(b); err != nil {
			return // the server drops it (rejectDropper)
		}
		w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5353}}
		if tcp {
			w.remote = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5353}
		}
		s.ServeDNS(w, &q)
		if len(w.msgs) > 1 {
			t.Fatalf("%d replies to one query", len(w.msgs))
		}
		if len(w.msgs) == 0 {
			return
		}
		r := w.msgs[0]
		if r.Id != q.Id || !r.Response {
			t.Fatalf("reply id %d response=%v to query id %d", r.Id, r.Response, q.Id)
		}
		if r.RecursionAvailable {
			t.Fatal("RA set")
		}
		if rc := r.Rcode; rc == dns.RcodeFormatError || rc == dns.RcodeNotImplemented {
			t.Fatalf("handler answered %s: it drops instead", dns.RcodeToString[rc])
		}
		packed, err := r.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		if !tcp {
			limit := dns.MinMsgSize
			if opt := q.IsEdns0(); opt != nil && opt.Version() == 0 {
				limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), s.cfg.UDPSize)
			}
			if len(packed) > limit {
				t.Fatalf("UDP reply of %d bytes, client takes %d", len(packed), limit)
			}
		}
	})
}
