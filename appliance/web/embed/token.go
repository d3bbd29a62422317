package embed

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Token lifetimes.
const (
	// SessionTTL is how long a sign-in lasts.
	SessionTTL = 12 * time.Hour
	// DefaultIssuedDays is an admin-issued token's lifetime unless asked.
	DefaultIssuedDays = 90
	// MaxIssuedDays bounds an admin-issued token's lifetime.
	MaxIssuedDays = 365
)

// Token kinds: a session is what the widget's API takes as a bearer; an
// admin-issued token only signs in (it is exchanged for a session).
const (
	kindSession = "session"
	kindIssued  = "issued"
)

// tokenPrefix names the format: "ow1." base64url(claims) "." base64url(
// HMAC-SHA256(key, "ow1." base64url(claims))).
const tokenPrefix = "ow1."

// maxToken bounds a token's length (a real one is about 200 bytes).
const maxToken = 1024

// claims are what a token says. Tokens are stateless: nothing is stored,
// so a token is revoked by its user's new SIP password (HA1 changes), by
// its user leaving the configuration, or by a new cluster token (the key).
type claims struct {
	Kind    string `json:"k"`
	User    string `json:"u"`   // SIP username
	Expires int64  `json:"exp"` // unix seconds
	Issued  int64  `json:"iat"`
	// Cred is a keyed hash of the user's HA1s at issue: another password
	// makes the token fail.
	Cred string `json:"c"`
}

// Why a token is refused. Only errBadToken is said before the signature
// is checked.
var (
	errBadToken    = errors.New("not a valid widget token")
	errExpired     = errors.New("the widget token has expired: sign in again")
	errRevoked     = errors.New("the widget token was revoked (the user's SIP password changed): sign in again")
	errGone        = errors.New("the widget token's user is no longer in this account")
	errWrongKind   = errors.New("this is a sign-in token: exchange it for a session with POST /embed/api/session")
	errUnavailable = errors.New("this node cannot read its configuration: try again later")
)

// sign makes a token of kind for user, valid for ttl from now.
func (w *Widget) sign(kind string, u account.User, ttl time.Duration) (string, time.Time) {
	now := w.d.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	body, _ := json.Marshal(claims{Kind: kind, User: u.SIP.Username, Expires: exp.Unix(), Issued: now.Unix(), Cred: w.credHash(u)})
	payload := tokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(w.mac(payload)), exp
}

func (w *Widget) mac(payload string) []byte {
	m := hmac.New(sha256.New, w.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// credHash is a short keyed hash of u's credentials: the token carries it
// in the clear, so it must not let anyone test passwords offline.
func (w *Widget) credHash(u account.User) string {
	m := hmac.New(sha256.New, w.key)
	m.Write([]byte("outpost embed credentials\x00" + strings.ToLower(u.SIP.HA1MD5) + "\x00" + strings.ToLower(u.SIP.HA1SHA256)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// parse checks a token's form and signature and returns its claims,
// without the clock or the user.
func (w *Widget) parse(tok string) (claims, error) {
	if len(tok) > maxToken || !strings.HasPrefix(tok, tokenPrefix) {
		return claims{}, errBadToken
	}
	payload, sig, ok := strings.Cut(tok[len(tokenPrefix):], ".")
	if !ok {
		return claims{}, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, w.mac(tokenPrefix+payload)) {
		return claims{}, errBadToken
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return claims{}, errBadToken
	}
	var cl claims
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cl); err != nil || cl.User == "" || (cl.Kind != kindSession && cl.Kind != kindIssued) {
		return claims{}, errBadToken
	}
	return cl, nil
}

// verify checks tok completely: signature, kind, expiry, and that its
// user is in the configuration with the credentials it was issued for.
// It returns the user.
func (w *Widget) verify(ctx context.Context, tok, kind string) (account.User, error) {
	cl, err := w.parse(tok)
	if err != nil {
		return account.User{}, err
	}
	if cl.Kind != kind {
		if kind == kindSession {
			return account.User{}, errWrongKind
		}
		return account.User{}, errBadToken
	}
	if !w.d.Now().Before(time.Unix(cl.Expires, 0)) {
		return account.User{}, errExpired
	}
	if w.d.Directory == nil {
		return account.User{}, errUnavailable
	}
	u, err := w.d.Directory.UserByUsername(ctx, cl.User)
	if errors.Is(err, store.ErrNotFound) {
		return account.User{}, errGone
	}
	if err != nil {
		return account.User{}, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	if !hmac.Equal([]byte(w.credHash(u)), []byte(cl.Cred)) {
		return account.User{}, errRevoked
	}
	return u, nil
}
