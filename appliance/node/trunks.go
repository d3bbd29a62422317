package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/media/conference"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/ivr"
	"github.com/outpost-voice/outpost/appliance/media/player"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/sbc"
)

// trunks is the node's side of the PSTN: the media relay trunk calls are
// anchored in, the trunks' health (OPTIONS), their addresses (RFC 3263),
// and the ELINs held for emergency callers (shared like call records).
type trunks struct {
	relay    *media.Relay
	player   *player.Player // paces the IVRs' prompts
	prober   *sbc.Prober
	resolver *sbc.Resolver
	elins    *sharer[store.ELINMapping]
}

// startTrunks builds the relay on the node's SIP address and gives the
// B2BUA its way to the PSTN.
func (n *Node) startTrunks(client *sipgo.Client, host string) error {
	log := n.log // package sbc names its component
	ip, err := netip.ParseAddr(host)
	if err != nil {
		addrs, rerr := net.LookupHost(host)
		if rerr != nil || len(addrs) == 0 {
			return fmt.Errorf("media relay: the SIP host %q is not an address and does not resolve: %v", host, rerr)
		}
		if ip, err = netip.ParseAddr(addrs[0]); err != nil {
			return fmt.Errorf("media relay: %w", err)
		}
	}
	lo, hi, err := n.cfg.Media.PortRange()
	if err != nil {
		return fmt.Errorf("media.rtp_ports: %w", err)
	}
	if lo%2 != 0 {
		lo++ // RTP even, RTCP odd
	}
	relay, err := media.New(media.Config{IP: ip, PortMin: lo, PortMax: hi, InactivityTimeout: n.cfg.Media.Timeout.Duration,
		SocketBuffer: 1 << 20, Logger: n.log})
	if err != nil {
		return err
	}
	resolver, err := sbc.NewResolver(sbc.ResolverOptions{Log: log})
	if err != nil {
		_ = relay.Close()
		return fmt.Errorf("trunk resolver: %w", err)
	}
	dialer, err := sbc.NewTLSDialer(sbc.TLSOptions{CertFile: n.cfg.SBC.TLSCert, KeyFile: n.cfg.SBC.TLSKey,
		CAFile: n.cfg.SBC.TLSCA, Dir: n.cfg.SBC.TLSDir, Log: log})
	if err != nil {
		_ = relay.Close()
		return err
	}
	n.sip.trunkTLS = newTrunkTLS(dialer, n.sip.ua, tlsListenAddr(n.sip.tls, host))
	pl := player.New(player.Config{Logger: n.log})
	eps, err := ivr.New(ivr.Config{IP: ip, Player: pl, Prompts: n.prompts.Library(), Log: n.log})
	if err != nil {
		pl.Close()
		_ = relay.Close()
		return err
	}
	n.sip.calls.SetIVR(ivrEndpoints{eps})
	bridges, err := conference.New(conference.Config{IP: ip, Prompts: n.prompts.Library(), Log: n.log})
	if err != nil {
		pl.Close()
		_ = relay.Close()
		return fmt.Errorf("conference bridge: %w", err)
	}
	n.sip.calls.SetMixer(mixer{bridges, ip})
	tlsPort := 0
	if n.sip.tls != nil {
		tlsPort = n.sip.tls.Addr().(*net.TCPAddr).Port
	}
	prober, err := sbc.NewProber(sbc.ProberOptions{Ping: pingTrunk(client, resolver, n.sip.trunkTLS, host), Log: log})
	if err != nil {
		_ = relay.Close()
		return fmt.Errorf("trunk prober: %w", err)
	}
	st := n.store
	t := &trunks{relay: relay, player: pl, prober: prober, resolver: resolver, elins: &sharer[store.ELINMapping]{
		what:    "ELINs",
		id:      func(m store.ELINMapping) string { return m.ID },
		version: func(m store.ELINMapping) time.Time { return m.UpdatedAt },
		since:   st.Reader().LocalELINMappingsSince,
		encode:  cluster.EncodeELINs,
		catchUp: true, shared: map[string]time.Time{},
	}}
	n.trunks = t
	n.sip.calls.SetTrunks(&calls.Trunks{
		Health: prober, Resolver: resolver,
		Channels: sbc.NewChannels(), UserCalls: sbc.NewChannels(),
		ELINs:   sbc.NewELINs(nodeELINs{st: st, sharer: t.elins}, log),
		Rand:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5bc)),
		Anchor:  relayAnchor{relay},
		Host:    host,
		TLS:     n.sip.trunkTLS,
		TLSPort: tlsPort,
	})
	return nil
}

