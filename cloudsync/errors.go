package cloudsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
	// ErrTLS: the TLS handshake with the cloud failed: its certificate is
	// not trusted, is for other names, has expired, or the two sides
	// agree on nothing. A *TLSError says which in plain words. Retried
	// with backoff, as other transport errors are: a certificate renewed
	// on the cloud is picked up by the next attempt.
	ErrTLS = errors.New("TLS with the cloud failed")
	// ErrOverridesUnsupported: the cloud does not take SDG override
	// reports (404, 405 or 501 on /v1/sync/overrides: an implementation
	// of the protocol from before them). Not worth retrying soon.
	ErrOverridesUnsupported = errors.New("the cloud does not take SDG override reports")
)

// TLSError is a failed TLS handshake with the cloud, said for an admin:
// what is wrong, the crypto/tls or crypto/x509 error that says so, and
// what to do. It matches ErrTLS and unwraps to that error.
type TLSError struct {
	Problem string // what is wrong: "the cloud's certificate is not trusted"
	Err     error  // the crypto/tls or crypto/x509 error
	Fix     string // what to do about it
}

func (e *TLSError) Error() string {
	msg := e.Problem + ": " + e.Err.Error()
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *TLSError) Unwrap() error { return e.Err }

// Is matches ErrTLS.
func (e *TLSError) Is(target error) bool { return target == ErrTLS }

// classifyTransport turns a TLS failure of the transport into a
// *TLSError, keeping the *url.Error (method and URL) around it; any other
// error is returned as it is.
func classifyTransport(err error) error {
	te := tlsError(err)
	if te == nil {
		return err
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &url.Error{Op: ue.Op, URL: ue.URL, Err: te}
	}
	return te
}

// tlsError says what is wrong when err is a TLS failure; nil otherwise.
func tlsError(err error) *TLSError {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if e, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return &TLSError{Problem: "the cloud's certificate is not trusted", Err: e,
			Fix: "if the cloud uses a private CA, set SSL_CERT_FILE to its certificate (PEM) in the appliance's environment (docs/cloud.md)"}
	}
	if e, ok := errors.AsType[x509.HostnameError](err); ok {
		return &TLSError{Problem: "the cloud's certificate is for other names than the host in the cloud URL", Err: e,
			Fix: "use a cloud URL with a name the certificate holds, or have the certificate reissued with this one"}
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if e.Reason == x509.Expired {
			return &TLSError{Problem: "the cloud's certificate has expired or is not valid yet", Err: e,
				Fix: "renew the cloud's certificate, and check this appliance's clock"}
		}
		return &TLSError{Problem: "the cloud's certificate is not valid", Err: e,
			Fix: "have the cloud's certificate reissued as a TLS server certificate"}
	}
	if e, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return &TLSError{Problem: "the cloud's certificate is not valid", Err: e,
			Fix: "have the cloud's certificate reissued, or check the appliance's trusted CAs (SSL_CERT_FILE)"}
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return &TLSError{Problem: "the cloud answers plain HTTP on this port", Err: http.ErrSchemeMismatch,
			Fix: "use http:// in the cloud URL, or the cloud's HTTPS port"}
	}
	if e, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return &TLSError{Problem: "the cloud does not speak TLS on this port", Err: e,
			Fix: "use the cloud's HTTPS port, or http:// if it serves plain HTTP"}
	}
	if e, ok := errors.AsType[*net.OpError](err); ok && e.Op == "remote error" {
		// crypto/tls reports an alert from the peer so; its type is
		// unexported.
		return &TLSError{Problem: "the cloud refused the TLS handshake", Err: e,
			Fix: "check that the cloud accepts TLS 1.2 or later and does not require a client certificate"}
	}
	// Other handshake failures of crypto/tls are untyped; they all say
	// "tls: ...".
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), "tls: ") {
			return &TLSError{Problem: "the TLS handshake with the cloud failed", Err: e,
				Fix: "check that the cloud URL names its HTTPS port and that it accepts TLS 1.2 or later"}
		}
	}
	return nil
}

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
	case ErrOverridesUnsupported:
		return e.Path == protocol.PathOverrides && (e.Status == http.StatusNotFound ||
			e.Status == http.StatusMethodNotAllowed || e.Status == http.StatusNotImplemented)
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
// errors (ErrTLS among them), timeouts, 5xx and answers that do not parse
// are; other 4xx
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
