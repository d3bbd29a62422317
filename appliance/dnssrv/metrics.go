package dnssrv

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	responses *prometheus.CounterVec // by rcode
	limited   *prometheus.CounterVec // by action: drop or slip
	malformed prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "dns",
			Name: "responses_total", Help: "DNS responses sent, by rcode."}, []string{"rcode"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "dns",
			Name: "rate_limited_total", Help: "UDP queries over their source's rate limit, by what they got: drop (nothing) or slip (an empty truncated answer)."},
			[]string{"action"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "outpost", Subsystem: "dns",
			Name: "malformed_total", Help: "DNS packets dropped unanswered because they were not a well-formed query."}),
	}
}

// Collectors are the server's metrics, to register with the node's registry.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.responses, s.metrics.limited, s.metrics.malformed}
}