// trunkLoop probes the trunks of the configuration served, following its
// changes, and shares the ELINs this node assigns, until ctx ends.
func (n *Node) trunkLoop(ctx context.Context) {
	t := n.trunks
	go t.elins.run(ctx, n.log, n.propose)
	gen := ^uint64(0)
	go every(ctx, time.Second, func() bool {
		if g := n.cluster.FSM().ConfigGeneration(); g != gen {
			list, err := n.store.Reader().Trunks(ctx)
			if err == nil {
				t.prober.SetTrunks(list)
				gen = g
			}
		}
		return false
	})
	if err := t.prober.Run(ctx); err != nil && ctx.Err() == nil {
		n.log.Error("trunk prober stopped", "component", "sbc", "error", err)
	}
	_ = t.relay.Close()
	_ = t.player.Close()
}

// collectors are the relay's metrics: sessions, packets each way (a is
// the phone's side, b the trunk's), drops by reason, inactivity timeouts.
func (t *trunks) collectors() []prometheus.Collector {
	stat := func(f func(media.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(t.relay.Stats())) }
	}
	counter := func(name, help string, labels prometheus.Labels, f func(media.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "media",
			Name: name, Help: help, ConstLabels: labels}, stat(f))
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "outpost", Subsystem: "media", Name: "sessions",
			Help: "Relayed calls (trunk calls) in progress on this node."},
			func() float64 { return float64(t.relay.Stats().Sessions) }),
		counter("rtp_packets_total", "RTP packets relayed, by direction (a: the phone's side, b: the trunk's).",
			prometheus.Labels{"direction": "a_to_b"}, func(s media.Stats) uint64 { return s.AtoB.RTPPackets }),
		counter("rtp_packets_total", "RTP packets relayed, by direction (a: the phone's side, b: the trunk's).",
			prometheus.Labels{"direction": "b_to_a"}, func(s media.Stats) uint64 { return s.BtoA.RTPPackets }),
		counter("rtcp_packets_total", "RTCP packets relayed, by direction.",
			prometheus.Labels{"direction": "a_to_b"}, func(s media.Stats) uint64 { return s.AtoB.RTCPPackets }),
		counter("rtcp_packets_total", "RTCP packets relayed, by direction.",
			prometheus.Labels{"direction": "b_to_a"}, func(s media.Stats) uint64 { return s.BtoA.RTCPPackets }),
		counter("dropped_packets_total", "Packets the relay dropped, by reason.",
			prometheus.Labels{"reason": "invalid"}, func(s media.Stats) uint64 { return s.Dropped.Invalid }),
		counter("dropped_packets_total", "Packets the relay dropped, by reason.",
			prometheus.Labels{"reason": "source"}, func(s media.Stats) uint64 { return s.Dropped.Source }),
		counter("timeouts_total", "Relayed calls ended because media stopped both ways.", nil,
			func(s media.Stats) uint64 { return s.Timeouts }),
	}
}

// pingTrunk sends one OPTIONS to a trunk's first address and times it.
func pingTrunk(client *sipgo.Client, resolver *sbc.Resolver, tlsConn *trunkTLS, host string) sbc.Ping {
	return func(ctx context.Context, target sbc.Target) (time.Duration, error) {
		eps, err := resolver.Resolve(ctx, target)
		if err != nil {
			return 0, err
		}
		ep := eps[0]
		if ep.Transport == "tls" {
			if err := tlsConn.Connect(ctx, target, ep); err != nil {
				return 0, fmt.Errorf("OPTIONS to %s: %w", ep.Addr(), err)
			}
		}
		uri := sip.Uri{Scheme: "sip", Host: ep.IP.String(), Port: ep.Port}
		req := sip.NewRequest(sip.OPTIONS, uri)
		req.SetDestination(ep.Addr())
		req.SetTransport(strings.ToUpper(ep.Transport))
		params := sip.NewParams()
		params.Add("tag", sip.GenerateTagN(12))
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: host}, Params: params})
		start := time.Now()
		res, err := client.Do(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("OPTIONS to %s: %w", ep.Addr(), err)
		}
		return time.Since(start), sbc.OptionsError(res.StatusCode)
	}
}

