package sbc

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzClassify: any string either fails with ErrBadNumber or yields a
// calling code that prefixes the number and a zone the policy can compare.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"+16505550123", "+18765550123", "+19005550123", "+442079460000", "+35315550123", "+79161234567",
		"+2901234", "+88216123456", "911", "", "+", "+0", "+1", "+1x", "+٣٣١٢٣٤٥٦٧", "++16505550123",
		"+1650555012\x00", "+123456789012345", "+1234567890123456",
	} {
		f.Add(s)
	}
	pol := DefaultPolicy()
	site := hqSite()
	f.Fuzz(func(t *testing.T, number string) {
		d, err := Classify(number)
		perr := pol.Check(OutboundRequest{Authenticated: true, UserID: "u", Site: site, Number: number})
		if err != nil {
			if perr == nil {
				t.Fatalf("Check allowed %q, which Classify rejects: %v", number, err)
			}
			return
		}
		if !strings.HasPrefix(number, "+"+d.CallingCode) || len(d.CallingCode) < 1 || len(d.CallingCode) > 3 {
			t.Fatalf("Classify(%q): code %q", number, d.CallingCode)
		}
		if d.Zone == "" || (d.CallingCode != "1" && d.Zone != "+"+d.CallingCode) {
			t.Fatalf("Classify(%q): zone %q", number, d.Zone)
		}
		if perr == nil && d.Zone != "NANP" {
			t.Fatalf("the default policy let a US site call %q in %s", number, d.Zone)
		}
	})
}

// FuzzDNSAnswer: whatever a server sends back, extracting records, NAPTR
// targets and SRV targets never panics and only yields what was asked for.
func FuzzDNSAnswer(f *testing.F) {
	seed := func(qname string, qtype uint16, lines ...string) {
		m := new(dns.Msg)
		m.SetQuestion(qname, qtype)
		m.Response = true
		for _, l := range lines {
			rr, err := dns.NewRR(l)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		data, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, qtype)
	}
	seed("example.test.", dns.TypeNAPTR, `example.test. 60 IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.example.test.`,
		`example.test. 60 IN NAPTR 10 10 "S" "sip+d2u" "" .`, `example.test. 60 IN NAPTR 1 1 "u" "E2U+sip" "!^.*$!x!" .`)
	seed("example.test.", dns.TypeSRV, `example.test. 60 IN SRV 0 0 0 .`, `example.test. 60 IN SRV 1 65535 5060 a.example.test.`)
	seed("example.test.", dns.TypeA, `example.test. 5 IN CNAME b.example.test.`, `b.example.test. 5 IN CNAME example.test.`,
		`b.example.test. 0 IN A 192.0.2.1`, `other.test. 60 IN A 192.0.2.2`)
	seed("example.test.", dns.TypeAAAA, `EXAMPLE.test. 4294967295 IN AAAA 2001:db8::1`)
	f.Add([]byte{0, 0, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0}, dns.TypeA) // NXDOMAIN, no question
	f.Fuzz(func(t *testing.T, data []byte, qtype uint16) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil {
			return
		}
		rrs, ttl, err := answer(m, "example.test.", qtype)
		if err != nil {
			return
		}
		if ttl < 0 {
			t.Fatalf("negative ttl %v", ttl)
		}
		for _, rr := range rrs {
			if rr.Header().Rrtype != qtype {
				t.Fatalf("asked for %d, got %v", qtype, rr)
			}
		}
		for _, name := range naptrTargets(rrs, "SIP+D2U") {
			if name == "." || !strings.HasSuffix(name, ".") {
				t.Fatalf("NAPTR target %q", name)
			}
		}
		targets := srvTargets(rrs)
		for _, s := range targets {
			if s.port <= 0 || s.host == "." {
				t.Fatalf("SRV target %+v", s)
			}
		}
		ordered := order(targets, script(0, 7, 3))
		if len(ordered) != len(targets) || !slices.IsSortedFunc(ordered, func(a, b srvTarget) int { return a.priority - b.priority }) {
			t.Fatalf("order(%v) = %v", targets, ordered)
		}
	})
}
