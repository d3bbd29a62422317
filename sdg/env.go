package sdg

import (
	"time"

	"github.com/outpost-voice/outpost/account"
)

// Defaults for values a route leaves at zero or below. Validated snapshots
// always set them; the engine also runs on hand-built routes.
const (
	// DefaultRingTimeout is a group's ring_timeout_s when it is not set:
	// how long each member rings in a hunt, or all of them together in a
	// simultaneous group.
	DefaultRingTimeout = 20 * time.Second
	// UserRingTimeout is how long a user route rings that user's phones.
	UserRingTimeout = 30 * time.Second
	// DefaultInputTimeout is an IVR's timeout_s when it is not set: how
	// long to wait for a digit once the prompt has finished.
	DefaultInputTimeout = 5 * time.Second
	// PromptInvalid is the built-in prompt played before an IVR prompt is
	// repeated after a key that is not one of its options.
	PromptInvalid = "invalid-option"
)

// A DialIn's PIN entry (conference routes): the built-in prompts and the
// limits the SIP layer applies.
const (
	// PINPrompt asks for the PIN: "Please enter the conference PIN,
	// followed by the pound key."
	PINPrompt = "conference-pin"
	// PINInvalidPrompt comes before PINPrompt again after a wrong PIN.
	PINInvalidPrompt = "conference-pin-invalid"
	// JoiningPrompt is played before the caller joins the call.
	JoiningPrompt = "conference-joining"
	// PINAttempts is how many PINs a caller may enter on one call (a
	// timeout without a key uses one too); then they hear goodbye.
	PINAttempts = 3
	// MaxPINDigits ends a PIN without its #.
	MaxPINDigits = 8
	// PINDigitTimeout is how long the caller has for each key, the first
	// counted from the end of the prompt; when it passes, the keys
	// entered so far are the PIN (none: no input).
	PINDigitTimeout = 10 * time.Second
)

// maxRoutes bounds the routes one call may enter: as many SDGs as allowed,
// each with routes nested as deep as allowed. A walk goes only deeper, so a
// legal call never reaches it; a hand-built graph stops there.
const maxRoutes = account.MaxSDGDepth * (account.MaxRouteNesting + 1)

// Directory is the configuration the engine reads: the account's SDGs and
// numbers[] entries, from the snapshot in force.
type Directory interface {
	// SDG finds an SDG by id.
	SDG(id string) (account.SDG, bool)
	// Number finds a numbers[] entry by its E.164 number. A number route to
	// such an entry is followed internally, never dialled out.
	Number(e164 string) (account.Number, bool)
}

// MemberState is a user's live state, as the registrar and calls see it.
// The zero value is Unregistered, so an unknown user is never rung.
type MemberState int

// Member states.
const (
	Unregistered MemberState = iota // no registered phone
	Idle                            // registered, not on a call
	Ringing                         // registered, a call rings it
	Busy                            // on a call
	DND                             // do not disturb
)

var stateNames = [...]string{"unregistered", "idle", "ringing", "busy", "dnd"}

func (s MemberState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// Available says whether the engine rings a user in this state: idle and
// ringing users are rung (a second call shows as call waiting); busy,
// unregistered and do-not-disturb users are skipped.
func (s MemberState) Available() bool { return s == Idle || s == Ringing }

// Presence answers for users' live state. It is asked at every step, so a
// member who becomes busy during a hunt is skipped when their turn comes.
type Presence interface {
	// State is the user's state now.
	State(userID string) MemberState
	// LastCallEnd is when the user's last call ended; the zero time means
	// never, the idlest of all. longest_idle groups ring in this order.
	LastCallEnd(userID string) time.Time
}

// RotationState is what rotating groups remember between calls: the member
// who answered the group's last call, by group key (see Ring.Group). The
// caller stores each Connected.Rotation it is handed (replicated, so it
// survives a change of leader) and serves it back here.
type RotationState interface {
	LastAnswered(group string) string
}

// Rotation is an update of RotationState: Member answered the last call to
// the rotating group Group.
type Rotation struct {
	Group  string
	Member string
}

// Env is what a call reads besides its events. Directory and Presence are
// required in practice: without a Directory no SDG or numbers[] entry is
// found, without Presence every user counts as unregistered. Rotations may
// be nil: rotating groups then start with their first member.
type Env struct {
	Directory Directory
	Presence  Presence
	Rotations RotationState
}

func (e Env) sdg(id string) (account.SDG, bool) {
	if e.Directory == nil {
		return account.SDG{}, false
	}
	return e.Directory.SDG(id)
}

func (e Env) number(n string) (account.Number, bool) {
	if e.Directory == nil {
		return account.Number{}, false
	}
	return e.Directory.Number(n)
}

func (e Env) state(user string) MemberState {
	if e.Presence == nil || user == "" {
		return Unregistered
	}
	return e.Presence.State(user)
}

func (e Env) lastCallEnd(user string) time.Time {
	if e.Presence == nil {
		return time.Time{}
	}
	return e.Presence.LastCallEnd(user)
}

func (e Env) lastAnswered(group string) string {
	if e.Rotations == nil {
		return ""
	}
	return e.Rotations.LastAnswered(group)
}