// trunkStatus is the trunks part of the status.
func (n *Node) trunkStatus() []web.TrunkStatus {
	if n.trunks == nil {
		return nil
	}
	var out []web.TrunkStatus
	for _, t := range n.trunks.prober.Status() {
		out = append(out, web.TrunkStatus{ID: t.ID, Healthy: t.Healthy, State: string(t.State),
			LastOptionsAt: t.LastOptionsAt, RTTMs: t.RTTMs, LastError: t.LastError})
	}
	return out
}

// nodeELINs keeps ELIN mappings on the presence plane: written here at
// once, shared through Raft, read from both.
type nodeELINs struct {
	st     *store.Store
	sharer *sharer[store.ELINMapping]
}

func (e nodeELINs) GetELINs(ctx context.Context, elins []string) ([]sbc.ELINMapping, error) {
	ms, err := e.st.Reader().ELINMappings(ctx, elins)
	if err != nil {
		return nil, err
	}
	out := make([]sbc.ELINMapping, len(ms))
	for i, m := range ms {
		out[i] = sbc.ELINMapping(m)
	}
	return out, nil
}

func (e nodeELINs) PutELIN(_ context.Context, m sbc.ELINMapping) error {
	rows := []store.ELINMapping{store.ELINMapping(m)}
	if err := e.st.PutLocalELINMappings(rows); err != nil {
		return err
	}
	e.sharer.persisted(rows)
	return nil
}

// relayAnchor is the media relay as the B2BUA sees it.
// ivrEndpoints gives the B2BUA the node's IVR endpoints.
type ivrEndpoints struct{ e *ivr.Endpoints }

func (i ivrEndpoints) Open(callID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (calls.IVRLeg, error) {
	return i.e.Open(callID, peer, codec, dtmfPT)
}

// mixer gives the B2BUA the node's conference bridge.
type mixer struct {
	b  *conference.Bridges
	ip netip.Addr // the media IP the bridge binds
}

func (m mixer) Open(id string) (calls.Room, error) {
	c, err := m.b.Open(id)
	if err != nil {
		return nil, err
	}
	return room{c, m.ip}, nil
}

type room struct {
	c  *conference.Conference
	ip netip.Addr
}

// Join adds a participant. An invitee is offered its leg before it
// answers, so its peer is not known yet: the bridge's socket, which is
// connected to its peer, is pointed at the discard port of the media
// address's loopback until SetPeer (nothing comes from there; what the
// bridge sends there is dropped).
func (r room) Join(partID string, peer netip.AddrPort, codec g711.Codec, dtmfPT uint8) (calls.RoomLeg, error) {
	if !peer.IsValid() {
		lo := netip.IPv6Loopback()
		if r.ip.Is4() {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		peer = netip.AddrPortFrom(lo, 9)
	}
	p, err := r.c.Join(partID, peer, codec, dtmfPT)
	if err != nil {
		return nil, err
	}
	return roomLeg{p}, nil
}

func (r room) Close() { r.c.Close() }

type roomLeg struct{ *conference.Participant }

func (l roomLeg) SetPeer(addr netip.AddrPort) { _ = l.Participant.SetPeer(addr) }

type relayAnchor struct{ r *media.Relay }

func (a relayAnchor) Allocate(callID string, onTimeout func()) (calls.MediaSession, error) {
	s, err := a.r.Allocate(callID, func(*media.Session) { onTimeout() })
	if err != nil {
		return nil, err
	}
	return relaySession{s}, nil
}

type relaySession struct{ s *media.Session }

func (r relaySession) side(i int) *media.Side {
	if i == 0 {
		return r.s.A()
	}
	return r.s.B()
}

func (r relaySession) Local(side int) netip.AddrPort { return r.side(side).LocalRTP() }

func (r relaySession) SetRemote(side int, addr netip.AddrPort) {
	r.side(side).SetRemote(addr, netip.AddrPortFrom(addr.Addr(), addr.Port()+1))
}

// SetSRTP keys a side with SDES keys, or (zero keys) makes it plain RTP.
func (r relaySession) SetSRTP(side int, local, remote media.Crypto) error {
	if local.Suite == "" && remote.Suite == "" {
		r.side(side).ClearSRTP()
		return nil
	}
	return r.side(side).SetSRTP(local, remote)
}

func (r relaySession) Close() { _ = r.s.Close() }
