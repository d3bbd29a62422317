package cloudsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Errors of the client, checked with errors.Is. An *HTTPError matches the
// ones its status means.
var (
	// ErrTooFarBehind: the cloud no longer keeps the changes since the
	// appliance's revision (410); fetch the full snapshot.
	ErrTooFarBehind = errors.New("too far behind the cloud's history")
	// ErrAhead: the appliance's revision is ahead of the cloud's (409; the
	// cloud was restored from a backup); fetch the full snapshot and apply
	// it only if it is newer.
	ErrAhead = errors.New("ahead of the cloud")
	// ErrUnauthorized: the cloud refused the appliance's credentials (401);
	// pair again.
	ErrUnauthorized = errors.New("the cloud refused the appliance's credentials")
	// ErrPairingRefused: the pairing code is unknown, used or expired (403
	// on pairing); make a new one.
	ErrPairingRefused = errors.New("pairing code refused (unknown, used or expired)")
	// ErrMalformedAnswer: the cloud's answer does not parse, breaks the
	// protocol or is larger than allowed. Nothing of it is used; retried.
	ErrMalformedAnswer = errors.New("malformed answer from the cloud")
)

// HTTPError is an answer with an error status, with the cloud's
// {"error", "problems"} body when it sent one.
type HTTPError struct {
	Method   string
	Path     string
	Status   int
	Message  string
	Problems []protocol.Problem
	Current  int64 // on 410: the cloud's revision
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.Path + ": " + p.Message)
	}
	return b.String()
}

// Is matches the sentinels the status means.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrTooFarBehind:
		return e.Status == http.StatusGone
	case ErrAhead:
		return e.Status == http.StatusConflict
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrPairingRefused:
		return e.Status == http.StatusForbidden && e.Path == protocol.PathPair
	}
	return false
}

// Retryable says whether the same request may succeed later: a 5xx, a
// timeout (408) or a rate limit (429). Any other 4xx is a bug on one side
// or needs the operator.
func (e *HTTPError) Retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// Retryable says whether err is worth retrying with backoff: transport
// errors, timeouts, 5xx and answers that do not parse are; other 4xx
// answers and a cancelled context are not.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Retryable()
	}
	return true
}
