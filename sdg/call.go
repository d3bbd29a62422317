package sdg

import (
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-voice/outpost/account"
)

// waiting is what the call waits for.
type waiting int

const (
	waitNothing   waiting = iota // over: Connected or Fail was returned
	waitUser                     // a user route's Ring
	waitGroup                    // a group's Ring
	waitMenu                     // an IVR's Menu
	waitDial                     // a number route's Dial
	waitDialIn                   // a conference route's DialIn
	waitVoicemail                // a voicemail route's Voicemail
)

// Call is one call's walk through the routes. It is not safe for
// concurrent use: the caller feeds it events one at a time.
type Call struct {
	env  Env
	step int
	wait waiting

	path    []string
	nodes   []string // "sdg:ID" and "number:+E164" entered, in order
	sdgs    int      // how many of nodes are SDGs
	display string   // the innermost SDG's name
	taken   map[*account.Route]bool

	user   string // waitUser: the user rung; waitVoicemail: the mailbox
	number string // waitDial: the number dialled
	grp    group  // waitGroup
	menu   menu   // waitMenu
	result Action // Connected or Fail once over
}

// Start begins routing a call at root and returns the call and its first
// action. An internal call to an SDG's extension, or an inbound call to an
// SDG's number, starts at Route{Type: RouteSDG, ID: sdg id}; an inbound
// call to a numbers[] entry at Route{Type: RouteNumber, Number: the entry}.
func Start(env Env, root account.Route) (*Call, Action) {
	c := &Call{env: env, taken: make(map[*account.Route]bool)}
	return c, c.enter(&root, "call")
}

// Next turns an event about the current action into the next action.
func (c *Call) Next(ev Event) Action {
	if c.wait == waitNothing {
		return Wait{Reason: "routing is over"}
	}
	if _, ok := ev.(Hangup); ok {
		return c.fail(statusTerminated, fmt.Errorf("while waiting at step %d: %w", c.step, ErrHangup))
	}
	if s, ok := eventStep(ev); !ok {
		return Wait{Reason: fmt.Sprintf("unknown event %T", ev)}
	} else if s != c.step {
		return Wait{Reason: fmt.Sprintf("stale event for step %d; the current step is %d", s, c.step)}
	}
	switch c.wait {
	case waitUser:
		return c.userEvent(ev)
	case waitGroup:
		return c.groupEvent(ev)
	case waitMenu:
		return c.menuEvent(ev)
	case waitDialIn:
		return c.dialInEvent(ev)
	case waitVoicemail:
		return c.voicemailEvent(ev)
	default:
		return c.dialEvent(ev)
	}
}

func eventStep(ev Event) (int, bool) {
	switch e := ev.(type) {
	case Answered:
		return e.Step, true
	case NoAnswer:
		return e.Step, true
	case Digit:
		return e.Step, true
	case InputTimeout:
		return e.Step, true
	}
	return 0, false
}

// Done says whether routing is over: Connected or Fail was returned.
func (c *Call) Done() bool { return c.wait == waitNothing }

// Result is the Connected or Fail that ended routing, nil before then.
func (c *Call) Result() Action { return c.result }

// Path is the route taken so far, one hop a string:
//
//	sdg:ID                  an SDG entered
//	number:+E164            a numbers[] entry entered
//	group:STRATEGY          a group rung; " no_answer" is added when it
//	                        rang out or nobody was available
//	member:ID               the member who answered the group
//	ivr:PROMPT              an IVR menu; " option K" or " no_input" is
//	                        added when the caller leaves it
//	user:ID                 a user route rung
//	dial:+E164              a number dialled out
//	conference              a conference route: the caller was asked for
//	                        the PIN of a call in progress
//	voicemail:ID            a voicemail route: the caller was sent to
//	                        mailbox ID
func (c *Call) Path() []string { return slices.Clone(c.path) }

