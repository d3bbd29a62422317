package sbc

import (
	"maps"
	"sync"

	"github.com/outpost-voice/outpost/account"
)

// Channels counts calls in progress per key: per trunk id for max_channels,
// and (in another Channels) per user id for the per-user outbound limit.
// Select reads Counts; Acquire enforces the limit atomically, so two calls
// racing for a trunk's last channel cannot both get it. Safe for concurrent
// use; the zero value is not usable, call NewChannels.
type Channels struct {
	mu    sync.Mutex
	inUse map[string]int
}

// NewChannels returns an empty counter.
func NewChannels() *Channels {
	return &Channels{inUse: make(map[string]int)}
}

// Acquire takes one channel of key if fewer than limit are in use (limit < 1:
// no limit). With bypass (emergency calls) it always succeeds, and the call
// still counts. Call release exactly when the call ends; extra calls are
// harmless.
func (c *Channels) Acquire(key string, limit int, bypass bool) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !bypass && limit > 0 && c.inUse[key] >= limit {
		return func() {}, false
	}
	c.inUse[key]++
	var once sync.Once
	return func() { once.Do(func() { c.release(key) }) }, true
}

// AcquireTrunk is Acquire for a trunk's max_channels; emergency calls bypass it.
func (c *Channels) AcquireTrunk(t account.Trunk, emergency bool) (release func(), ok bool) {
	return c.Acquire(t.ID, t.MaxChannels, emergency)
}

func (c *Channels) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inUse[key] <= 1 {
		delete(c.inUse, key)
		return
	}
	c.inUse[key]--
}

// InUse is the number of calls holding a channel of key.
func (c *Channels) InUse(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inUse[key]
}

// Counts is a copy of every key's count (keys with none are absent), for
// SelectRequest.InUse and metrics.
func (c *Channels) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.inUse)
}
