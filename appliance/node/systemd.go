package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify sends one sd_notify state; outside systemd it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "error", err)
	}
}

// systemdLoop pets the watchdog while the node is healthy (store readable,
// FSM applying) and keeps STATUS= current. Without a watchdog configured it
// still updates STATUS.
func (n *Node) systemdLoop(ctx context.Context) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("read systemd watchdog settings", "error", err)
	}
	tick := 5 * time.Second
	if interval > 0 {
		tick = min(tick, interval/3)
		n.log.Info("systemd watchdog enabled", "interval", interval.String())
	}
	every(ctx, tick, func() bool {
		if interval > 0 && n.healthy(ctx) == nil {
			notify(n.log, "WATCHDOG=1")
		}
		notify(n.log, "STATUS="+n.statusLine(ctx))
		return false
	})
}

// healthy is what the watchdog vouches for: the process is not hung and can
// still read its store. A halted state machine is not a hang: restarting
// would halt again on the same entry, so it is reported (status, /readyz,
// metrics) rather than left to the watchdog.
func (n *Node) healthy(ctx context.Context) error {
	_, err := n.store.Reader().Revision(ctx)
	return err
}

func (n *Node) statusLine(ctx context.Context) string {
	rev, _ := n.store.Reader().Revision(ctx)
	mode, _, _ := n.store.Reader().Mode(ctx)
	leader, _ := n.cluster.Leader()
	if leader == "" {
		leader = "none"
	}
	ready := "ready"
	if err := n.Ready(); err != nil {
		ready = "not ready: " + err.Error()
	}
	return fmt.Sprintf("mode=%s revision=%d raft=%s leader=%s; %s", mode, rev, n.cluster.State(), leader, ready)
}
