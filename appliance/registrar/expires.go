package registrar

import (
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The lifetime rules a registration (RFC 3261 10.3) and a subscription
// (RFC 6665 4.2.1.1) share: a request under the minimum is refused (423
// Interval Too Brief, with Min-Expires), a longer one is cut to the
// maximum, and one that names none gets the default.

// ExpiresDefaults fills the lifetime bounds left zero: minimum 60 s,
// maximum and default 3600 s.
func ExpiresDefaults(minExp, maxExp, defExp *time.Duration) {
	if *minExp == 0 {
		*minExp = 60 * time.Second
	}
	if *maxExp == 0 {
		*maxExp = time.Hour
	}
	if *defExp == 0 {
		*defExp = time.Hour
	}
}

// GrantExpires is the lifetime, in seconds, of a request that asks for
// secs (-1: it names none, and gets defExp): 0 ends the registration or
// subscription. One under minExp is too brief: ok is false and
// minExpires is the header to answer 423 with. The caller cuts what it
// grants to its maximum.
func GrantExpires(secs int, minExp, defExp time.Duration) (granted int, minExpires sip.Header, ok bool) {
	if secs < 0 {
		secs = int(defExp / time.Second)
	}
	if secs > 0 && time.Duration(secs)*time.Second < minExp {
		return 0, sip.NewHeader("Min-Expires", strconv.Itoa(int(minExp/time.Second))), false
	}
	return secs, nil, true
}
