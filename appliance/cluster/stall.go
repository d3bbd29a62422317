package cluster

import "time"

// stallCheckEvery is how often a node looks whether it leads with a stalled
// FSM; stallHandOffEvery spaces its attempts to hand the leadership over.
const (
	stallCheckEvery   = 500 * time.Millisecond
	stallHandOffEvery = 10 * time.Second
)

// handOffWhileStalled hands the leadership to another voter while this node
// leads and its FSM waits for disk space (FSM.Stalled). A stalled leader
// keeps its followers' heartbeats going, so no election would replace it,
// yet every write of the cluster waits on its FSM: a Raft apply answers
// only once the leader has applied it. Handing over early matters, since
// the leader's loop itself blocks once Raft's queue to the stalled FSM is
// full, and then cannot hand over anything. It runs until done closes.
func (c *Cluster) handOffWhileStalled(done <-chan struct{}) {
	t := time.NewTicker(stallCheckEvery)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		err := c.fsm.Stalled()
		if err == nil || !c.IsLeader() || time.Since(last) < stallHandOffEvery {
			continue
		}
		if members, merr := c.Members(); merr != nil || len(members) < 2 {
			continue
		}
		last = time.Now()
		c.log.Warn("store is full: handing the leadership to another member", "error", err)
		if terr := c.raft.LeadershipTransfer().Error(); terr != nil {
			c.log.Error("leadership transfer while the store is full failed", "error", terr)
			continue
		}
		c.log.Info("leadership handed over while the store is full")
	}
}
