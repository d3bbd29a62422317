package calls

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func testParkConfig(slots int) ParkConfig {
	cfg := DefaultPark
	cfg.Slots = slots
	return cfg
}

// TestParkSlots: the lowest free slot of the site, sites apart, a
// released slot is taken again, a full site refuses clearly, claim and
// settle take a call off once.
func TestParkSlots(t *testing.T) {
	l, _ := newTestLot(t, testParkConfig(3))
	var hq [3]*parked
	for i := range hq {
		hq[i] = &parked{site: "hq", p: &party{id: "hq" + string(rune('a'+i))}, ctx: context.Background()}
		if s, err := l.take(hq[i], nil); err != nil || s != i+1 {
			t.Fatalf("take %d: slot %d, %v; want %d", i, s, err, i+1)
		}
		l.publish(hq[i])
	}
	if _, err := l.take(&parked{site: "hq", p: &party{}}, nil); !errors.Is(err, ErrParkFull) {
		t.Fatalf("a fourth call on 3 slots: %v, want ErrParkFull", err)
	}
	branch := &parked{site: "branch", p: &party{id: "br"}, ctx: context.Background()}
	if s, err := l.take(branch, nil); err != nil || s != 1 {
		t.Fatalf("another site: slot %d, %v; want 1", s, err)
	}
	if l.claim("branch", 1) != nil {
		t.Fatal("a call still parking was retrieved")
	}
	l.publish(branch)
	if !l.settle(hq[1], parkEnded) || l.settle(hq[1], parkEnded) {
		t.Fatal("settle must take a call off its slot once")
	}
	again := &parked{site: "hq", p: &party{id: "again"}, ctx: context.Background()}
	if s, _ := l.take(again, nil); s != 2 {
		t.Fatalf("after slot 2 was freed: slot %d, want 2", s)
	}
	if got := l.claim("hq", 3); got != hq[2] {
		t.Fatalf("claim hq 3 = %v", got)
	}
	if l.claim("hq", 3) != nil || l.claim("branch", 2) != nil || l.claim("nowhere", 1) != nil {
		t.Fatal("claim of an empty slot must find nothing")
	}
	if l.settle(hq[2], parkEnded) {
		t.Fatal("a claimed call was settled again")
	}
	all := l.all()
	if len(all) != 3 || all[0] != branch || all[1] != hq[0] || all[2] != again {
		t.Fatalf("all = %v", all)
	}
}

// fakeTimer is one timer of fakeClock: the test fires it.
type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped atomic.Bool
}

func (t *fakeTimer) Stop() bool { return !t.stopped.Swap(true) }

// ringCall is one ring-back the lot asked for.
type ringCall struct {
	ctx    context.Context
	pk     *parked
	answer chan bool // true: the parker answers; false or ctx's end: unanswered
	took   chan bool // whether the answer took the call (settle)
}

// newTestLot is a lot on a clock the test drives: each timer armed
// arrives on timers, each ring-back on rings, each call that expires on
// expired.
func newTestLot(t *testing.T, cfg ParkConfig) (*parkLot, *testClock) {
	t.Helper()
	c := &testClock{timers: make(chan *fakeTimer, 16), rings: make(chan ringCall, 4), expired: make(chan *parked, 4)}
	l := newParkLot(cfg)
	l.afterFunc = func(d time.Duration, f func()) stopper {
		ft := &fakeTimer{d: d, f: f}
		c.timers <- ft
		return ft
	}
	l.ringback = func(ctx context.Context, pk *parked) {
		rc := ringCall{ctx: ctx, pk: pk, answer: make(chan bool, 1), took: make(chan bool, 1)}
		c.rings <- rc
		select {
		case a := <-rc.answer:
			if a {
				rc.took <- l.settle(pk, parkAnswered)
			}
		case <-ctx.Done():
		}
	}
	l.expire = func(pk *parked) { c.expired <- pk }
	return l, c
}

type testClock struct {
	timers  chan *fakeTimer
	rings   chan ringCall
	expired chan *parked
}

