package dnssrv

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testDomain = "survive.acme.example"

// testMembers: two healthy nodes at hq (one with TLS, one dual-stack and
// busy), a UDP-only node at branch, and a dead branch node.
func testMembers() []Member {
	return []Member{
		{ID: "n1", Site: "hq", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, UDP: 5060, TCP: 5060, TLS: 5061, Healthy: true},
		{ID: "n2", Site: "hq", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")},
			UDP: 5060, TCP: 5060, Healthy: true, Registrations: 100},
		{ID: "n3", Site: "branch", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.3")}, UDP: 5070, Healthy: true, Registrations: 50},
		{ID: "n4", Site: "branch", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.4")}, UDP: 5060, TCP: 5060, Healthy: false},
	}
}

func testZone(ms []Member) *Zone {
	return Build(ZoneConfig{Domain: testDomain, Self: "n1", TTL: 30 * time.Second, Serial: 7}, ms)
}

// rrStrings renders records on one line each, fields separated by one space.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		out = append(out, strings.Join(strings.Fields(r.String()), " "))
	}
	return out
}

func TestLookup(t *testing.T) {
	z := testZone(testMembers())
	soa := "survive.acme.example. 30 IN SOA n1.survive.acme.example. hostmaster.survive.acme.example. 7 3600 600 86400 30"
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		ns, extra []string
	}{
		{"soa", "survive.acme.example.", dns.TypeSOA, dns.RcodeSuccess, []string{soa}, nil, nil},
		{"ns: healthy nodes, glue", "survive.acme.example.", dns.TypeNS, dns.RcodeSuccess, []string{
			"survive.acme.example. 30 IN NS n1.survive.acme.example.",
			"survive.acme.example. 30 IN NS n2.survive.acme.example.",
			"survive.acme.example. 30 IN NS n3.survive.acme.example.",
		}, nil, []string{
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
			"n3.survive.acme.example. 30 IN A 192.0.2.3",
		}},
		{"a", "n1.survive.acme.example.", dns.TypeA, dns.RcodeSuccess, []string{"n1.survive.acme.example. 30 IN A 192.0.2.1"}, nil, nil},
		{"aaaa", "n2.survive.acme.example.", dns.TypeAAAA, dns.RcodeSuccess, []string{"n2.survive.acme.example. 30 IN AAAA 2001:db8::2"}, nil, nil},
		{"case does not matter", "N1.Survive.ACME.example.", dns.TypeA, dns.RcodeSuccess, []string{"n1.survive.acme.example. 30 IN A 192.0.2.1"}, nil, nil},
		{"aaaa of a v4 node: nodata", "n1.survive.acme.example.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soa}, nil},
		{"unhealthy node: nxdomain", "n4.survive.acme.example.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}, nil},
		{"unknown name: nxdomain", "nope.survive.acme.example.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}, nil},
		{"empty non-terminal: nodata", "_udp.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, nil, []string{soa}, nil},
		{"foreign name: refused", "www.acme.example.", dns.TypeA, dns.RcodeRefused, nil, nil, nil},
		{"parent of the apex: refused", "acme.example.", dns.TypeSOA, dns.RcodeRefused, nil, nil, nil},
		{"any: rfc 8482", "n1.survive.acme.example.", dns.TypeANY, dns.RcodeSuccess, []string{`n1.survive.acme.example. 30 IN HINFO "RFC8482" ""`}, nil, nil},
		{"any of an unknown name", "x.survive.acme.example.", dns.TypeANY, dns.RcodeNameError, nil, []string{soa}, nil},
		{"srv udp at the apex: every healthy node, one priority", "_sip._udp.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sip._udp.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
			"_sip._udp.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
			"_sip._udp.survive.acme.example. 30 IN SRV 10 75 5070 n3.survive.acme.example.",
		}, nil, []string{
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
			"n3.survive.acme.example. 30 IN A 192.0.2.3",
		}},
		{"srv tcp: only nodes with tcp", "_sip._tcp.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sip._tcp.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
			"_sip._tcp.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
		}, nil, []string{
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
		}},
		{"sips", "_sips._tcp.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sips._tcp.survive.acme.example. 30 IN SRV 10 100 5061 n1.survive.acme.example.",
		}, nil, []string{"n1.survive.acme.example. 30 IN A 192.0.2.1"}},
		{"site: own nodes first", "_sip._udp.branch.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 10 75 5070 n3.survive.acme.example.",
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 20 100 5060 n1.survive.acme.example.",
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 20 50 5060 n2.survive.acme.example.",
		}, nil, []string{
			"n3.survive.acme.example. 30 IN A 192.0.2.3",
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
		}},
		{"site hq", "_sip._udp.hq.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sip._udp.hq.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
			"_sip._udp.hq.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
			"_sip._udp.hq.survive.acme.example. 30 IN SRV 20 75 5070 n3.survive.acme.example.",
		}, nil, []string{
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
			"n3.survive.acme.example. 30 IN A 192.0.2.3",
		}},
		{"site without its own tcp node: the others", "_sip._tcp.branch.survive.acme.example.", dns.TypeSRV, dns.RcodeSuccess, []string{
			"_sip._tcp.branch.survive.acme.example. 30 IN SRV 20 100 5060 n1.survive.acme.example.",
			"_sip._tcp.branch.survive.acme.example. 30 IN SRV 20 50 5060 n2.survive.acme.example.",
		}, nil, []string{
			"n1.survive.acme.example. 30 IN A 192.0.2.1",
			"n2.survive.acme.example. 30 IN A 192.0.2.2",
			"n2.survive.acme.example. 30 IN AAAA 2001:db8::2",
		}},
		{"naptr at the apex", "survive.acme.example.", dns.TypeNAPTR, dns.RcodeSuccess, []string{
			`survive.acme.example. 30 IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.survive.acme.example.`,
			`survive.acme.example. 30 IN NAPTR 10 20 "s" "SIP+D2T" "" _sip._tcp.survive.acme.example.`,
			`survive.acme.example. 30 IN NAPTR 10 30 "s" "SIP+D2U" "" _sip._udp.survive.acme.example.`,
		}, nil, []string{
			"_sips._tcp.survive.acme.example. 30 IN SRV 10 100 5061 n1.survive.acme.example.",
			"_sip._tcp.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
			"_sip._tcp.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
			"_sip._udp.survive.acme.example. 30 IN SRV 10 100 5060 n1.survive.acme.example.",
			"_sip._udp.survive.acme.example. 30 IN SRV 10 50 5060 n2.survive.acme.example.",
			"_sip._udp.survive.acme.example. 30 IN SRV 10 75 5070 n3.survive.acme.example.",
		}},
		{"naptr of a site", "branch.survive.acme.example.", dns.TypeNAPTR, dns.RcodeSuccess, []string{
			`branch.survive.acme.example. 30 IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.branch.survive.acme.example.`,
			`branch.survive.acme.example. 30 IN NAPTR 10 20 "s" "SIP+D2T" "" _sip._tcp.branch.survive.acme.example.`,
			`branch.survive.acme.example. 30 IN NAPTR 10 30 "s" "SIP+D2U" "" _sip._udp.branch.survive.acme.example.`,
		}, nil, []string{
			"_sips._tcp.branch.survive.acme.example. 30 IN SRV 20 100 5061 n1.survive.acme.example.",
			"_sip._tcp.branch.survive.acme.example. 30 IN SRV 20 100 5060 n1.survive.acme.example.",
			"_sip._tcp.branch.survive.acme.example. 30 IN SRV 20 50 5060 n2.survive.acme.example.",
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 10 75 5070 n3.survive.acme.example.",
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 20 100 5060 n1.survive.acme.example.",
			"_sip._udp.branch.survive.acme.example. 30 IN SRV 20 50 5060 n2.survive.acme.example.",
		}},
		{"a site has no address", "hq.survive.acme.example.", dns.TypeA, dns.RcodeSuccess, nil, []string{soa}, nil},
		{"unknown site", "_sip._udp.mars.survive.acme.example.", dns.TypeSRV, dns.RcodeNameError, nil, []string{soa}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := z.Lookup(tc.qname, tc.qtype)
			if a.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[a.Rcode], dns.RcodeToString[tc.rcode])
			}
			if wantAA := tc.rcode != dns.RcodeRefused; a.Authoritative != wantAA {
				t.Errorf("authoritative = %v, want %v", a.Authoritative, wantAA)
			}
			for _, sec := range []struct {
				name      string
				got, want []string
			}{{"answer", rrStrings(a.Answer), tc.answer}, {"authority", rrStrings(a.Ns), tc.ns}, {"additional", rrStrings(a.Extra), tc.extra}} {
				if !reflect.DeepEqual(sec.got, sec.want) {
					t.Errorf("%s:\n got %q\nwant %q", sec.name, sec.got, sec.want)
				}
			}
		})
	}
}

