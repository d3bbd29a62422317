package sdg

import "errors"

// Why a call failed; Fail.Err wraps one of these (check with errors.Is).
var (
	ErrNoAnswer    = errors.New("no answer")           // a group or user rang out, or nobody was available
	ErrUnavailable = errors.New("user unavailable")    // a user route's user is unregistered or on do-not-disturb
	ErrBusy        = errors.New("user busy")           // a user route's user is busy
	ErrNoInput     = errors.New("no valid input")      // an IVR used all attempts and has no no_input
	ErrDialFailed  = errors.New("number failed")       // a number route's outbound call failed
	ErrNoPIN       = errors.New("no valid pin")        // a conference route's caller did not join a call
	ErrNoVoicemail = errors.New("mailbox unavailable") // a voicemail route's mailbox could not take the call
	ErrLoop        = errors.New("route loop")          // the walk came back to where it had been
	ErrTooDeep     = errors.New("sdgs nested too deep")
	ErrNotFound    = errors.New("sdg not found")
	ErrBadRoute    = errors.New("invalid route")
	ErrHangup      = errors.New("caller hung up")
)

// SIP statuses of the failures.
const (
	statusNotFound    = 404
	statusUnavailable = 480
	statusBusy        = 486
	statusLoop        = 482
	statusTooManyHops = 483
	statusTerminated  = 487
	statusServerError = 500
)

// failStatus is a leg's failure status passed on to the caller, or 480
// when the legs gave none (a timeout) or something that is not a failure.
func failStatus(s int) int {
	if s >= 400 && s <= 699 {
		return s
	}
	return statusUnavailable
}