func (c *testClock) timer(t *testing.T, want time.Duration) *fakeTimer {
	t.Helper()
	select {
	case ft := <-c.timers:
		if ft.d != want {
			t.Fatalf("timer armed for %s, want %s", ft.d, want)
		}
		return ft
	case <-time.After(5 * time.Second):
		t.Fatalf("no timer armed for %s", want)
	}
	return nil
}

func (c *testClock) ring(t *testing.T) ringCall {
	t.Helper()
	select {
	case rc := <-c.rings:
		return rc
	case <-time.After(5 * time.Second):
		t.Fatal("the parker was not rung back")
	}
	return ringCall{}
}

func (c *testClock) quiet(t *testing.T) {
	t.Helper()
	select {
	case ft := <-c.timers:
		t.Fatalf("unexpected timer for %s", ft.d)
	case rc := <-c.rings:
		t.Fatalf("unexpected ring-back of slot %d", rc.pk.slot)
	case pk := <-c.expired:
		t.Fatalf("unexpected expiry of slot %d", pk.slot)
	default:
	}
}

// fire runs a timer as the clock would, in its own goroutine; the
// returned channel closes when its function returns.
func fire(ft *fakeTimer) chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); ft.f() }()
	return done
}

func wait(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func parkOne(t *testing.T, l *parkLot, site string) *parked {
	t.Helper()
	pk := &parked{site: site, p: &party{id: site + "-call"}, ctx: context.Background()}
	if _, err := l.take(pk, nil); err != nil {
		t.Fatal(err)
	}
	if !l.publish(pk) {
		t.Fatal("publish failed")
	}
	return pk
}

func wantState(t *testing.T, l *parkLot, pk *parked, state parkState, onSlot bool) {
	t.Helper()
	if got, _ := pk.current(); got != state {
		t.Fatalf("state %s, want %s", got, state)
	}
	var there bool
	for _, o := range l.all() {
		there = there || o == pk
	}
	if there != onSlot {
		t.Fatalf("on its slot: %v, want %v", there, onSlot)
	}
}

// TestParkRingsBackAfterTimeout: the timeout rings the parker for
// RingFor; the parker answering takes the call off its slot, and nothing
// is armed again.
func TestParkRingsBackAfterTimeout(t *testing.T) {
	cfg := testParkConfig(2)
	l, clock := newTestLot(t, cfg)
	pk := parkOne(t, l, "hq")
	timeout := clock.timer(t, cfg.Timeout)
	clock.quiet(t)
	wantState(t, l, pk, parkParked, true)

	done := fire(timeout)
	rc := clock.ring(t)
	ringFor := clock.timer(t, cfg.RingFor)
	wantState(t, l, pk, parkRinging, true)
	rc.answer <- true
	if !<-rc.took {
		t.Fatal("the parker's answer did not take the call")
	}
	wait(t, done, "the ring-back")
	wantState(t, l, pk, parkAnswered, false)
	if !ringFor.stopped.Load() {
		t.Fatal("the ring-for timer still runs")
	}
	clock.quiet(t)
	if l.claim("hq", pk.slot) != nil {
		t.Fatal("an answered call was retrieved")
	}
}

// TestParkRetrievedBeforeTimeout: retrieving the call stops its timer;
// a timer that fires all the same rings nobody.
func TestParkRetrievedBeforeTimeout(t *testing.T) {
	cfg := testParkConfig(2)
	l, clock := newTestLot(t, cfg)
	pk := parkOne(t, l, "hq")
	timeout := clock.timer(t, cfg.Timeout)
	if got := l.claim("hq", pk.slot); got != pk {
		t.Fatalf("claim = %v", got)
	}
	wantState(t, l, pk, parkRetrieved, false)
	if !timeout.stopped.Load() {
		t.Fatal("the ring-back timer still runs")
	}
	wait(t, fire(timeout), "a late timer")
	clock.quiet(t)
	if l.settle(pk, parkEnded) {
		t.Fatal("the parked party's hang-up ended a retrieved call's park")
	}
}

// TestParkRingsAgain: an unanswered ring-back puts the call back on its
// slot, retrievable, and rings again after another timeout; a retrieval
// while it rings ends the ringing.
func TestParkRingsAgain(t *testing.T) {
	cfg := testParkConfig(2)
	l, clock := newTestLot(t, cfg)
	pk := parkOne(t, l, "hq")

	done := fire(clock.timer(t, cfg.Timeout))
	rc := clock.ring(t)
	wait(t, fire(clock.timer(t, cfg.RingFor)), "the ring-for timer")
	if rc.ctx.Err() == nil {
		t.Fatal("RingFor did not end the ringing")
	}
	wait(t, done, "the ring-back")
	second := clock.timer(t, cfg.Timeout)
	wantState(t, l, pk, parkParked, true)
	if _, rings := pk.current(); rings != 1 {
		t.Fatalf("rings = %d, want 1", rings)
	}

	done = fire(second)
	rc = clock.ring(t)
	ringFor := clock.timer(t, cfg.RingFor)
	if _, rings := pk.current(); rings != 2 {
		t.Fatalf("rings = %d, want 2", rings)
	}
	if got := l.claim("hq", pk.slot); got != pk {
		t.Fatal("a call ringing back could not be retrieved")
	}
	wait(t, done, "the ring-back") // the retrieval ended the ringing (ctx)
	if rc.ctx.Err() == nil || !ringFor.stopped.Load() {
		t.Fatal("the retrieval did not stop the ringing")
	}
	wantState(t, l, pk, parkRetrieved, false)
	clock.quiet(t)
}

// TestParkEndsAfterMaxRingbacks: after MaxRingbacks unanswered
// ring-backs the call leaves its slot and expires, once.
func TestParkEndsAfterMaxRingbacks(t *testing.T) {
	cfg := testParkConfig(1)
	cfg.MaxRingbacks = 2
	l, clock := newTestLot(t, cfg)
	pk := parkOne(t, l, "hq")
	for i := 1; i <= cfg.MaxRingbacks; i++ {
		done := fire(clock.timer(t, cfg.Timeout))
		rc := clock.ring(t)
		clock.timer(t, cfg.RingFor)
		rc.answer <- false // the fork gave up
		wait(t, done, "the ring-back")
	}
	select {
	case got := <-clock.expired:
		if got != pk {
			t.Fatal("another call expired")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not expire")
	}
	wantState(t, l, pk, parkEnded, false)
	clock.quiet(t)
	if s, err := l.take(&parked{site: "hq", p: &party{}}, nil); err != nil || s != 1 {
		t.Fatalf("the only slot after expiry: %d, %v", s, err)
	}
}

// TestParkHangUp: the parked party hanging up frees the slot in every
// state and ends a ring-back under way; one that hangs up while parking
// is never published.
func TestParkHangUp(t *testing.T) {
	cfg := testParkConfig(3)
	l, clock := newTestLot(t, cfg)

	parkedCall := parkOne(t, l, "hq")
	timeout := clock.timer(t, cfg.Timeout)
	if !l.settle(parkedCall, parkEnded) || !timeout.stopped.Load() {
		t.Fatal("hang-up while parked")
	}
	wantState(t, l, parkedCall, parkEnded, false)

	ctx, hangUp := context.WithCancel(context.Background())
	ringing := &parked{site: "hq", p: &party{id: "r"}, ctx: ctx}
	if _, err := l.take(ringing, nil); err != nil {
		t.Fatal(err)
	}
	l.publish(ringing)
	done := fire(clock.timer(t, cfg.Timeout))
	rc := clock.ring(t)
	clock.timer(t, cfg.RingFor)
	hangUp() // the dialog ends: ringing stops at once
	select {
	case <-rc.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parked party's hang-up did not end the ringing")
	}
	if !l.settle(ringing, parkEnded) {
		t.Fatal("hang-up while ringing")
	}
	wait(t, done, "the ring-back")
	wantState(t, l, ringing, parkEnded, false)
	if l.settle(ringing, parkAnswered) {
		t.Fatal("an ended call was answered")
	}

	early := &parked{site: "hq", p: &party{id: "e"}, ctx: context.Background()}
	if _, err := l.take(early, nil); err != nil {
		t.Fatal(err)
	}
	if !l.settle(early, parkEnded) || l.publish(early) {
		t.Fatal("a call that ended while parking was published")
	}
	clock.quiet(t)
	if n := len(l.all()); n != 0 {
		t.Fatalf("%d calls left on slots", n)
	}
}
