package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Events of GET /ui/events (docs/ui.md, docs/openapi.yaml).
const (
	// EventStatus carries the status board, rendered (HTML), whenever it
	// changes and at least every keepAlive.
	EventStatus = "status"
	// EventCalls carries the Calls page's active calls, rendered.
	EventCalls = "calls"
	// EventSDGs carries the SDGs page's groups and member states, rendered.
	EventSDGs = "sdgs"
	// EventSignedOut says the session ended; the stream then closes.
	EventSignedOut = "signed-out"
)

// liveView is a part of a page the stream renders: the event it is sent
// as and how it is rendered.
type liveView struct {
	event string
	page  string // the template set
	tmpl  string // the fragment
	data  func(u *UI, ctx context.Context) any
}

// liveViews are the streams' ?view= values ("" is the status board).
var liveViews = map[string]liveView{
	"":       {EventStatus, "status", "board", func(u *UI, ctx context.Context) any { return u.board(ctx) }},
	"status": {EventStatus, "status", "board", func(u *UI, ctx context.Context) any { return u.board(ctx) }},
	"calls":  {EventCalls, "calls", "active", func(u *UI, ctx context.Context) any { return u.active(ctx) }},
	"sdgs":   {EventSDGs, "sdgs", "groups", func(u *UI, ctx context.Context) any { return u.groups(ctx) }},
}

// keepAlive is the longest the stream stays silent.
const keepAlive = 15 * time.Second

// events streams the status board (or, with ?view=calls or sdgs, the
// Calls or SDGs page's live part) as Server-Sent Events: every tick it
// renders it and sends it if it changed. It ends when the session
// does (idle or absolute timeout, sign-out), when the client goes, or
// when the server shuts down.
func (u *UI) events(c *gin.Context) {
	sess := sessionOf(c)
	view, ok := liveViews[c.Query("view")]
	if !ok {
		c.AbortWithStatusJSON(http.StatusBadRequest, errorBody{Error: "view: want status, calls or sdgs", Details: []any{}})
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := c.Writer
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	w.Flush()
	ctx := c.Request.Context()
	tick := time.NewTicker(u.d.Tick)
	defer tick.Stop()
	var last []byte
	var sent time.Time
	for {
		if _, ok := u.sessions.get(sess.id, false); !ok {
			fmt.Fprintf(w, "event: %s\ndata: sign in again at /login\n\n", EventSignedOut)
			w.Flush()
			return
		}
		var buf bytes.Buffer
		if err := pages[view.page].ExecuteTemplate(&buf, view.tmpl, view.data(u, ctx)); err != nil {
			u.d.Log.Error("ui: render live view", "view", view.event, "error", err)
			return
		}
		if !bytes.Equal(buf.Bytes(), last) || time.Since(sent) >= keepAlive {
			if _, err := fmt.Fprintf(w, "event: %s\n%s\n", view.event, sseLines(buf.Bytes())); err != nil {
				return
			}
			w.Flush()
			last, sent = buf.Bytes(), time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-u.done:
			return
		case <-tick.C:
		}
	}
}
