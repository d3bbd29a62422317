package registrar

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// gatedStore persists when let through the gate, and fails while failing
// is set.
type gatedStore struct {
	gate    chan struct{}
	mu      sync.Mutex
	failing bool
	rows    int
}

func (g *gatedStore) persist(bs []store.Binding) error {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failing {
		return errors.New("database or disk is full")
	}
	g.rows += len(bs)
	return nil
}

func (g *gatedStore) fail(on bool) {
	g.mu.Lock()
	g.failing = on
	g.mu.Unlock()
}

func putBinding(t *testing.T, l *Location, id string) uint64 {
	t.Helper()
	now := time.Now()
	b := locBinding(id, aliceAOR, "hq", now.Add(time.Hour), now)
	if _, err := l.Update(aliceAOR, now, func(cur []store.Binding, _ func(string) int) ([]store.Binding, error) {
		return append(cur, b), nil
	}); err != nil {
		t.Fatal(err)
	}
	return l.Queued()
}

// A REGISTER is answered once its binding is in the store: WaitDurable
// returns when a group commit carrying it has succeeded, not before; it
// does not wait while the store fails (a full disk), nor when nothing
// commits (Run not running).
func TestWaitDurable(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	l := NewLocation(g.persist, testLog)
	if l.WaitDurable(context.Background(), putBinding(t, l, "b1")) {
		t.Fatal("durable with nothing persisted")
	}

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); l.Run(ctx) }()
	defer func() { cancel(); close(g.gate); <-ran }()
	for !l.running.Load() {
		time.Sleep(time.Millisecond)
	}
	done := make(chan bool, 1)
	wait := func(mark uint64) { go func() { done <- l.WaitDurable(context.Background(), mark) }() }
	// commit lets group commits through until the waiter answers.
	commit := func() bool {
		for {
			select {
			case g.gate <- struct{}{}:
			case ok := <-done:
				return ok
			case <-time.After(5 * time.Second):
				t.Fatal("WaitDurable did not return")
			}
		}
	}

	wait(putBinding(t, l, "b2"))
	select {
	case <-done:
		t.Fatal("WaitDurable returned before the commit")
	case <-time.After(100 * time.Millisecond):
	}
	if !commit() {
		t.Fatal("not durable after the commit")
	}

	// The store fails: the waiter is answered at once (not durable), and
	// the next ones do not wait.
	g.fail(true)
	wait(putBinding(t, l, "b3"))
	if commit() {
		t.Fatal("durable although the commit failed")
	}
	start := time.Now()
	if l.WaitDurable(context.Background(), putBinding(t, l, "b4")) || time.Since(start) > time.Second {
		t.Fatal("WaitDurable waited while the store fails")
	}

	// Space returns: the kept batch commits (at the next kick or the
	// second's sweep), and waiting resumes.
	g.fail(false)
	for deadline := time.Now().Add(5 * time.Second); l.failing.Load(); {
		select {
		case g.gate <- struct{}{}:
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the kept batch was not committed again")
		}
	}
	wait(putBinding(t, l, "b5"))
	if !commit() {
		t.Fatal("not durable after the store recovered")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rows < 5 {
		t.Errorf("%d rows persisted, want the 5 bindings", g.rows)
	}
}
