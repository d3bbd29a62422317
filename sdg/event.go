package sdg

// Event is what the SIP layer reports about the current action. Every
// event but Hangup carries the Step of the action it answers; events for
// another step are stale and ignored, so a timer that fires after an
// answer does no harm.
type Event interface{ event() }

// Answered: User answered a Ring (ignored if User was not rung), the
// number of a Dial answered, the caller of a DialIn joined the call, or
// the caller of a Voicemail reached the mailbox (User is then ignored).
type Answered struct {
	Step int
	User string
}

// NoAnswer: a Ring's Timeout passed or every leg failed, a Dial failed,
// or the caller of a DialIn did not join. Status is the SIP final status
// the legs failed with, 0 on a timeout; a user route, a Dial or a DialIn
// that fails ends the call with it (480 if 0).
type NoAnswer struct {
	Step   int
	Status int
}

// Digit: the caller pressed Key ("0"-"9", "*", "#") during a Menu.
type Digit struct {
	Step int
	Key  string
}

// InputTimeout: a Menu's Timeout passed with no digit.
type InputTimeout struct {
	Step int
}

// Hangup: the caller hung up (or the call was torn down) before routing
// ended. It ends the routing with a Fail (487) for the record.
type Hangup struct{}

func (Answered) event()     {}
func (NoAnswer) event()     {}
func (Digit) event()        {}
func (InputTimeout) event() {}
func (Hangup) event()       {}
