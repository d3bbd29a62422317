package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/guard"
	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/config"
	"github.com/outpost-voice/outpost/internal/certfile"
)

// sipEndpoint is the node's SIP side: the listeners it bound, the sipgo
// user agent and server, and the registrar behind them.
type sipEndpoint struct {
	ua  *sipgo.UserAgent
	srv *sipgo.Server
	udp net.PacketConn
	tcp net.Listener
	tls net.Listener
	// trunkTLS hands sipgo the TLS connections opened toward SBCs.
	trunkTLS *trunkTLS

	loc   *registrar.Location
	reg   *registrar.Registrar
	calls *calls.B2BUA
	// client sends the node's requests; contact is its Contact.
	client  *sipgo.Client
	contact sip.ContactHeader

	// guard limits floods and connections on the listeners (sipguard.go);
	// allow is its allowlist, exempt the sip.flood_exempt part of it.
	guard  *guard.Guard
	allow  *guard.Allowlist
	exempt []netip.Prefix

	closeOnce sync.Once
}

func init() {
	// sipgo refuses to send a UDP message over 1,300 bytes. A response goes
	// back over the transport its request came on (RFC 3261 §18.2.2), large
	// or not (RFC 4475 §3.1.1.7's long request has a 2.8 kB answer): let IP
	// fragment it.
	sip.UDPMTUSize = 64 << 10
}

// udpBuffer is the SIP UDP socket's receive and send buffer: a burst of
// REGISTERs (a whole site failing over at once) overflows the default
// ~200 kB, and every datagram lost costs a phone a retransmission timer.
const udpBuffer = 4 << 20

