package embed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/appliance/calls"
)

// State is the event stream's first event: who is signed in, their agent
// status and their live engagements, oldest first.
type State struct {
	User        UserInfo           `json:"user"`
	AgentStatus AgentStatus        `json:"agentStatus"`
	Engagements []calls.Engagement `json:"engagements"`
}

// Limits of the event streams.
const (
	maxStreamsPerUser = 8
	maxStreams        = 2000
)

// streamLimit counts the open event streams.
type streamLimit struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

func newStreamLimit() *streamLimit { return &streamLimit{per: map[string]int{}} }

func (l *streamLimit) acquire(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= maxStreams || l.per[user] >= maxStreamsPerUser {
		return false
	}
	l.total++
	l.per[user]++
	return true
}

func (l *streamLimit) release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.per[user]--; l.per[user] <= 0 {
		delete(l.per, user)
	}
}

// events streams the user's engagement events as Server-Sent Events:
// "state" first, then "engagement" (the widget's own list) and "zcc" (a
// message the widget posts to its host as it is) as they happen; a
// comment every Heartbeat, when the token is checked again: a token that
// is no longer valid ends the stream with "signed-out". It ends when the
// client goes or the node shuts down.
func (w *Widget) events(c *gin.Context) {
	if w.d.Calls == nil {
		fail(c, http.StatusServiceUnavailable, "this node has no call engine: the widget cannot follow calls here")
		return
	}
	u := userOf(c)
	username := u.SIP.Username
	if !w.streams.acquire(username) {
		fail(c, http.StatusTooManyRequests, fmt.Sprintf("too many open event streams for %s (at most %d): close other widgets", username, maxStreamsPerUser))
		return
	}
	defer w.streams.release(username)
	tok, _ := bearer(c)
	// Subscribe before reading the state: an event in between comes twice
	// rather than never (the widget takes each as the latest word).
	ch, unsubscribe := w.d.Calls.Subscribe(username)
	defer unsubscribe()
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	out := c.Writer
	state := State{User: userInfo(u), AgentStatus: agentStatus(w.d.Calls.AgentStatus(username)), Engagements: w.d.Calls.Engagements(username)}
	if state.Engagements == nil {
		state.Engagements = []calls.Engagement{}
	}
	if _, err := io.WriteString(out, "retry: 2000\n\n"); err != nil {
		return
	}
	if writeEvent(out, "state", state) != nil {
		return
	}
	out.Flush()
	w.d.Log.Debug("embed: event stream opened", "user", username, "remote", c.RemoteIP())
	tr := newTranslator(u, w.d.Now)
	beat := time.NewTicker(w.d.Heartbeat)
	defer beat.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			for _, se := range tr.translate(ev) {
				if writeEvent(out, se.Name, se.Data) != nil {
					return
				}
			}
			out.Flush()
		case <-beat.C:
			if _, err := w.verify(ctx, tok, kindSession); err != nil && !errors.Is(err, errUnavailable) {
				w.d.Log.Info("embed: event stream ended: token no longer valid", "user", username, "reason", err.Error())
				_ = writeEvent(out, "signed-out", newErrorBody(err.Error()))
				out.Flush()
				return
			}
			if _, err := io.WriteString(out, ": heartbeat\n\n"); err != nil {
				return
			}
			out.Flush()
		}
	}
}

// writeEvent writes one event; data is JSON (one line: json.Marshal
// escapes every newline).
func writeEvent(out io.Writer, name string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "event: %s\ndata: %s\n\n", name, b)
	return err
}
