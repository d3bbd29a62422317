package cloud

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// startPusher starts the background loop that wakes appliances on each new
// revision; Shutdown stops it. Starting twice is a no-op.
func (s *Server) startPusher() {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if s.pushCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.pushCancel, s.pushDone = cancel, make(chan struct{})
	go func() {
		defer close(s.pushDone)
		s.pushLoop(ctx)
	}()
}

// stopPusher cancels the pushes in flight and waits for the loop to end.
func (s *Server) stopPusher() {
	s.pushMu.Lock()
	cancel, done := s.pushCancel, s.pushDone
	s.pushMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// pushLoop pushes every revision committed after it starts to every
// appliance with a push URL. Pushes are best effort: a failure is logged
// and never retried (the appliance's long poll and probes catch up
// anyway). Revisions that commit while a round is in flight are coalesced:
// the next round pushes the latest.
func (s *Server) pushLoop(ctx context.Context) {
	log := s.cfg.Log.With("component", "cloud_push")
	last, changed := s.cfg.Store.Watch()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		var rev int64
		rev, changed = s.cfg.Store.Watch()
		if rev == last {
			return // woken without a new revision: the store closed
		}
		last = rev
		targets, err := s.cfg.Store.pushTargets(ctx)
		if err != nil {
			log.Warn("push: list appliances", "revision", rev, "error", err)
			continue
		}
		var wg sync.WaitGroup
		for _, t := range targets {
			wg.Go(func() {
				if err := s.push(ctx, t, rev); err != nil {
					log.Warn("push failed", "appliance", t.name, "push_url", t.url, "revision", rev, "error", err)
					return
				}
				log.Debug("pushed", "appliance", t.name, "revision", rev)
			})
		}
		wg.Wait()
	}
}

// push sends one signed push (docs/sync-protocol.md, "Push").
func (s *Server) push(ctx context.Context, t pushTarget, rev int64) error {
	key, err := hex.DecodeString(t.key)
	if err != nil {
		return fmt.Errorf("stored push key: %w", err)
	}
	body, err := json.Marshal(protocol.Push{Revision: rev})
	if err != nil {
		return err
	}
	id := randomHex(16)
	unix := s.now().Unix()
	ts := strconv.FormatInt(unix, 10)
	ctx, cancel := context.WithTimeout(ctx, PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(t.url, "/")+protocol.PathPushReceiver, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.HeaderPushID, id)
	req.Header.Set(protocol.HeaderPushTimestamp, ts)
	req.Header.Set(protocol.HeaderPushSignature, protocol.SignPush(key, id, unix, body))
	resp, err := s.cfg.PushClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
