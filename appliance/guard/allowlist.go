package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Allowlist is the set of sources the guard never limits: fixed prefixes
// (the configuration's) and addresses that change (the trunks' SBCs, the
// cluster's members), replaced as a whole. Lookups take no lock. The zero
// value and nil allow nothing.
type Allowlist struct {
	set atomic.Pointer[allowSet]
}

type allowSet struct {
	prefixes []netip.Prefix
	addrs    map[netip.Addr]struct{}
}

// Set replaces the list: ip is allowed when a prefix contains it or it is
// one of addrs.
func (a *Allowlist) Set(prefixes []netip.Prefix, addrs []netip.Addr) {
	s := &allowSet{addrs: make(map[netip.Addr]struct{}, len(addrs))}
	for _, p := range prefixes {
		if p.Addr().Is4In6() { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		s.prefixes = append(s.prefixes, p.Masked())
	}
	for _, ip := range addrs {
		s.addrs[ip.Unmap().WithZone("")] = struct{}{}
	}
	a.set.Store(s)
}

// Contains reports whether ip is allowed.
func (a *Allowlist) Contains(ip netip.Addr) bool {
	if a == nil {
		return false
	}
	s := a.set.Load()
	if s == nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if _, ok := s.addrs[ip]; ok {
		return true
	}
	for _, p := range s.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads addresses ("192.0.2.7", "2001:db8::1") and prefixes
// ("10.0.0.0/8", "2001:db8::/48"); an address is a prefix of its own
// length.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a prefix such as 10.0.0.0/8", s)
			}
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a prefix such as 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
