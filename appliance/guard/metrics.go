package guard

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	refused *prometheus.CounterVec // connections refused at accept, by reason
	closed  *prometheus.CounterVec // connections closed by the guard, by reason
}

func newMetrics() *metrics {
	return &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "sip_guard",
			Name: "connections_refused_total",
			Help: "SIP TCP/TLS connections closed at accept, by reason: banned, rate, total (sip.tcp_max_connections), per_source (sip.tcp_max_per_source)."},
			[]string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "sip_guard",
			Name: "connections_closed_total",
			Help: "SIP TCP/TLS connections the guard closed, by reason: first_message_timeout, message_timeout (slow message), idle, limited (a message over the rate), banned."},
			[]string{"reason"}),
	}
}

func (m *metrics) collectors(g *Guard) []prometheus.Collector {
	stat := func(f func(LimiterStats) uint64) func() float64 {
		return func() float64 { return float64(f(g.lim.Stats())) }
	}
	messages := func(verdict string, f func(LimiterStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "sip_guard",
			Name: "messages_total", ConstLabels: prometheus.Labels{"verdict": verdict},
			Help: "SIP messages (UDP datagrams, stream messages, and TCP/TLS connections) seen by the flood guard, by verdict: pass, limited (over the source's rate, dropped) or banned (dropped)."},
			stat(f))
	}
	return []prometheus.Collector{
		m.refused, m.closed,
		messages("pass", func(s LimiterStats) uint64 { return s.Passed }),
		messages("limited", func(s LimiterStats) uint64 { return s.Limited }),
		messages("banned", func(s LimiterStats) uint64 { return s.Banned }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "sip_guard", Name: "bans_total",
			Help: "Sources banned for flooding (sip.flood_rate, sip.flood_ban)."},
			stat(func(s LimiterStats) uint64 { return s.Bans })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "outpost", Subsystem: "sip_guard", Name: "banned_sources",
			Help: "Sources banned now."},
			func() float64 { return float64(g.lim.Stats().BannedNow) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "outpost", Subsystem: "sip_guard", Name: "sources",
			Help: "Sources the flood guard tracks (bounded)."},
			func() float64 { return float64(g.lim.Stats().Tracked) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "outpost", Subsystem: "sip_guard", Name: "connections",
			Help: "SIP TCP/TLS connections accepted and open."},
			func() float64 { return float64(g.OpenConns()) }),
	}
}
