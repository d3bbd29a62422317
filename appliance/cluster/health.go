package cluster

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// Health probes every member's /livez over HTTP and remembers who answered.
// Each node probes on its own, so a node cut off from the others sees them
// down even when they are fine among themselves: health is "reachable from
// here", which is what routing from here needs.
type Health struct {
	self     string
	interval time.Duration
	window   time.Duration
	client   *http.Client

	mu     sync.Mutex
	lastOK map[string]time.Time
}

// NewHealth probes every interval; a member is healthy while its last good
// answer is younger than three intervals.
func NewHealth(self string, interval time.Duration) *Health {
	return &Health{
		self:     self,
		interval: interval,
		window:   3 * interval,
		client:   &http.Client{Timeout: interval},
		lastOK:   map[string]time.Time{},
	}
}

// Healthy reports whether member id answered recently. This node always is.
func (h *Health) Healthy(id string) bool {
	if id == h.self {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.lastOK[id]
	return ok && time.Since(t) < h.window
}

// Run probes until ctx ends. members lists who to probe.
func (h *Health) Run(ctx context.Context, members func(context.Context) ([]store.Member, error)) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if ms, err := members(ctx); err == nil {
			var wg sync.WaitGroup
			for _, m := range ms {
				if m.ID == h.self || m.HTTPAddr == "" {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if h.probe(ctx, m.HTTPAddr) {
						h.mu.Lock()
						h.lastOK[m.ID] = time.Now()
						h.mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Health) probe(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/livez", nil)
	if err != nil {
		return false
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
