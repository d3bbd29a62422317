package dnssrv

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Member is one cluster member as the DNS server sees it.
type Member struct {
	ID   string // node id: its address records live at <id>.<domain>
	Site string // the site whose phones it serves first
	// IPs are the addresses answered for <id>.<domain>, which SRV records
	// then name as their target.
	IPs []netip.Addr
	// Host is the SRV target when IPs is empty: the host name the node
	// advertises for SIP, resolved by the phone elsewhere.
	Host string
	// UDP, TCP and TLS are the node's SIP ports; 0: not offered.
	UDP, TCP, TLS uint16
	// Healthy: the node answers its probes. Only healthy members appear.
	Healthy bool
	// Registrations is how many live registrations the node holds.
	Registrations int
}

// ZoneConfig is what a zone needs besides the members.
type ZoneConfig struct {
	Domain string        // the apex, e.g. survive.acme.example
	Self   string        // the answering node's id: the SOA's primary server
	TTL    time.Duration // of every record, and of negative answers
	Serial uint32        // the SOA serial
}

// SRV priorities: a site's own nodes first, the others after.
const (
	PriorityOwnSite = 10
	PriorityOther   = 20
)

// MaxWeight is the SRV weight of a node holding no registrations.
const MaxWeight = 100

// SOA timers. Nothing transfers this zone (every node builds its own), so
// they only matter to tools that read them; the negative TTL is the TTL.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

// service is one SIP transport as RFC 3263 names it: its SRV label and its
// NAPTR service field. NAPTR preference follows the slice order: TLS first.
type service struct {
	label string
	naptr string
	port  func(Member) uint16
}

var services = []service{
	{"_sips._tcp", "SIPS+D2T", func(m Member) uint16 { return m.TLS }},
	{"_sip._tcp", "SIP+D2T", func(m Member) uint16 { return m.TCP }},
	{"_sip._udp", "SIP+D2U", func(m Member) uint16 { return m.UDP }},
}

// Zone is the records of one view of the cluster, read-only once built:
// Lookup may be called from many goroutines.
type Zone struct {
	apex  string
	soa   *dns.SOA
	rrs   map[string]map[uint16][]dns.RR // owner (canonical) → type → RRset
	names map[string]bool                // every owner, and every empty non-terminal up to the apex
}

// Build turns members into the zone (pure: no clock, no I/O):
//
//   - SOA and NS at the apex; NS names every healthy member with an address;
//   - A/AAAA at <id>.<domain> for each healthy member with addresses;
//   - _sip._udp, _sip._tcp and _sips._tcp SRV at the apex (every healthy
//     member offering the transport, priority 10) and at <site>.<domain>
//     for each members' site (that site's members at priority 10, the
//     others at 20); weights from Weights;
//   - NAPTR (RFC 3263) at the apex and at each <site>.<domain>, one per
//     transport that has SRV records there, TLS first.
//
// Members whose id or site is not a usable DNS label are left out of the
// names they would own.
func Build(c ZoneConfig, members []Member) *Zone {
	apex := dns.CanonicalName(c.Domain)
	ttl := uint32(c.TTL / time.Second)
	z := &Zone{apex: apex, rrs: map[string]map[uint16][]dns.RR{}, names: map[string]bool{}}
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	mname := "ns." + apex
	if n, ok := z.child(c.Self); ok {
		mname = n
	}
	z.soa = &dns.SOA{Hdr: hdr(apex, dns.TypeSOA), Ns: mname, Mbox: "hostmaster." + apex,
		Serial: c.Serial, Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: ttl}
	z.add(z.soa)

	var healthy []Member
	for _, m := range members {
		if m.Healthy {
			healthy = append(healthy, m)
		}
	}
	slices.SortFunc(healthy, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	weights := Weights(healthy)
	targets := map[string]string{}
	for _, m := range healthy {
		name, ok := z.child(m.ID)
		if !ok || len(m.IPs) == 0 {
			if h := hostTarget(m.Host); h != "" {
				targets[m.ID] = h
			}
			continue
		}
		targets[m.ID] = name
		z.add(&dns.NS{Hdr: hdr(apex, dns.TypeNS), Ns: name})
		for _, ip := range m.IPs {
			ip = ip.Unmap()
			switch {
			case ip.Is4():
				z.add(&dns.A{Hdr: hdr(name, dns.TypeA), A: ip.AsSlice()})
			case ip.Is6():
				z.add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()})
			}
		}
	}

	z.addServices(hdr, apex, "", healthy, weights, targets)
	var sites []string
	for _, m := range members {
		if m.Site != "" && !slices.Contains(sites, m.Site) {
			sites = append(sites, m.Site)
		}
	}
	slices.Sort(sites)
	for _, site := range sites {
		if owner, ok := z.child(site); ok {
			z.addServices(hdr, owner, site, healthy, weights, targets)
		}
	}
	return z
}

