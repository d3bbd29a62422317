package cluster

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

var applyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Collectors are the cluster's Prometheus metrics: Raft role and indexes,
// apply latency as the proposer sees it, and whether the FSM halted.
func (c *Cluster) Collectors() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "outpost", Subsystem: "raft", Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		gauge("leader", "1 when this node is the Raft leader.", func() float64 { return b2f(c.IsLeader()) }),
		gauge("state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 {
			return float64(c.raft.State())
		}),
		gauge("quorum", "1 when this node is in touch with a working majority.", func() float64 { return b2f(c.HasQuorum()) }),
		gauge("term", "Current Raft term.", func() float64 { return float64(c.raft.CurrentTerm()) }),
		gauge("last_index", "Last Raft log index on this node.", func() float64 { return float64(c.raft.LastIndex()) }),
		gauge("commit_index", "Raft commit index known to this node.", func() float64 { return float64(c.raft.CommitIndex()) }),
		gauge("applied_index", "Last Raft index applied to the store.", func() float64 { return float64(c.fsm.AppliedIndex()) }),
		gauge("last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", func() float64 {
			if c.raft.State() == raft.Leader || c.raft.LastContact().IsZero() {
				return 0
			}
			return time.Since(c.raft.LastContact()).Seconds()
		}),
		gauge("fsm_halted", "1 when the state machine stopped on an entry it cannot apply.", func() float64 { return b2f(c.fsm.Halted() != nil) }),
		gauge("fsm_stalled", "1 while the state machine waits for disk space to apply (the store is full).", func() float64 { return b2f(c.fsm.Stalled() != nil) }),
		c.applyLatency,
	}
}

func newApplyLatency() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "outpost", Subsystem: "raft", Name: "apply_duration_seconds",
		Help:    "Time from proposing a command on the leader to the FSM's answer.",
		Buckets: applyBuckets,
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
