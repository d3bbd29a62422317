package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/outpost-voice/outpost/appliance/guard"
	"github.com/outpost-voice/outpost/sbc"
)

// sipGuardRefresh is how often the flood guard's allowlist follows the
// trunks (and their hosts' addresses) and the members.
const sipGuardRefresh = 5 * time.Second

// newSIPGuard builds the SIP listeners' flood and connection guard from
// the sip.* keys (docs/sip.md, "Floods and connections").
func (n *Node) newSIPGuard() (*guard.Guard, *guard.Allowlist, []netip.Prefix, error) {
	c := n.cfg.SIP
	exempt, err := guard.ParsePrefixes(c.FloodExempt)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sip.flood_exempt: %w", err)
	}
	allow := &guard.Allowlist{}
	allow.Set(exempt, nil)
	g := guard.New(guard.Config{
		Limiter:           guard.LimiterConfig{Rate: float64(c.FloodRate), BanFor: c.FloodBan.Duration, Allow: allow},
		MaxConns:          int(min(c.TCPMaxConnections, 1<<31-1)),
		MaxConnsPerSource: int(min(c.TCPMaxPerSource, 1<<31-1)),
		MessageTimeout:    c.TCPMessageTimeout.Duration,
		// A phone's calls reach it through the connection it registered
		// on: keep it for as long as a registration may last.
		IdleTimeout: c.MaxExpires.Duration + time.Minute,
		Log:         n.log.With("component", "sip_guard"),
	})
	return g, allow, exempt, nil
}

// sipGuardLoop keeps the guard's allowlist until ctx ends: the configured
// sip.flood_exempt, the addresses of the trunks' SBCs (an SBC carries a
// site's PSTN calls from one address) and the cluster's members (calls
// across nodes).
func (n *Node) sipGuardLoop(ctx context.Context) {
	e := n.sip
	every(ctx, sipGuardRefresh, func() bool {
		var addrs []netip.Addr
		trunks, err := n.store.Reader().Trunks(ctx)
		if err != nil {
			return false // keep the list as it is; next time
		}
		members, err := n.store.Reader().Members(ctx)
		if err != nil {
			return false
		}
		if n.trunks != nil {
			for _, t := range trunks {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				eps, err := n.trunks.resolver.Resolve(rctx, sbc.TargetOf(t))
				cancel()
				if err != nil {
					continue // the last answer stays cached in the resolver; next time
				}
				for _, ep := range eps {
					addrs = append(addrs, ep.IP)
				}
			}
		}
		for _, m := range members {
			for _, a := range []string{m.SIPAddr, m.RaftAddr, m.HTTPAddr} {
				if h, _, err := net.SplitHostPort(a); err == nil {
					if ip, err := netip.ParseAddr(h); err == nil {
						addrs = append(addrs, ip)
					}
				}
			}
		}
		e.allow.Set(e.exempt, addrs)
		return false
	})
}