// addServices adds the SRV records of every transport under owner and the
// NAPTR records pointing at them. site "" gives every member priority 10.
func (z *Zone) addServices(hdr func(string, uint16) dns.RR_Header, owner, site string,
	ms []Member, weights map[string]uint16, targets map[string]string) {
	var naptrs []dns.RR
	for i, s := range services {
		name := s.label + "." + owner
		var srvs []*dns.SRV
		for _, m := range ms {
			port, target := s.port(m), targets[m.ID]
			if port == 0 || target == "" {
				continue
			}
			prio := uint16(PriorityOwnSite)
			if site != "" && !strings.EqualFold(m.Site, site) {
				prio = PriorityOther
			}
			srvs = append(srvs, &dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: prio,
				Weight: weights[m.ID], Port: port, Target: target})
		}
		if len(srvs) == 0 {
			continue
		}
		slices.SortStableFunc(srvs, func(a, b *dns.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
		for _, r := range srvs {
			z.add(r)
		}
		naptrs = append(naptrs, &dns.NAPTR{Hdr: hdr(owner, dns.TypeNAPTR), Order: 10,
			Preference: uint16(10 * (i + 1)), Flags: "s", Service: s.naptr, Replacement: name})
	}
	for _, r := range naptrs {
		z.add(r)
	}
}

// Weights gives each member an SRV weight proportional to its spare
// capacity, relative to the busiest member listed: with R the most
// registrations any member holds and C = 2R,
//
//	weight = round(MaxWeight × (C − registrations) / C)
//
// so equal loads get equal weights (MaxWeight when all are idle) and the
// busiest member gets half the share of an idle one, never 0: a member
// that just restarted takes more of the phones looking for a node, not all
// of them at once.
func Weights(ms []Member) map[string]uint16 {
	most := 0
	for _, m := range ms {
		most = max(most, m.Registrations)
	}
	out := make(map[string]uint16, len(ms))
	for _, m := range ms {
		w := MaxWeight
		if most > 0 {
			c := 2 * float64(most)
			spare := c - float64(min(max(m.Registrations, 0), most))
			w = max(1, int(float64(MaxWeight)*spare/c+0.5))
		}
		out[m.ID] = uint16(w)
	}
	return out
}

// child is label.<apex> when label is usable as DNS labels of a name
// under the apex: letters, digits, hyphens and underscores (dots make
// several labels), none starting with an underscore, which is the
// service labels' namespace.
func (z *Zone) child(label string) (string, bool) {
	if label == "" || strings.HasSuffix(label, ".") {
		return "", false
	}
	for l := range strings.SplitSeq(label, ".") {
		if l == "" || len(l) > 63 || l[0] == '_' || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			b := l[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return "", false
			}
		}
	}
	name := strings.ToLower(label) + "." + z.apex
	if len(name) > 254 {
		return "", false
	}
	return name, true
}

// hostTarget is host as an SRV target (fully qualified), or "" when it is
// not a usable name.
func hostTarget(host string) string {
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	name := dns.CanonicalName(host)
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		return ""
	}
	return name
}

// add files records under their owner and marks the owner and its
// ancestors up to the apex as existing names.
func (z *Zone) add(rrs ...dns.RR) {
	for _, r := range rrs {
		h := r.Header()
		byType := z.rrs[h.Name]
		if byType == nil {
			byType = map[uint16][]dns.RR{}
			z.rrs[h.Name] = byType
		}
		byType[h.Rrtype] = append(byType[h.Rrtype], r)
		for name := h.Name; !z.names[name]; {
			z.names[name] = true
			if name == z.apex {
				break
			}
			i, _ := dns.NextLabel(name, 0)
			name = name[i:]
		}
	}
}

// Answer is a lookup's outcome, ready to become a response.
type Answer struct {
	Rcode         int
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
}

// Lookup answers one question: REFUSED outside the zone; NXDOMAIN with the
// SOA for a name the zone does not hold; NODATA (no answer, the SOA) for a
// name without records of qtype; ANY gets one HINFO (RFC 8482). SRV and NS
// answers carry the targets' addresses in Extra, NAPTR answers the SRV
// records they point at.
func (z *Zone) Lookup(qname string, qtype uint16) Answer {
	name := dns.CanonicalName(qname)
	if !dns.IsSubDomain(z.apex, name) {
		return Answer{Rcode: dns.RcodeRefused}
	}
	a := Answer{Authoritative: true}
	if !z.names[name] {
		a.Rcode = dns.RcodeNameError
		a.Ns = []dns.RR{z.soa}
		return a
	}
	if qtype == dns.TypeANY {
		a.Answer = []dns.RR{&dns.HINFO{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeHINFO,
			Class: dns.ClassINET, Ttl: z.soa.Hdr.Ttl}, Cpu: "RFC8482"}}
		return a
	}
	rrs := z.rrs[name][qtype]
	if len(rrs) == 0 {
		a.Ns = []dns.RR{z.soa}
		return a
	}
	a.Answer = rrs
	for _, r := range rrs {
		switch r := r.(type) {
		case *dns.SRV:
			a.Extra = append(a.Extra, z.addresses(r.Target)...)
		case *dns.NS:
			a.Extra = append(a.Extra, z.addresses(r.Ns)...)
		case *dns.NAPTR:
			a.Extra = append(a.Extra, z.rrs[r.Replacement][dns.TypeSRV]...)
		}
	}
	return a
}

func (z *Zone) addresses(name string) []dns.RR {
	byType := z.rrs[name]
	return append(slices.Clip(byType[dns.TypeA]), byType[dns.TypeAAAA]...)
}

// Apex is the zone's origin, fully qualified, in lower case.
func (z *Zone) Apex() string { return z.apex }