// growUDPBuffers sets the socket buffers, past net.core.rmem_max when the
// process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
func growUDPBuffers(pc net.PacketConn, size int) error {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range [][2]int{{syscall.SO_RCVBUFFORCE, syscall.SO_RCVBUF}, {syscall.SO_SNDBUFFORCE, syscall.SO_SNDBUF}} {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt[0], size) != nil {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt[1], size); e != nil {
					serr = e
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// digestSecret keys the nonces: every node of a cluster shares the admin
// token, so a nonce minted on one verifies on the next node a phone reaches.
func digestSecret(token string) []byte {
	sum := sha256.Sum256([]byte("outpost sip digest nonce v1\x00" + token))
	return sum[:]
}

// startSIP binds the configured SIP listeners and wires the registrar. The
// listeners are served by serveSIP once the node runs.
func (n *Node) startSIP() error {
	c := n.cfg.SIP
	e := &sipEndpoint{}
	n.sip = e
	var err error
	// The flood and connection guard (appliance/guard): a per-source rate
	// limit and ban on every transport (the UDP read filter below), caps
	// and timeouts on the TCP and TLS connections (Listen).
	if e.guard, e.allow, e.exempt, err = n.newSIPGuard(); err != nil {
		return err
	}
	if c.UDP != "" {
		if e.udp, err = net.ListenPacket("udp", c.UDP); err != nil {
			return fmt.Errorf("listen sip udp on %s: %w", c.UDP, err)
		}
		if err := growUDPBuffers(e.udp, udpBuffer); err != nil {
			n.log.Warn("sip udp socket buffers stay at the system default", "want_bytes", udpBuffer, "error", err)
		}
	}
	if c.TCP != "" {
		if e.tcp, err = net.Listen("tcp", c.TCP); err != nil {
			return fmt.Errorf("listen sip tcp on %s: %w", c.TCP, err)
		}
		e.tcp = e.guard.Listen(e.tcp)
	}
	if c.TLSEnabled() {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("sip tls certificate: %w", err)
		}
		conf := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: certfile.ServerSuites(c.TLSCBCCiphers),
			Certificates: []tls.Certificate{cert}}
		raw, err := net.Listen("tcp", c.TLS)
		if err != nil {
			return fmt.Errorf("listen sip tls on %s: %w", c.TLS, err)
		}
		// The guard wraps the TLS listener, so it sees SIP, not records;
		// the handshake happens at the first read, under its deadline.
		e.tls = e.guard.Listen(tls.NewListener(raw, conf))
	}
	bound := ""
	switch {
	case e.udp != nil:
		bound = e.udp.LocalAddr().String()
	case e.tcp != nil:
		bound = e.tcp.Addr().String()
	}
	n.sipAdvertise = config.Advertised(c.Advertise, bound, fallbackHost(n.cfg))
	host, _, err := net.SplitHostPort(n.sipAdvertise)
	if err != nil {
		host = n.sipAdvertise
	}
	log := n.log.With("component", "sip")
	e.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("Outpost"),
		sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(log),
			// Floods first (every datagram counts), then scanners.
			sip.WithTransportLayerReadFilter(e.guard.ReadFilter(registrar.DropScanners))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log)),
		sipgo.WithUserAgenTLSConfig(uaTLSConfig()),
	)
	if err != nil {
		return fmt.Errorf("sip user agent: %w", err)
	}
	if e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(log)); err != nil {
		return fmt.Errorf("sip server: %w", err)
	}
	st := n.store
	n.bindingSharer = newBindingSharer(st)
	persist := func(bs []store.Binding) error {
		if err := st.PutLocalBindings(bs); err != nil {
			return err
		}
		n.bindingSharer.persisted(bs)
		n.bindingsPersisted(bs) // message waiting (mwi.go)
		return nil
	}
	e.loc = registrar.NewLocation(persist, n.log.With("component", "location"))
	rows, err := st.Reader().LocalBindings(context.Background())
	if err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	e.loc.Load(rows, time.Now())
	digest := registrar.NewDigest(digestSecret(n.token), 5*time.Minute, time.Now)
	if err := digest.SetAlgorithms(c.DigestAlgorithms); err != nil {
		return fmt.Errorf("sip.digest_algorithms: %w", err)
	}
	throttle := registrar.NewThrottle(20, time.Minute, time.Now)
	// A source the throttle blocks (more than 20 failed authentications in a
	// minute) is banned by the guard for sip.flood_ban: a password guesser
	// is locked out and hears nothing more, instead of resuming a minute on.
	throttle.SetOnBlock(func(ip netip.Addr) { e.guard.Limiter().Ban(ip, "too many failed authentications") })
	dir := registrar.CachedDirectory(st.Reader(), n.cluster.FSM().ConfigGeneration)
	client, err := sipgo.NewClient(e.ua, sipgo.WithClientHostname(host))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	e.reg = registrar.New(dir, digest, throttle, e.loc, registrar.Options{
		NodeID:               n.cfg.NodeID,
		MinExpires:           n.cfg.SIP.MinExpires.Duration,
		MaxExpires:           n.cfg.SIP.MaxExpires.Duration,
		DefaultExpires:       n.cfg.SIP.MaxExpires.Duration,
		SurvivabilityExpires: n.cfg.SIP.SurvivabilityExpires.Duration,
		SiteCapacity:         int(min(n.cfg.SIP.SiteCapacity, 1<<31-1)),
		FailbackExpires:      n.cfg.SIP.FailbackExpires.Duration,
		Failback:             n.cfg.SIP.Failback,
		FailbackRetryAfter:   n.cfg.SIP.FailbackRetryAfter.Duration,
		// e.calls is set below, before any request is served.
		InCall: func(username string) bool { return e.calls.OnCallUser(username) },
		Send: func(ctx context.Context, req *sip.Request) (*sip.Response, error) {
			return client.Do(ctx, req)
		},
		LocalHost: n.isLocalHost,
	}, n.log.With("component", "registrar"))
	e.srv.OnRegister(e.reg.OnRegister)
	e.srv.OnOptions(e.reg.OnOptions)

	port := 5060
	if _, p, err := net.SplitHostPort(n.sipAdvertise); err == nil {
		port, _ = strconv.Atoi(p)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: host, Port: port}}
	e.client, e.contact = client, contact
	hop := sha256.Sum256([]byte("outpost sip node hop v1\x00" + n.token))
	n.journal = newJournal(st, n.log.With("component", "journal"))
	e.calls = calls.NewB2BUA(client, contact, e.reg, liveDirectory{st.Reader(), e.loc}, n.journal, n.cfg.NodeID, hop[:], n.log.With("component", "calls"))
	cc := n.cfg.Calls
	e.calls.SetPark(calls.ParkConfig{Code: cc.ParkCode, RetrieveCode: cc.ParkRetrieveCode, Slots: int(cc.ParkSlots),
		Timeout: cc.ParkTimeout.Duration, RingFor: cc.ParkRingFor.Duration, MaxRingbacks: int(cc.ParkRingbacks)})
	e.srv.OnInvite(e.calls.OnInvite)
	e.srv.OnAck(e.calls.OnAck)
	e.srv.OnBye(e.calls.OnBye)
	e.srv.OnUpdate(e.calls.OnUpdate)
	e.srv.OnRefer(e.calls.OnRefer)
	e.srv.OnInfo(e.calls.OnInfo)
	return n.startTrunks(client, host)
}

