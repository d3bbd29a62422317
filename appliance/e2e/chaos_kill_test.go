package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// regLoad registers users through phones and records every registration a
// node acknowledged (200 OK): who, where, with which contact, when.
type regLoad struct {
	mu     sync.Mutex
	acked  map[string]regAck // username -> its acknowledged registration
	failed int               // REGISTERs that got no 200 (a node gone, a timeout)
	errs   []string          // the first few failures
	// newPhones counts the phones replaced after sipgo lost their socket.
	newPhones int
}

type regAck struct {
	node    string
	contact string
	at      time.Time
}

func newRegLoad() *regLoad { return &regLoad{acked: map[string]regAck{}} }

// run registers each of users once through a phone from newPhone,
// workers at a time, until done or ctx ends; a REGISTER gets 3 s.
//
// Should sipgo miss the phone's socket in its pool, it would try to open
// one of its own, in the test's namespace, where the phone's address does
// not exist ("cannot assign requested address"): a fault of the test's
// phone, not of the node. The load then takes a new phone (a new socket)
// and tries that user again; how often is reported.
func (l *regLoad) run(ctx context.Context, newPhone func() *chaosPhone, users []string, workers int) {
	var pmu sync.Mutex
	p := newPhone()
	phone := func(broken *chaosPhone) *chaosPhone {
		pmu.Lock()
		defer pmu.Unlock()
		if broken != nil && broken == p {
			p = newPhone()
			l.mu.Lock()
			l.newPhones++
			l.mu.Unlock()
		}
		return p
	}
	ch := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range ch {
				p := phone(nil)
				var code int
				var err error
				for try := 0; try < 3; try++ {
					rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					code, err = p.registerAs(rctx, u, 3600)
					cancel()
					if err == nil || !strings.Contains(err.Error(), "cannot assign requested address") {
						break
					}
					p = phone(p)
				}
				l.mu.Lock()
				if err == nil && code == 200 {
					l.acked[u] = regAck{node: p.node.id, contact: fmt.Sprintf("sip:%s@%s:%d", u, p.ip, p.port), at: time.Now()}
				} else if ctx.Err() == nil {
					l.failed++
					if len(l.errs) < 5 {
						l.errs = append(l.errs, fmt.Sprintf("%s on %s: %d %v", u, p.node.id, code, err))
					}
				}
				l.mu.Unlock()
			}
		}()
	}
	for _, u := range users {
		select {
		case ch <- u:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
}

func (l *regLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// check compares every node's bindings with what was acknowledged: each
// acknowledged user has exactly one live binding there, with its contact.
// It returns the users lost, by node, and the acknowledgements of the lost
// ones relative to at (the kill).
func (l *regLoad) check(ctx context.Context, n *node) (lost []string, doubled []string, err error) {
	bs, err := chaosBindings(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	got := map[string][]string{}
	for _, b := range bs {
		got[b.Username] = append(got[b.Username], b.Contact)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for u, a := range l.acked {
		switch cs := got[u]; {
		case len(cs) > 1:
			doubled = append(doubled, u)
		case len(cs) == 0 || cs[0] != a.contact:
			lost = append(lost, u)
		}
	}
	sort.Strings(lost)
	sort.Strings(doubled)
	return lost, doubled, nil
}

// The leader is killed -9 while phones register on all three nodes (a
// few hundred a second) and two clients apply revisions. The two others
// elect a leader at once; registrations on them go on; the killed node is
// started again on its data. Then every registration any node
// acknowledged is on every node, once, and the config history checks.
func TestChaosLeaderKillUnderRegisterLoad(t *testing.T) {
	chaosSlow(t)
	began := time.Now()
	snap := account.Generate(account.GenerateOptions{Users: 3000, Seed: 11})
	doc, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := newChaosCluster(t, doc, nil)
	ctx := context.Background()
	leader := c.leader(c.nodes, 30*time.Second)

	// The users, split among the nodes; one socket per node, in its
	// namespace, stands for its phones.
	var users [3][]string
	for i, u := range snap.Users {
		users[i%3] = append(users[i%3], u.SIP.Username)
	}
	load := newRegLoad()
	hist := newConfigHistory(t, doc)
	stopLoad := map[*node]context.CancelFunc{}
	loadBegan := time.Now()
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		newPhone := func() *chaosPhone { return newChaosPhone(t, c.host(n), n, "loader-"+n.id) }
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stopLoad[n] = cancel
		wg.Add(1)
		go func() { defer wg.Done(); load.run(lctx, newPhone, users[i], 4) }()
	}
	histCtx, stopHist := context.WithCancel(ctx)
	histDone := make(chan struct{})
	go func() { defer close(histDone); hist.run(histCtx, c.nodes, snap.Revision+1, 2) }()

	// The kill, once a third of the phones are registered.
	eventually(t, 120*time.Second, "a third of the phones registered", func(context.Context) error {
		if k := load.count(); k < len(snap.Users)/3 {
			return fmt.Errorf("%d registered", k)
		}
		return nil
	})
	leader.kill()
	killed := time.Now()
	stopLoad[leader]() // its phones would go to their secondary server
	atKill := load.count()
	survivors := others(c.nodes, leader)
	newLeader, took := c.waitLeaderChange(survivors, leader, killed, 30*time.Second)
	t.Logf("killed leader %s with %d phones registered; new leader %s %v later", leader.id, atKill, newLeader.id, took.Round(time.Millisecond))

	// The load ends (the killed node's share times out), the killed node
	// comes back on its data.
	wg.Wait()
	loadTook := time.Since(loadBegan)
	stopHist() // before the restart, which sets the node's addresses again
	<-histDone
	leader.restart()
	restarted := time.Now()
	var lost map[string]bool
	err = poll(90*time.Second, func(ctx context.Context) error {
		lost = map[string]bool{}
		var errs []error
		for _, n := range c.nodes {
			l, d, err := load.check(ctx, n)
			if err != nil {
				return err
			}
			if len(l) > 0 || len(d) > 0 {
				errs = append(errs, fmt.Errorf("%s: %d lost (%q), %d doubled (%q)", n.id, len(l), l[:min(len(l), 5)], len(d), d[:min(len(d), 5)]))
			}
			for _, u := range l {
				lost[u] = true
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		// When were the lost ones acknowledged, and by whom?
		load.mu.Lock()
		var gaps []time.Duration
		by := map[string]int{}
		for u := range lost {
			a := load.acked[u]
			gaps = append(gaps, killed.Sub(a.at))
			by[a.node]++
		}
		load.mu.Unlock()
		slices.Sort(gaps)
		t.Fatalf("acknowledged registrations lost: %d (by node %v), acknowledged from %v to %v before the kill: %v",
			len(lost), by, gaps[0].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond), err)
	}
	settled := time.Since(restarted)
	figures := hist.check(ctx, c.nodes)
	load.mu.Lock()
	acked, failed := len(load.acked), load.failed
	if len(load.errs) > 0 {
		t.Logf("REGISTERs that failed: %q", load.errs)
	}
	if load.newPhones > 0 {
		t.Logf("the load replaced %d phone(s) whose socket sipgo lost", load.newPhones)
	}
	perNode := map[string]int{}
	lastOnKilled := time.Duration(math.MaxInt64) // how long before the kill the killed node acknowledged its last
	for _, a := range load.acked {
		perNode[a.node]++
		if a.node == leader.id && killed.Sub(a.at) < lastOnKilled {
			lastOnKilled = killed.Sub(a.at)
		}
	}
	load.mu.Unlock()
	t.Logf("FIGURES kill -9 under REGISTER load: new leader %v after the kill; %d registrations acknowledged (%v), %d refused or timed out (in flight at the kill); "+
		"the killed node's last one %v before the kill; load took %v; all on every node %v after the killed node restarted; registrations lost 0, doubled 0; %s",
		took.Round(time.Millisecond), acked, perNode, failed, lastOnKilled.Round(time.Millisecond), loadTook.Round(time.Millisecond), settled.Round(time.Millisecond), figures)
	if err := faultCheckNoErrors(c.nodes); err != nil {
		t.Log(err)
	}
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// The leader is killed -9 while it applies a whole revision of a large
// account (5,000 users: the FSM takes a while to write it), after the
// entry committed and before the leader's store has it. Whether the
// revision was acknowledged or not, after the killed node restarts every
// node serves the same document, and the config history checks.
func TestChaosLeaderKillDuringSnapshotApply(t *testing.T) {
	chaosSlow(t)
	began := time.Now()
	snap := account.Generate(account.GenerateOptions{Users: 5000, Seed: 12})
	doc, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := newChaosCluster(t, doc, nil)
	ctx := context.Background()
	hist := newConfigHistory(t, doc)
	var figures []string
	rev := snap.Revision
	for round := 1; round <= 3; round++ {
		leader := c.leader(c.nodes, 30*time.Second)
		before, err := raftIndexes(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		// The apply goes through a follower (forwarded), so the answer
		// survives the leader's death as an error, not a lost connection.
		via := others(c.nodes, leader)[round%2]
		rev++
		done := make(chan string, 1)
		go func() { done <- hist.apply(ctx, 0, via, rev) }()
		// Kill as soon as the leader's commit index passes its applied
		// index on the new entry: the FSM is writing it.
		stage := "before the entry committed"
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			idx, err := raftIndexes(ctx, leader)
			if err == nil && idx.commit > before.last && idx.applied < idx.commit {
				stage = "committed, the leader's FSM applying it"
				break
			}
			if err == nil && idx.applied > before.last {
				stage = "after the leader applied it"
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		leader.kill()
		killed := time.Now()
		survivors := others(c.nodes, leader)
		next, took := c.waitLeaderChange(survivors, leader, killed, 30*time.Second)
		outcome := <-done
		leader.restart()
		served := waitSettled(t, c.nodes, 60*time.Second)
		if served < rev-1 || outcome == "ok" && served != rev || outcome != "ok" && outcome != "unknown" && served != rev-1 {
			t.Errorf("round %d: the apply of revision %d answered %s, the nodes serve %d", round, rev, outcome, served)
		}
		f := fmt.Sprintf("round %d: killed %s %s; apply answered %s; new leader %s after %v; every node at revision %d",
			round, leader.id, stage, outcome, next.id, took.Round(time.Millisecond), served)
		t.Log(f)
		figures = append(figures, f)
		rev = served
	}
	t.Logf("FIGURES kill -9 during a snapshot apply (5,000 users): %s; %s", strings.Join(figures, "; "), hist.check(ctx, c.nodes))
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// waitSettled waits until every node serves the same revision and knows
// the same commit index, twice in a row a second apart (an entry
// committed by a dead leader may reach the FSMs a little after the new
// leader is known), and returns the revision.
func waitSettled(t *testing.T, nodes []*node, within time.Duration) int64 {
	t.Helper()
	var served int64
	var last string
	eventually(t, within, "every node at one revision and commit index, settled", func(ctx context.Context) error {
		var revs []int64
		var commits []uint64
		for _, n := range nodes {
			idx, err := raftIndexes(ctx, n)
			if err != nil {
				return err
			}
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			revs, commits = append(revs, st.Revision), append(commits, idx.commit)
		}
		for i := range nodes {
			if revs[i] != revs[0] || commits[i] != commits[0] {
				last = ""
				return fmt.Errorf("revisions %v, commit indexes %v", revs, commits)
			}
		}
		sample := fmt.Sprint(revs, commits)
		if sample != last {
			last = sample
			time.Sleep(time.Second)
			return errors.New("not settled yet")
		}
		served = revs[0]
		return nil
	})
	waitRevision(t, nodes, served)
	return served
}

type raftIdx struct{ last, commit, applied uint64 }

// raftIndexes reads a node's Raft indexes from its metrics.
func raftIndexes(ctx context.Context, n *node) (raftIdx, error) {
	m, err := nodeMetrics(ctx, n)
	if err != nil {
		return raftIdx{}, err
	}
	return raftIdx{last: uint64(m["outpost_raft_last_index"]), commit: uint64(m["outpost_raft_commit_index"]),
		applied: uint64(m["outpost_raft_applied_index"])}, nil
}

// nodeMetrics reads the unlabelled metrics of a node's /metrics.
func nodeMetrics(ctx context.Context, n *node) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[name] = f
		}
	}
	return out, nil
}
