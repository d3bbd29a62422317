package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes: a session ends after IdleTimeout without a request
// from its user, and AbsoluteTimeout after sign-in whatever happens.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
)

// maxSessions bounds the store; the oldest session goes first past it.
const maxSessions = 10000

// session is one signed-in person.
type session struct {
	id       string
	user     string
	role     string // account.RoleAdmin or RoleViewer
	csrf     string // the token every form of this session carries
	created  time.Time
	lastSeen time.Time
}

// sessions is the server-side session store. It is in memory only: a node
// restart signs everyone out (docs/ui.md).
type sessions struct {
	now func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, byID: map[string]*session{}}
}

// randomToken is 256 random bits, base64url without padding.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux (Go 1.24+ does not return errors)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for user with role and returns a copy of it.
func (s *sessions) create(user, role string) session {
	now := s.now()
	sess := &session{id: randomToken(), user: user, role: role, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.byID) >= maxSessions {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[sess.id] = sess
	return *sess
}

// get returns the live session with id. touch counts the request as the
// user's activity (page loads and forms do; the live-update stream does not,
// so an open status page alone does not keep a session alive).
func (s *sessions) get(id string, touch bool) (session, bool) {
	if id == "" {
		return session{}, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	if s.expired(sess, now) {
		delete(s.byID, id)
		return session{}, false
	}
	if touch {
		sess.lastSeen = now
	}
	return *sess, true
}

// delete ends a session (sign-out).
func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// len counts the sessions held, expired ones included until swept.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

func (s *sessions) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= IdleTimeout || now.Sub(sess.created) >= AbsoluteTimeout
}

func (s *sessions) sweepLocked(now time.Time) {
	for id, sess := range s.byID {
		if s.expired(sess, now) {
			delete(s.byID, id)
		}
	}
}

// tokenEqual compares two secrets in constant time; empty never matches.
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
