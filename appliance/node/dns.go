package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/dnssrv"
	"github.com/outpost-voice/outpost/appliance/store"
)

// dnsEndpoint is the node's DNS server (dns.listen) and its sockets.
type dnsEndpoint struct {
	srv *dnssrv.Server
	udp net.PacketConn
	tcp net.Listener
}

// startDNS binds dns.listen over UDP and TCP (the same port) and prepares
// the server; serveDNS serves it. Nothing when dns.listen is empty.
// Port 53 needs CAP_NET_BIND_SERVICE, which the systemd unit grants.
func (n *Node) startDNS(reg prometheus.Registerer) error {
	c := n.cfg.DNS
	if c.Listen == "" {
		return nil
	}
	log := n.log.With("component", "dns")
	udp, tcp, err := listenUDPAndTCP(c.Listen)
	if err != nil {
		return fmt.Errorf("listen dns on %s: %w", c.Listen, err)
	}
	srv, err := dnssrv.New(dnssrv.Config{Domain: c.Domain, Self: n.cfg.NodeID, Log: log}, dnssrv.SourceFunc(n.dnsMembers))
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return err
	}
	reg.MustRegister(srv.Collectors()...)
	n.dns = &dnsEndpoint{srv: srv, udp: udp, tcp: tcp}
	if e := n.sip; e.udp != nil && e.tcp != nil && listenPort(e.udp.LocalAddr()) != listenPort(e.tcp.Addr()) {
		log.Warn("sip.udp and sip.tcp listen on different ports: _sip._tcp records are left out, since a member's record holds one SIP port",
			"udp", e.udp.LocalAddr().String(), "tcp", e.tcp.Addr().String())
	}
	log.Info("dns listening", "addr", udp.LocalAddr().String(), "domain", c.Domain)
	return nil
}

// serveDNS serves until ctx ends, then shuts the server down.
func (n *Node) serveDNS(ctx context.Context) {
	d := n.dns
	if d == nil {
		return
	}
	done := make(chan error, 1)
	go func() { done <- d.srv.Serve(d.udp, d.tcp) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		if err != nil {
			n.log.Error("dns server stopped", "component", "dns", "error", err)
		}
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(sctx); err != nil {
		n.log.Warn("dns server shutdown", "component", "dns", "error", err)
	}
	if err := <-done; err != nil && !errors.Is(err, dnssrv.ErrServerClosed) {
		n.log.Warn("dns server stopped", "component", "dns", "error", err)
	}
}

// dnsMembers is the DNS server's view of the cluster: the Raft voters, with
// the site and SIP address of their member records, health from this
// node's prober and registrations from the presence plane.
//
// A member record holds one SIP address (sip_addr: the advertised host and
// the UDP port, or the TCP port without UDP), so the transports are those
// of this node's own configuration, the cluster's nodes being configured
// alike: UDP and TCP on that port (RFC 3261 §18 has a server take both on
// one port; TCP is left out when this node's own UDP and TCP ports differ),
// TLS on this node's TLS port when it has TLS.
func (n *Node) dnsMembers(ctx context.Context) ([]dnssrv.Member, error) {
	recs, err := n.store.Reader().Members(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := n.store.Reader().BindingCountsByNode(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	byID := make(map[string]store.Member, len(recs))
	for _, r := range recs {
		byID[r.ID] = r
	}
	byID[n.cfg.NodeID] = n.self()
	ids := make([]string, 0, len(recs))
	if voters, err := n.cluster.Members(); err == nil {
		for _, v := range voters {
			ids = append(ids, v.ID)
		}
	} else {
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
	}
	e := n.sip
	udp, tcp := e.udp != nil, e.tcp != nil
	if udp && tcp && listenPort(e.udp.LocalAddr()) != listenPort(e.tcp.Addr()) {
		tcp = false
	}
	var tls uint16
	if e.tls != nil {
		tls = listenPort(e.tls.Addr())
	}
	out := make([]dnssrv.Member, 0, len(ids))
	for _, id := range ids {
		r, ok := byID[id]
		if !ok || r.SIPAddr == "" {
			continue
		}
		host, p, err := net.SplitHostPort(r.SIPAddr)
		if err != nil {
			host, p = r.SIPAddr, "5060"
		}
		sipPort, err := strconv.ParseUint(p, 10, 16)
		if err != nil || sipPort == 0 {
			continue
		}
		m := dnssrv.Member{ID: id, Site: r.Site, Healthy: n.health.Healthy(id), Registrations: counts[id], TLS: tls}
		if ip, err := netip.ParseAddr(host); err == nil {
			if ip.IsUnspecified() {
				continue
			}
			m.IPs = []netip.Addr{ip.WithZone("")}
		} else {
			m.Host = host
		}
		if udp {
			m.UDP = uint16(sipPort)
		}
		if tcp {
			m.TCP = uint16(sipPort)
		}
		out = append(out, m)
	}
	return out, nil
}

// listenUDPAndTCP binds addr over UDP and TCP on one port; with port 0,
// TCP takes the port UDP was given (tried a few times).
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(int(listenPort(udp.LocalAddr()))))
		tcp, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if p != "0" || try == 10 {
			return nil, nil, err
		}
	}
}

// listenPort is a bound address's port.
func listenPort(a net.Addr) uint16 {
	switch a := a.(type) {
	case *net.UDPAddr:
		return uint16(a.Port)
	case *net.TCPAddr:
		return uint16(a.Port)
	}
	return 0
}