// Step is the current action's step.
func (c *Call) Step() int { return c.step }

// enter walks into route r, found at the key loc, and returns the action
// that waits there. SDG routes and numbers[] entries are followed in place.
func (c *Call) enter(r *account.Route, loc string) Action {
	for {
		if r == nil {
			return c.fail(statusServerError, fmt.Errorf("%s: %w: no route set", loc, ErrBadRoute))
		}
		if c.taken[r] {
			return c.fail(statusLoop, fmt.Errorf("%s: %w: the walk came back to a route it already took (%s)",
				loc, ErrLoop, c.trail()))
		}
		if len(c.taken) >= maxRoutes {
			return c.fail(statusTooManyHops, fmt.Errorf("%s: %w: more than %d routes on one call (%s)",
				loc, ErrTooDeep, maxRoutes, c.trail()))
		}
		c.taken[r] = true
		switch r.Type {
		case account.RouteUser:
			return c.ringUser(r, loc)
		case account.RouteGroup:
			return c.startGroup(r, loc)
		case account.RouteIVR:
			return c.startMenu(r, loc)
		case account.RouteNumber:
			n, ok := c.env.number(r.Number)
			if !ok {
				return c.dial(r, loc)
			}
			node := "number:" + r.Number
			if a := c.checkNode(node, loc, false); a != nil {
				return a
			}
			r, loc = n.Route, node+"/route"
		case account.RouteConference:
			return c.dialIn()
		case account.RouteVoicemail:
			return c.voicemail(r, loc)
		case account.RouteSDG:
			if r.ID == "" {
				return c.fail(statusServerError, fmt.Errorf("%s: %w: an sdg route needs an id", loc, ErrBadRoute))
			}
			s, ok := c.env.sdg(r.ID)
			if !ok {
				return c.fail(statusNotFound, fmt.Errorf("%s: %w: no sdg has id %q", loc, ErrNotFound, r.ID))
			}
			node := "sdg:" + r.ID
			if a := c.checkNode(node, loc, true); a != nil {
				return a
			}
			c.display = s.Name
			r, loc = s.Route, node+"/route"
		default:
			return c.fail(statusServerError, fmt.Errorf("%s: %w: unknown route type %q", loc, ErrBadRoute, r.Type))
		}
	}
}

// checkNode enters an SDG or numbers[] entry, unless that loops or nests
// SDGs too deep; then it returns the Fail.
func (c *Call) checkNode(node, loc string, isSDG bool) Action {
	if slices.Contains(c.nodes, node) {
		return c.fail(statusLoop, fmt.Errorf("%s: %w: %s -> %s", loc, ErrLoop, strings.Join(c.nodes, " -> "), node))
	}
	if isSDG && c.sdgs >= account.MaxSDGDepth {
		return c.fail(statusTooManyHops, fmt.Errorf("%s: %w: %s -> %s passes %d sdgs (at most %d)",
			loc, ErrTooDeep, strings.Join(c.nodes, " -> "), node, c.sdgs+1, account.MaxSDGDepth))
	}
	if isSDG {
		c.sdgs++
	}
	c.nodes = append(c.nodes, node)
	c.path = append(c.path, node)
	return nil
}

// trail spells the SDGs and numbers entered, for messages.
func (c *Call) trail() string {
	if len(c.nodes) == 0 {
		return "no sdg entered"
	}
	return "via " + strings.Join(c.nodes, " -> ")
}

// ringUser rings a user route's user if they are available; a user route
// has no fallback, so an unavailable user ends the call.
func (c *Call) ringUser(r *account.Route, loc string) Action {
	if r.ID == "" {
		return c.fail(statusServerError, fmt.Errorf("%s: %w: a user route needs an id", loc, ErrBadRoute))
	}
	c.path = append(c.path, "user:"+r.ID)
	switch st := c.env.state(r.ID); {
	case st == Busy:
		return c.fail(statusBusy, fmt.Errorf("%s: user %s: %w", loc, r.ID, ErrBusy))
	case !st.Available():
		return c.fail(statusUnavailable, fmt.Errorf("%s: user %s is %s: %w", loc, r.ID, st, ErrUnavailable))
	}
	c.wait, c.user = waitUser, r.ID
	return Ring{Step: c.next(), Users: []string{r.ID}, Timeout: UserRingTimeout, DisplayName: c.display}
}

