package sbc

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestChannelsLimit(t *testing.T) {
	c := NewChannels()
	tr := trunk("a", "hq", 10, 1, 2)
	r1, ok1 := c.AcquireTrunk(tr, false)
	_, ok2 := c.AcquireTrunk(tr, false)
	_, ok3 := c.AcquireTrunk(tr, false)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire 3 of 2: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	rE, okE := c.AcquireTrunk(tr, true)
	if !okE || c.InUse("a") != 3 {
		t.Fatalf("emergency bypass: ok %v, in use %d; want true and counted (3)", okE, c.InUse("a"))
	}
	if _, ok := c.AcquireTrunk(tr, false); ok {
		t.Error("a normal call got in over the limit while the emergency call held a channel")
	}
	r1()
	r1() // a second release is harmless
	if got := c.InUse("a"); got != 2 {
		t.Errorf("in use %d after one release, want 2", got)
	}
	rE()
	if _, ok := c.AcquireTrunk(tr, false); !ok {
		t.Error("no channel after the emergency call ended")
	}
	if _, ok := c.Acquire("unlimited", 0, false); !ok {
		t.Error("limit 0 refused")
	}
	if got := c.Counts(); got["a"] != 2 || got["unlimited"] != 1 || len(got) != 2 {
		t.Errorf("Counts = %v", got)
	}
}

func TestChannelsConcurrent(t *testing.T) {
	c := NewChannels()
	var got atomic.Int32
	var mu sync.Mutex
	var releases []func()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rel, ok := c.Acquire("t", 10, false); ok {
				got.Add(1)
				mu.Lock()
				releases = append(releases, rel)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got.Load() != 10 || c.InUse("t") != 10 {
		t.Fatalf("%d acquired, %d in use; want 10", got.Load(), c.InUse("t"))
	}
	for _, rel := range releases {
		wg.Add(1)
		go func() { defer wg.Done(); rel(); rel() }()
	}
	wg.Wait()
	if n := len(c.Counts()); n != 0 || c.InUse("t") != 0 {
		t.Errorf("after release: %v", c.Counts())
	}
}
