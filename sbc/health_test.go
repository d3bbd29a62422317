package sbc

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

func TestOptionsError(t *testing.T) {
	for _, tc := range []struct {
		status int
		alive  bool
	}{
		{200, true}, {202, true}, {302, true}, {404, true}, {405, true}, {480, true}, {486, true},
		{500, true}, {502, true}, {600, true}, {603, true}, {699, true},
		{503, false}, {408, false}, {0, false}, {100, false}, {180, false}, {700, false},
	} {
		err := OptionsError(tc.status)
		if got := err == nil; got != tc.alive {
			t.Errorf("OptionsError(%d) = %v, want alive %v", tc.status, err, tc.alive)
		}
		if err != nil && !errors.Is(err, ErrTrunkUnavailable) {
			t.Errorf("OptionsError(%d) = %v, want it to wrap ErrTrunkUnavailable", tc.status, err)
		}
	}
}

func TestHealthMachine(t *testing.T) {
	fail := errors.New("timeout")
	for _, tc := range []struct {
		name  string
		start State
		seq   string // S success, F failure
		want  State
		fails int
		succ  int
	}{
		{"fresh is unknown and usable", StateUnknown, "", StateUnknown, 0, 0},
		{"one answer: up", StateUnknown, "S", StateUp, 0, 1},
		{"unknown tolerates two failures", StateUnknown, "FF", StateUnknown, 2, 0},
		{"unknown down after three", StateUnknown, "FFF", StateDown, 3, 0},
		{"up tolerates two failures", StateUp, "FF", StateUp, 2, 0},
		{"up down after three", StateUp, "SFFF", StateDown, 3, 0},
		{"a success resets failures", StateUp, "FFSFF", StateUp, 2, 0},
		{"down stays down after one success", StateDown, "S", StateDown, 0, 1},
		{"down up after two", StateDown, "SS", StateUp, 0, 2},
		{"down: a failure resets successes", StateDown, "SFS", StateDown, 0, 1},
		{"down: then two in a row", StateDown, "SFSS", StateUp, 0, 2},
		{"down stays down failing", StateDown, "FFFF", StateDown, 4, 0},
		{"flapping never goes down", StateUp, "FFSFFSFF", StateUp, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Health{State: tc.start}
			at := time.Unix(1000, 0)
			for _, c := range tc.seq {
				at = at.Add(time.Second)
				if c == 'S' {
					h = h.Observe(at, 20*time.Millisecond, nil)
				} else {
					h = h.Observe(at, 0, fail)
				}
			}
			if h.State != tc.want || h.Failures != tc.fails || h.Successes != tc.succ {
				t.Errorf("after %q from %s: state %s failures %d successes %d, want %s %d %d",
					tc.seq, tc.start, h.State, h.Failures, h.Successes, tc.want, tc.fails, tc.succ)
			}
		})
	}
}