func (c *Call) userEvent(ev Event) Action {
	switch e := ev.(type) {
	case Answered:
		if e.User != c.user {
			return Wait{Reason: fmt.Sprintf("answer from %q, who was not rung", e.User)}
		}
		return c.connect(Connected{Member: c.user})
	case NoAnswer:
		return c.fail(failStatus(e.Status), fmt.Errorf("user %s: %w", c.user, ErrNoAnswer))
	}
	return Wait{Reason: fmt.Sprintf("%T while ringing a user", ev)}
}

// dial sends the call out to a number route's number.
func (c *Call) dial(r *account.Route, loc string) Action {
	if r.Number == "" {
		return c.fail(statusServerError, fmt.Errorf("%s: %w: a number route needs a number", loc, ErrBadRoute))
	}
	c.path = append(c.path, "dial:"+r.Number)
	c.wait, c.number = waitDial, r.Number
	return Dial{Step: c.next(), Number: r.Number, DisplayName: c.display}
}

func (c *Call) dialEvent(ev Event) Action {
	switch e := ev.(type) {
	case Answered:
		return c.connect(Connected{Number: c.number})
	case NoAnswer:
		return c.fail(failStatus(e.Status), fmt.Errorf("dial %s: %w with status %d", c.number, ErrDialFailed, e.Status))
	}
	return Wait{Reason: fmt.Sprintf("%T while dialling", ev)}
}

// dialIn asks the caller for the PIN of a call in progress (a conference
// route, which ends the walk: there is no fallback).
func (c *Call) dialIn() Action {
	c.path = append(c.path, "conference")
	c.wait = waitDialIn
	return DialIn{Step: c.next()}
}

func (c *Call) dialInEvent(ev Event) Action {
	switch e := ev.(type) {
	case Answered:
		return c.connect(Connected{DialIn: true})
	case NoAnswer:
		return c.fail(failStatus(e.Status), fmt.Errorf("conference: %w", ErrNoPIN))
	}
	return Wait{Reason: fmt.Sprintf("%T while asking for a PIN", ev)}
}

// voicemail sends the caller to a voicemail route's mailbox (which ends
// the walk: there is no fallback).
func (c *Call) voicemail(r *account.Route, loc string) Action {
	if r.ID == "" {
		return c.fail(statusServerError, fmt.Errorf("%s: %w: a voicemail route needs an id", loc, ErrBadRoute))
	}
	c.path = append(c.path, "voicemail:"+r.ID)
	c.wait, c.user = waitVoicemail, r.ID
	return Voicemail{Step: c.next(), Mailbox: r.ID}
}

func (c *Call) voicemailEvent(ev Event) Action {
	switch e := ev.(type) {
	case Answered:
		return c.connect(Connected{Voicemail: c.user})
	case NoAnswer:
		return c.fail(failStatus(e.Status), fmt.Errorf("voicemail %s: %w", c.user, ErrNoVoicemail))
	}
	return Wait{Reason: fmt.Sprintf("%T while at a mailbox", ev)}
}

// next starts a new step and returns it.
func (c *Call) next() int {
	c.step++
	return c.step
}

func (c *Call) connect(a Connected) Action {
	a.Path = c.Path()
	c.wait, c.result = waitNothing, a
	return a
}

func (c *Call) fail(status int, err error) Action {
	a := Fail{Status: status, Err: err, Path: c.Path()}
	c.wait, c.result = waitNothing, a
	return a
}
