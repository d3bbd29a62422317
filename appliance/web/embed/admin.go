package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// IssueRequest is POST /api/v1/embed/tokens's body.
type IssueRequest struct {
	// User is the user's id or SIP username.
	User string `json:"user"`
	// TTLDays is the token's lifetime in days, 1 to MaxIssuedDays;
	// absent: DefaultIssuedDays.
	TTLDays *int `json:"ttl_days,omitempty"`
}

// IssuedToken is a widget sign-in token issued by an admin. It is shown
// once: nothing on the node keeps it.
type IssuedToken struct {
	Token     string    `json:"token"`
	User      string    `json:"user"` // the user's id
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// postToken issues a widget token (the admin's bearer token was checked).
func (w *Widget) postToken(c *gin.Context) {
	var req IssueRequest
	if !decodeJSON(c, 4<<10, &req) {
		return
	}
	days := 0
	if req.TTLDays != nil {
		days = *req.TTLDays
		if days == 0 {
			fail(c, http.StatusBadRequest, fmt.Sprintf("ttl_days: from 1 to %d (leave it out for %d)", MaxIssuedDays, DefaultIssuedDays))
			return
		}
	}
	t, status, err := w.Issue(c.Request.Context(), req.User, days, "api")
	if err != nil {
		fail(c, status, err.Error())
		return
	}
	c.JSON(http.StatusOK, t)
}

// Issue makes a sign-in token for user (an id or a SIP username), valid
// for days (0: DefaultIssuedDays); by says who asked, for the log. On
// failure it returns the HTTP status that says why.
func (w *Widget) Issue(ctx context.Context, user string, days int, by string) (IssuedToken, int, error) {
	if days == 0 {
		days = DefaultIssuedDays
	}
	switch {
	case user == "":
		return IssuedToken{}, http.StatusBadRequest, errors.New("user: required: the user's id or SIP username")
	case len(user) > maxUsername:
		return IssuedToken{}, http.StatusBadRequest, fmt.Errorf("user: at most %d characters", maxUsername)
	case days < 1 || days > MaxIssuedDays:
		return IssuedToken{}, http.StatusBadRequest, fmt.Errorf("ttl_days: from 1 to %d", MaxIssuedDays)
	case w.d.Directory == nil:
		return IssuedToken{}, http.StatusServiceUnavailable, errUnavailable
	}
	u, err := w.findUser(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return IssuedToken{}, http.StatusNotFound, fmt.Errorf("user: %q is neither the id nor the SIP username of a user in the configuration in force", user)
	}
	if err != nil {
		w.d.Log.Error("embed: issue a token: read users", "error", err)
		return IssuedToken{}, http.StatusServiceUnavailable, errUnavailable
	}
	tok, exp := w.sign(kindIssued, u, time.Duration(days)*24*time.Hour)
	w.d.Log.Info("embed: widget token issued", "user", u.SIP.Username, "user_id", u.ID, "days", days, "by", by)
	return IssuedToken{Token: tok, User: u.ID, Username: u.SIP.Username, Name: u.Name, ExpiresAt: exp.UTC()}, http.StatusOK, nil
}

// findUser finds a user by id, then by SIP username.
func (w *Widget) findUser(ctx context.Context, user string) (account.User, error) {
	u, err := w.d.Directory.UserByID(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		u, err = w.d.Directory.UserByUsername(ctx, user)
	}
	return u, err
}