// serveSIP serves every bound listener until they are closed.
func (n *Node) serveSIP(ctx context.Context) {
	e := n.sip
	done := make(chan struct{}, 3)
	serve := func(f func() error, what string) {
		go func() {
			defer func() { done <- struct{}{} }()
			if err := f(); err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				n.log.Error("sip listener stopped", "transport", what, "error", err)
			}
		}()
	}
	count := 0
	if e.udp != nil {
		count++
		serve(func() error { return e.srv.ServeUDP(e.udp) }, "udp")
	}
	if e.tcp != nil {
		count++
		serve(func() error { return e.srv.ServeTCP(e.tcp) }, "tcp")
	}
	if e.tls != nil {
		count++
		serve(func() error { return e.srv.ServeTLS(e.tls) }, "tls")
	}
	if e.trunkTLS != nil {
		count++
		serve(func() error { return e.srv.ServeTLS(e.trunkTLS) }, "tls to sbcs")
	}
	located := make(chan struct{})
	go func() { defer close(located); e.loc.Run(ctx) }()
	failback := make(chan struct{})
	go func() { defer close(failback); e.reg.Run(ctx) }() // sip.failback "notify"
	guarded := make(chan struct{})
	go func() { defer close(guarded); n.sipGuardLoop(ctx) }() // the flood guard's allowlist
	<-ctx.Done()
	<-failback // its NOTIFYs end with ctx, before the user agent closes
	e.close()
	for range count {
		<-done
	}
	<-located // the last bindings are committed before the store closes
	<-guarded // it reads the store too
}

func (e *sipEndpoint) close() {
	if e == nil {
		return
	}
	e.closeOnce.Do(func() {
		for _, c := range []io.Closer{e.udp, e.tcp, e.tls} {
			if c != nil {
				_ = c.Close()
			}
		}
		if e.trunkTLS != nil {
			_ = e.trunkTLS.Close()
		}
		if e.ua != nil {
			_ = e.ua.Close()
		}
	})
}

// sipAddrs lists the bound SIP addresses, for logs and the member record.
func (e *sipEndpoint) addrs() []string {
	var out []string
	if e.udp != nil {
		out = append(out, "udp/"+e.udp.LocalAddr().String())
	}
	if e.tcp != nil {
		out = append(out, "tcp/"+e.tcp.Addr().String())
	}
	if e.tls != nil {
		out = append(out, "tls/"+e.tls.Addr().String())
	}
	return out
}

// isLocalHost reports whether host names this node (an address of its own)
// or another member, so an AOR may use it instead of the realm.
func (n *Node) isLocalHost(host string) bool {
	host = strings.Trim(host, "[]")
	// The DNS zone the nodes answer for phones (dns.domain) and its
	// per-site names: phones pointed at the SRV records register there.
	if d := strings.TrimSuffix(strings.ToLower(n.cfg.DNS.Domain), "."); d != "" {
		h := strings.TrimSuffix(strings.ToLower(host), ".")
		if h == d || strings.HasSuffix(h, "."+d) && !strings.Contains(strings.TrimSuffix(h, "."+d), ".") {
			return true
		}
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
					return true
				}
			}
		}
	}
	members, err := n.store.Reader().Members(context.Background())
	if err != nil {
		return false
	}
	for _, m := range members {
		for _, a := range []string{m.SIPAddr, m.RaftAddr, m.HTTPAddr} {
			if h, _, err := net.SplitHostPort(a); err == nil && strings.EqualFold(h, host) {
				return true
			}
		}
	}
	return false
}
