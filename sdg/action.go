package sdg

import "time"

// Action is what the engine asks the SIP layer to do next: Ring, Menu,
// Dial, DialIn or Voicemail, each waiting for events carrying its Step; Connected or
// Fail, which end the call's routing; or Wait, which asks for nothing new.
type Action interface{ action() }

// Ring rings users' phones: for a simultaneous group all available members
// at once, for a hunt (sequential, rotating, longest_idle) one member, for a
// user route that user. The caller reports Answered (first answer wins: it
// cancels the other legs with "Call completed elsewhere") or NoAnswer when
// Timeout passes or every leg failed.
type Ring struct {
	Step  int
	Users []string
	// Timeout is how long the legs ring; the caller runs the timer.
	Timeout time.Duration
	// DisplayName is the caller ID name presented to the users: the name of
	// the innermost SDG the call passed through, "" when none (then the
	// caller's own name is shown).
	DisplayName string
	// Group is the group's key, "" for a user route: the route's place in
	// the configuration, "sdg:ID/route" or "number:+E164/route" ("call" for
	// the route a call starts at), followed by ".no_answer", ".no_input" or
	// ".options.K" for nested routes. It keys rotating groups' state.
	Group    string
	Strategy string // the group's strategy, "" for a user route
}

// Menu plays an IVR prompt and collects one digit. The caller answers the
// call if it has not yet, plays Notice (if any) then Prompt, and reports
// Digit or InputTimeout. A digit pressed during the prompts counts and
// stops them (barge-in); Timeout runs from the end of the prompt.
type Menu struct {
	Step   int
	IVR    string // the IVR route's key, as Ring.Group
	Prompt string
	// Notice is a prompt to play before Prompt: PromptInvalid after a key
	// that is not an option, "" otherwise.
	Notice  string
	Timeout time.Duration
	// Attempt counts plays of this menu from 1; Attempts is the most there
	// will be (1 + retries). Timeouts and invalid keys each use one.
	Attempt, Attempts int
	// Keys lists the keys that are options, in order ("123#").
	Keys string
}

// Dial sends the call to a number that is not one of the account's
// numbers[] entries (those are followed inside the engine). The caller
// resolves it with the dial plan: a user's DID rings that user, any other
// number goes out through the trunks. It reports Answered, or NoAnswer with
// the final status when the call fails.
type Dial struct {
	Step        int
	Number      string
	DisplayName string // as Ring.DisplayName
}

// DialIn joins the caller to a call in progress (a conference route). The
// caller answers the call if it has not yet, asks for the PIN of a live
// call (PINPrompt; PINInvalidPrompt before asking again after a wrong
// one), collects keys until # (at most MaxPINDigits, each within
// PINDigitTimeout) at most PINAttempts times, and joins the caller to the
// call whose PIN it is, playing JoiningPrompt first. Which PINs are valid
// is the SIP layer's: they belong to live calls, not to the
// configuration. It reports Answered when the caller joined, NoAnswer
// when they did not (wrong PINs, no input, no such call), or Hangup.
type DialIn struct {
	Step int
}

// Voicemail sends the caller to a mailbox (a voicemail route, which ends
// the walk). Mailbox is a user's or an SDG's id. The caller answers the
// call if it has not yet, plays the mailbox's greeting and a beep and
// records a message; it reports Answered once the caller reached the
// mailbox (whether or not they left a message), NoAnswer with a status
// when the mailbox cannot take the call (it is disabled, the node has no
// media), or Hangup.
type Voicemail struct {
	Step    int
	Mailbox string
}

// Connected ends the routing: someone answered.
type Connected struct {
	Member string // the user who answered; "" for a Dial or a DialIn
	Number string // the number dialled, for a Dial
	// DialIn is true when the caller joined a call in progress (DialIn).
	DialIn bool
	// Voicemail is the mailbox the caller reached (Voicemail), "" else.
	Voicemail string
	Path      []string // the route taken (Call.Path)
	// Rotation, when the member answered a rotating group, is the state
	// to store for the group's next call.
	Rotation *Rotation
}

// Fail ends the routing without an answer. Status is the SIP final
// response for a caller not yet answered (after a Menu the call is
// answered: the caller hangs up instead). Err wraps one of the package's
// sentinel errors and says why, for logs and call records.
type Fail struct {
	Status int
	Err    error
	Path   []string
}

// Reason is Err's text.
func (f Fail) Reason() string {
	if f.Err == nil {
		return ""
	}
	return f.Err.Error()
}

// Wait asks for nothing new: the event was stale (another step's), did not
// fit the current action, or came after the end. Reason says which.
type Wait struct {
	Reason string
}

func (Ring) action()      {}
func (Menu) action()      {}
func (Dial) action()      {}
func (DialIn) action()    {}
func (Voicemail) action() {}
func (Connected) action() {}
func (Fail) action()      {}
func (Wait) action()      {}
