package ui

import (
	"bytes"
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
	// EventSignedOut says the session ended; the stream then closes.
	EventSignedOut = "signed-out"
)

// keepAlive is the longest the stream stays silent.
const keepAlive = 15 * time.Second

// events streams the status board as Server-Sent Events: every tick it
// renders the board and sends it if it changed. It ends when the session
// does (idle or absolute timeout, sign-out), when the client goes, or
// when the server shuts down.
func (u *UI) events(c *gin.Context) {
	sess := sessionOf(c)
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
		if err := pages["status"].ExecuteTemplate(&buf, "board", u.board(ctx)); err != nil {
			u.d.Log.Error("ui: render status board", "error", err)
			return
		}
		if !bytes.Equal(buf.Bytes(), last) || time.Since(sent) >= keepAlive {
			if _, err := fmt.Fprintf(w, "event: %s\n%s\n", EventStatus, sseLines(buf.Bytes())); err != nil {
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