func TestHealthRecordsAnswerAndError(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := Health{State: StateUnknown}.Observe(t0, 15*time.Millisecond, nil)
	h = h.Observe(t0.Add(time.Second), 0, errors.New("connection refused"))
	if !h.LastAnswerAt.Equal(t0) || h.RTT != 15*time.Millisecond {
		t.Errorf("last answer %v rtt %v, want %v 15ms", h.LastAnswerAt, h.RTT, t0)
	}
	if h.LastError != "connection refused" || !h.LastProbeAt.Equal(t0.Add(time.Second)) {
		t.Errorf("last error %q at %v", h.LastError, h.LastProbeAt)
	}
	s := h.status("t1")
	if !s.Healthy || s.State != StateUp || s.LastOptionsAt == nil || *s.RTTMs != 15 || s.ConsecutiveFailures != 1 {
		t.Errorf("status = %+v", s)
	}
	data, err := json.Marshal(Health{State: StateUnknown}.status("t2"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"t2","healthy":true,"state":"unknown","last_options_at":null,"rtt_ms":null,"last_error":"","consecutive_failures":0,"consecutive_successes":0}`
	if string(data) != want {
		t.Errorf("status JSON\n got %s\nwant %s", data, want)
	}
}

// pinger is a scripted Ping: per trunk id an error (nil: alive), counting calls.
type pinger struct {
	mu    sync.Mutex
	fail  map[string]error
	calls map[string]int
}

func newPinger() *pinger { return &pinger{fail: map[string]error{}, calls: map[string]int{}} }

func (p *pinger) ping(_ context.Context, t Target) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[t.TrunkID]++
	return 12 * time.Millisecond, p.fail[t.TrunkID]
}

func (p *pinger) set(id string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail[id] = err
}

func (p *pinger) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}

func trunk(id, site string, prio, weight, maxCh int) account.Trunk {
	return account.Trunk{ID: id, Site: site, Name: id, Host: "192.0.2.1", Port: 5060, Transport: "udp",
		Priority: prio, Weight: weight, OptionsIntervalS: 10, MaxChannels: maxCh, Codecs: []string{"PCMU"}}
}

// tick runs one scheduler step at now and waits for its probes.
func tick(p *Prober, now time.Time) {
	p.startDue(context.Background(), now)
	p.wg.Wait()
}

func TestProberSchedulesAndRecords(t *testing.T) {
	clk, pg := newClock(), newPinger()
	p, err := NewProber(ProberOptions{Ping: pg.ping, Now: clk.Now, Rand: script(0), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTrunks([]account.Trunk{trunk("a", "hq", 10, 1, 5), trunk("b", "hq", 20, 1, 5)})
	pg.set("b", errors.New("no route to host"))

	for i := range 3 { // rand 0: first probe at once, then every 9 s (10 s - 10 %)
		tick(p, clk.Now())
		if got := pg.count("a"); got != i+1 {
			t.Fatalf("round %d: a probed %d times", i, got)
		}
		clk.Advance(5 * time.Second)
		tick(p, clk.Now()) // not due yet
		clk.Advance(4 * time.Second)
	}
	if got := pg.count("a"); got != 3 {
		t.Errorf("a probed %d times, want 3", got)
	}
	st := p.Status()
	if len(st) != 2 || st[0].ID != "a" || st[1].ID != "b" {
		t.Fatalf("status = %+v", st)
	}
	if st[0].State != StateUp || !st[0].Healthy || st[0].LastOptionsAt == nil || *st[0].RTTMs != 12 {
		t.Errorf("a = %+v", st[0])
	}
	if st[1].State != StateDown || st[1].Healthy || st[1].LastOptionsAt != nil || st[1].LastError != "no route to host" {
		t.Errorf("b = %+v", st[1])
	}
	if got := p.States(); got["a"] != StateUp || got["b"] != StateDown {
		t.Errorf("States = %v", got)
	}
}

func TestProberKeepsStateOfUnchangedTrunks(t *testing.T) {
	clk, pg := newClock(), newPinger()
	p, _ := NewProber(ProberOptions{Ping: pg.ping, Now: clk.Now, Rand: script(0), Log: quiet()})
	a, b := trunk("a", "hq", 10, 1, 5), trunk("b", "hq", 20, 1, 5)
	p.SetTrunks([]account.Trunk{a, b})
	pg.set("a", errors.New("timeout"))
	pg.set("b", errors.New("timeout"))
	for range DownAfter {
		tick(p, clk.Now())
		clk.Advance(10 * time.Second)
	}
	if s := p.States(); s["a"] != StateDown || s["b"] != StateDown {
		t.Fatalf("states = %v", s)
	}

	// a: new name, priority and interval but the same peer; b: a new port; c: new.
	a.Name, a.Priority, a.OptionsIntervalS = "renamed", 5, 30
	b.Port = 5070
	c := trunk("c", "hq", 30, 1, 5)
	p.SetTrunks([]account.Trunk{c, a, b})
	s := p.States()
	if s["a"] != StateDown || s["b"] != StateUnknown || s["c"] != StateUnknown || len(s) != 3 {
		t.Errorf("after the new snapshot: %v, want a down, b and c unknown", s)
	}
	if h, _ := p.Health("a"); h.Failures != DownAfter {
		t.Errorf("a lost its count: %+v", h)
	}
	if st := p.Status(); st[0].ID != "c" || st[1].ID != "a" {
		t.Errorf("status not in snapshot order: %+v", st)
	}

	p.SetTrunks([]account.Trunk{c})
	if _, ok := p.Health("a"); ok || len(p.Status()) != 1 {
		t.Errorf("a still probed after removal: %+v", p.Status())
	}
}

func TestProberDropsResultOfReplacedTrunk(t *testing.T) {
	clk := newClock()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ping := func(ctx context.Context, tg Target) (time.Duration, error) {
		started <- struct{}{}
		<-release
		return 0, errors.New("late failure")
	}
	p, _ := NewProber(ProberOptions{Ping: ping, Now: clk.Now, Rand: script(0), Log: quiet()})
	a := trunk("a", "hq", 10, 1, 5)
	p.SetTrunks([]account.Trunk{a})
	p.startDue(context.Background(), clk.Now())
	<-started
	a.Host = "192.0.2.99"
	p.SetTrunks([]account.Trunk{a}) // changed while its probe is in flight
	close(release)
	p.wg.Wait()
	if h, _ := p.Health("a"); h.State != StateUnknown || h.Failures != 0 {
		t.Errorf("the old peer's result reached the new one: %+v", h)
	}
}

func TestProberSpreadsFirstProbes(t *testing.T) {
	clk := newClock()
	p, _ := NewProber(ProberOptions{Ping: newPinger().ping, Now: clk.Now, Rand: rand.New(rand.NewPCG(1, 2)), Log: quiet()})
	var trunks []account.Trunk
	for i := range 100 {
		tr := trunk(strings.Repeat("t", i+1), "hq", 10, 1, 5)
		tr.OptionsIntervalS = 60
		trunks = append(trunks, tr)
	}
	p.SetTrunks(trunks)
	now := clk.Now()
	buckets := make(map[int]int)
	for _, e := range p.trunks {
		d := e.next.Sub(now)
		if d < 0 || d >= 60*time.Second {
			t.Fatalf("first probe %v after the snapshot, want within the 60 s interval", d)
		}
		buckets[int(d/(10*time.Second))]++
	}
	for b := range 6 {
		if buckets[b] < 5 {
			t.Errorf("first probes not spread: %v per 10 s", buckets)
		}
	}
	for range 1000 {
		if j := p.jitter(10 * time.Second); j < 9*time.Second || j >= 11*time.Second {
			t.Fatalf("jitter %v outside 10 s ± 10 %%", j)
		}
	}
}

func TestProberRun(t *testing.T) {
	pg := newPinger()
	p, _ := NewProber(ProberOptions{Ping: pg.ping, Log: quiet()})
	p.unit = time.Millisecond // options_interval_s 10 → every 10 ms
	p.SetTrunks([]account.Trunk{trunk("a", "hq", 10, 1, 5)})
	pg.set("a", errors.New("timeout"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	eventually(t, "a down", func() bool { return p.States()["a"] == StateDown })

	p.SetTrunks([]account.Trunk{trunk("a", "hq", 10, 1, 5), trunk("b", "hq", 10, 1, 5)})
	pg.set("a", nil)
	eventually(t, "b probed and a back up", func() bool {
		s := p.States()
		return pg.count("b") >= 2 && s["b"] == StateUp && s["a"] == StateUp
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewProberNeedsPing(t *testing.T) {
	if _, err := NewProber(ProberOptions{}); err == nil {
		t.Error("NewProber without Ping succeeded")
	}
}
