package e2e

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The leader is frozen with SIGSTOP for 10 s (a VM paused, a process
// swapped out), then thawed with SIGCONT, while two clients apply
// revisions through every node and a reader reads them. The two others
// elect a leader and go on (revisions applied, a phone registered); the
// thawed node steps down, catches up, and the history checks: every
// acknowledged revision served everywhere, the leaders' reads
// linearizable.
func TestChaosLeaderStopped(t *testing.T) {
	chaosSlow(t)
	began := time.Now()
	doc := demoSnapshot(t)
	c := newChaosCluster(t, doc, nil)
	ctx := context.Background()
	leader := c.leader(c.nodes, 30*time.Second)
	hist := newConfigHistory(t, doc)
	histCtx, stopHist := context.WithCancel(ctx)
	histDone := make(chan struct{})
	go func() { defer close(histDone); hist.run(histCtx, c.nodes, 2, 2) }()
	defer func() { stopHist(); <-histDone }()
	time.Sleep(2 * time.Second) // some history before the fault

	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = leader.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer thaw()
	survivors := others(c.nodes, leader)
	next, took := c.waitLeaderChange(survivors, leader, stopped, 30*time.Second)
	t.Logf("froze leader %s; new leader %s %v later", leader.id, next.id, took.Round(time.Millisecond))
	p := newChaosPhone(t, c.host(survivors[0]), survivors[0], "alice")
	p.register(10 * time.Second)
	st, err := next.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revDuringStop := st.Revision
	if d := 10*time.Second - time.Since(stopped); d > 0 {
		time.Sleep(d)
	}

	// The thaw: how long does the old leader go on saying it leads?
	var (
		mu          sync.Mutex
		claims      int // answers saying it leads, after the thaw
		lastClaim   time.Duration
		answers     int
		pollStopped = make(chan struct{})
		pollDone    = make(chan struct{})
	)
	thaw()
	cont := time.Now()
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-pollStopped:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := leader.status(ctx)
			cancel()
			if err == nil {
				mu.Lock()
				answers++
				if st.Leader == leader.id {
					claims++
					lastClaim = time.Since(cont)
				}
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var back time.Duration
	eventually(t, 60*time.Second, leader.id+" follows the new leader and catches up", func(ctx context.Context) error {
		st, err := leader.status(ctx)
		if err != nil {
			return err
		}
		if st.Leader == "" || st.Leader == leader.id || !st.Quorum || st.Revision < revDuringStop {
			return fmt.Errorf("leader %q quorum %v revision %d (the others had %d)", st.Leader, st.Quorum, st.Revision, revDuringStop)
		}
		back = time.Since(cont)
		return nil
	})
	time.Sleep(2 * time.Second) // more history after the thaw
	close(pollStopped)
	<-pollDone
	stopHist()
	<-histDone
	if err := checkBindings(ctx, leader, map[string]string{"alice": p.contact()}); err != nil {
		eventually(t, 20*time.Second, leader.id+" has alice's registration", func(ctx context.Context) error {
			return checkBindings(ctx, leader, map[string]string{"alice": p.contact()})
		})
	}
	figures := hist.check(ctx, c.nodes)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("FIGURES SIGSTOP of the leader for 10 s: new leader %v after the stop; the majority was at revision %d during the stop; "+
		"after SIGCONT the old leader answered %d status reads, %d of them still naming itself leader (the last %v after the thaw), "+
		"and followed the new leader at the current revision %v after the thaw; %s",
		took.Round(time.Millisecond), revDuringStop, answers, claims, lastClaim.Round(time.Millisecond), back.Round(time.Millisecond), figures)
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}