func TestBuildNames(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		qname   string
		qtype   uint16
		want    []string
	}{
		{"host name target, no address record",
			[]Member{{ID: "n1", Site: "hq", Host: "SIP1.Acme.Example", UDP: 5060, Healthy: true}},
			"_sip._udp.survive.acme.example.", dns.TypeSRV,
			[]string{"_sip._udp.survive.acme.example. 30 IN SRV 10 100 5060 sip1.acme.example."}},
		{"no address and no host: left out",
			[]Member{{ID: "n1", Site: "hq", UDP: 5060, Healthy: true}, {ID: "n2", Site: "hq", Host: "192.0.2.9", UDP: 5060, Healthy: true}},
			"_sip._udp.survive.acme.example.", dns.TypeSRV, nil},
		{"id that is no dns label: its host still serves",
			[]Member{{ID: "_n1", Site: "hq", Host: "sip1.acme.example", UDP: 5060, Healthy: true}},
			"_sip._udp.survive.acme.example.", dns.TypeSRV,
			[]string{"_sip._udp.survive.acme.example. 30 IN SRV 10 100 5060 sip1.acme.example."}},
		{"dotted node id: several labels",
			[]Member{{ID: "rack1.n1", Site: "hq", IPs: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.1")}, UDP: 5060, Healthy: true}},
			"rack1.n1.survive.acme.example.", dns.TypeA,
			[]string{"rack1.n1.survive.acme.example. 30 IN A 192.0.2.1"}},
		{"site name with a space: only the apex",
			[]Member{{ID: "n1", Site: "head office", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, UDP: 5060, Healthy: true}},
			"survive.acme.example.", dns.TypeNAPTR,
			[]string{`survive.acme.example. 30 IN NAPTR 10 30 "s" "SIP+D2U" "" _sip._udp.survive.acme.example.`}},
		{"site of dead nodes only: served by the others",
			[]Member{
				{ID: "n1", Site: "hq", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, UDP: 5060, Healthy: true},
				{ID: "n2", Site: "branch", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}, UDP: 5060},
			},
			"_sip._udp.branch.survive.acme.example.", dns.TypeSRV,
			[]string{"_sip._udp.branch.survive.acme.example. 30 IN SRV 20 100 5060 n1.survive.acme.example."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testZone(tc.members).Lookup(tc.qname, tc.qtype)
			if got := rrStrings(a.Answer); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("answer:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestWeights(t *testing.T) {
	m := func(id string, regs int) Member { return Member{ID: id, Registrations: regs} }
	tests := []struct {
		name    string
		members []Member
		want    map[string]uint16
	}{
		{"none", nil, map[string]uint16{}},
		{"all idle: equal", []Member{m("a", 0), m("b", 0)}, map[string]uint16{"a": 100, "b": 100}},
		{"equal load: equal", []Member{m("a", 40), m("b", 40)}, map[string]uint16{"a": 50, "b": 50}},
		{"idle gets twice the busiest", []Member{m("a", 1000), m("b", 0)}, map[string]uint16{"a": 50, "b": 100}},
		{"proportional to spare", []Member{m("a", 100), m("b", 50), m("c", 25)}, map[string]uint16{"a": 50, "b": 75, "c": 88}},
		{"one registration", []Member{m("a", 1)}, map[string]uint16{"a": 50}},
		{"negative counts as idle", []Member{m("a", -5), m("b", 10)}, map[string]uint16{"a": 100, "b": 50}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Weights(tc.members)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Weights() = %v, want %v", got, tc.want)
			}
			for id, w := range got {
				if w == 0 {
					t.Errorf("weight of %s is 0", id)
				}
			}
		})
	}
}
