package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/appliance/store"
)

// maxBindingQuery bounds ?q= of GET /api/v1/bindings.
const maxBindingQuery = 128

// BindingStatus is one phone's live registration (GET /api/v1/bindings):
// a store.Binding with the user's name and extension from the snapshot.
type BindingStatus struct {
	ID        string    `json:"id"`
	AOR       string    `json:"aor"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Name      string    `json:"name,omitempty"`
	Extension string    `json:"extension,omitempty"`
	Site      string    `json:"site"`
	Contact   string    `json:"contact"`
	Transport string    `json:"transport"`
	Source    string    `json:"source"`
	Node      string    `json:"node"`
	UserAgent string    `json:"user_agent,omitempty"`
	Expires   time.Time `json:"expires"`
	UpdatedAt time.Time `json:"updated_at"`
	// AfterRecovery: the phone registered (or refreshed) here after the
	// mode last turned normal: it is still on Outpost although the cloud
	// is back (see afterRecovery).
	AfterRecovery bool `json:"after_recovery"`
}

// afterRecovery reports whether a binding last refreshed at updated was
// made after the cloud came back: the mode is normal, it was entered at
// since (after an outage: a mode never set has no since), and the
// registration is newer.
func afterRecovery(mode string, since, updated time.Time) bool {
	return mode == store.ModeNormal && !since.IsZero() && updated.After(since)
}

// bindings is every live binding whose username, user name, extension,
// contact or user agent contains q, case-insensitively (all when q is
// empty), sorted by AOR then ID as the store keeps them.
func (s *Server) bindings(ctx context.Context, q string) ([]BindingStatus, error) {
	r := s.deps.Reader
	bs, err := r.AllBindings(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	users, err := r.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	mode, since, err := r.Mode(ctx)
	if err != nil {
		return nil, err
	}
	type who struct{ name, ext string }
	byID := make(map[string]who, len(users))
	for _, u := range users {
		byID[u.ID] = who{u.Name, u.Extension}
	}
	q = strings.ToLower(strings.TrimSpace(q))
	out := []BindingStatus{}
	for _, b := range bs {
		w := byID[b.UserID]
		v := BindingStatus{
			ID: b.ID, AOR: b.AOR, UserID: b.UserID, Username: b.Username, Name: w.name, Extension: w.ext,
			Site: b.Site, Contact: b.Contact, Transport: b.Transport, Source: b.Source, Node: b.Node,
			UserAgent: b.UserAgent, Expires: b.Expires, UpdatedAt: b.UpdatedAt,
			AfterRecovery: afterRecovery(mode, since, b.UpdatedAt),
		}
		if q == "" || matches(q, v.Username, v.Name, v.Extension, v.Contact, v.UserAgent) {
			out = append(out, v)
		}
	}
	return out, nil
}

// matches: one of fields contains q (lower case already).
func matches(q string, fields ...string) bool {
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// getBindings lists the phones' live bindings, filtered by ?q=.
func (s *Server) getBindings(c *gin.Context) {
	q := c.Query("q")
	if len(q) > maxBindingQuery {
		fail(c, http.StatusBadRequest, "q: at most %d bytes", maxBindingQuery)
		return
	}
	bs, err := s.bindings(c.Request.Context(), q)
	if err != nil {
		fail(c, http.StatusInternalServerError, "read bindings: %v", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"bindings": bs})
}
