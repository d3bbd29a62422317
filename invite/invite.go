// Package invite owns the rules for adding participants to a live call
// (shared/ issue 8): who may invite whom, how an invitation ends, who owns
// the call, and what a participant who joins late sees. It is pure: no
// I/O, no goroutines, no clock (times come in), no SIP. The B2BUA keeps one
// Call per call that has invitations and does what the methods decide.
//
// An invitation is for another user (who must be registered and not busy),
// for an SDG group (its members ring; the first to accept joins), or a
// call-out to a phone number through the trunks. At most one invitation
// per invitee per call is active; invitations do not time out while the
// owner remains; an invitation ends when the owner cancels it, the owner
// leaves or hands ownership on, the call ends, or the invitee accepts or
// declines. Only the owner invites, transfers, or ends the call for all.
package invite

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Kinds of invitation.
const (
	KindUser    = "user"
	KindGroup   = "group"
	KindCallout = "callout"
)

// States of an invitation. Every state but Pending is final.
const (
	Pending  = "pending"  // ringing the invitee
	Accepted = "accepted" // the invitee joined
	Declined = "declined" // the invitee said no (or a call-out did not press 1)
	Failed   = "failed"   // no answer, unreachable, or the route failed
	Ended    = "ended"    // cancelled, or ended with the owner's ownership or the call
)

// Why an invitation ended (Invitation.Reason).
const (
	ReasonAccepted     = "accepted"
	ReasonDeclined     = "declined"
	ReasonNoPress1     = "did not press 1"
	ReasonNoAnswer     = "no answer"
	ReasonUnreachable  = "unreachable"
	ReasonCancelled    = "cancelled by the owner"
	ReasonOwnerLeft    = "the owner left"
	ReasonOwnerChanged = "the owner handed the call on"
	ReasonCallEnded    = "the call ended"
)

// Errors of the rules.
var (
	ErrNotOwner       = errors.New("only the call's owner can do this")
	ErrDuplicate      = errors.New("this invitee already has an active invitation to this call")
	ErrUnavailable    = errors.New("the user is not registered or is busy")
	ErrAlreadyIn      = errors.New("the invitee is already in the call")
	ErrNoInvitation   = errors.New("no such invitation")
	ErrNotActive      = errors.New("the invitation is not active")
	ErrNotRetryable   = errors.New("only a call-out that failed or was declined can be retried")
	ErrNotParticipant = errors.New("the new owner must be a user in the call")
	ErrBadRequest     = errors.New("bad invitation")
	ErrCallEnded      = errors.New("the call has ended")
)

// Request is an invitation the owner asks for.
type Request struct {
	Kind string
	User string // KindUser: the user's ID
	SDG  string // KindGroup: the SDG's ID
	Name string // KindCallout: the callee's display name (required)
	// Number is a KindCallout's number: E.164 with its country code,
	// optionally followed by "-" and digits sent as DTMF after the answer.
	Number string
}

// Invitation is one invitation of a call.
type Invitation struct {
	ID      string    `json:"id"`
	Kind    string    `json:"type"`
	User    string    `json:"user,omitempty"`
	SDG     string    `json:"sdg,omitempty"`
	Name    string    `json:"name,omitempty"`
	Number  string    `json:"number,omitempty"` // E.164, without the extension digits
	DTMF    string    `json:"dtmf,omitempty"`   // sent after the callee answers
	By      string    `json:"by"`               // the owner who sent it
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Joined  string    `json:"joined,omitempty"` // who accepted (a group's member)
	Created time.Time `json:"created"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Active reports whether the invitation still rings.
func (i *Invitation) Active() bool { return i.State == Pending }

// invitee names who an invitation is for; group invitations are each their
// own (the owner may send several to bring more members).
func (i *Invitation) invitee() string {
	switch i.Kind {
	case KindUser:
		return "user:" + i.User
	case KindCallout:
		return "number:" + i.Number
	}
	return "invitation:" + i.ID
}

// Participant is someone in the call.
type Participant struct {
	ID     string    `json:"id"`             // the B2BUA's name for the leg
	User   string    `json:"user,omitempty"` // a user's ID; empty for a caller from outside
	Name   string    `json:"name"`
	Number string    `json:"number,omitempty"`
	Joined time.Time `json:"joined"`
}

// Event is something that happened in the call, kept for those who join
// later.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // joined, left, invited, invitation-ended, owner, note
	Who  string    `json:"who,omitempty"`
	Text string    `json:"text"`
}

// HistoryWindow is how far back a participant who joins sees the call's
// events and notes.
const HistoryWindow = 5 * time.Minute

// Presence answers whether a user can be invited.
type Presence interface {
	// Available: registered and not busy.
	Available(userID string) bool
}

// Call is the invitation state of one call.
type Call struct {
	ID           string
	owner        string // user ID; "" when no user owns it (it then takes no invitations)
	participants []Participant
	invitations  []*Invitation
	events       []Event
	ended        bool
	nextID       int
}

// NewCall starts a call's state with its first participants; owner (a
// user ID among them) placed or answered it.
func NewCall(id, owner string, now time.Time, parts ...Participant) *Call {
	c := &Call{ID: id, owner: owner}
	for _, p := range parts {
		p.Joined = now
		c.participants = append(c.participants, p)
	}
	return c
}

// Owner is the owner's user ID.
func (c *Call) Owner() string { return c.owner }

// Participants lists who is in the call, in the order they joined.
func (c *Call) Participants() []Participant { return slices.Clone(c.participants) }

// Invitations lists every invitation, active and ended, oldest first.
func (c *Call) Invitations() []Invitation {
	out := make([]Invitation, len(c.invitations))
	for i, inv := range c.invitations {
		out[i] = *inv
	}
	return out
}

// Invitation finds one invitation.
func (c *Call) Invitation(id string) (Invitation, bool) {
	for _, inv := range c.invitations {
		if inv.ID == id {
			return *inv, true
		}
	}
	return Invitation{}, false
}

// Ended reports whether the call has ended.
func (c *Call) Ended() bool { return c.ended }

// IsOwner reports whether userID owns the call.
func (c *Call) IsOwner(userID string) bool { return userID != "" && userID == c.owner }

// CanTransfer and CanEnd: only the owner transfers the call or ends it
// for everyone; an invited participant only leaves.
func (c *Call) CanTransfer(userID string) bool { return c.IsOwner(userID) }

// CanEnd: see CanTransfer.
func (c *Call) CanEnd(userID string) bool { return c.IsOwner(userID) }

func (c *Call) hasUser(userID string) bool {
	return slices.ContainsFunc(c.participants, func(p Participant) bool { return p.User == userID })
}

// Invite records the owner's invitation, or says why it cannot be sent.
func (c *Call) Invite(by string, r Request, p Presence, now time.Time) (Invitation, error) {
	if c.ended {
		return Invitation{}, ErrCallEnded
	}
	if !c.IsOwner(by) {
		return Invitation{}, ErrNotOwner
	}
	inv := &Invitation{Kind: r.Kind, By: by, State: Pending, Created: now}
	switch r.Kind {
	case KindUser:
		if r.User == "" {
			return Invitation{}, fmt.Errorf("%w: a user invitation needs the user's id", ErrBadRequest)
		}
		if c.hasUser(r.User) {
			return Invitation{}, ErrAlreadyIn
		}
		inv.User = r.User
	case KindGroup:
		if r.SDG == "" {
			return Invitation{}, fmt.Errorf("%w: a group invitation needs the SDG's id", ErrBadRequest)
		}
		inv.SDG = r.SDG
	case KindCallout:
		if r.Name == "" {
			return Invitation{}, fmt.Errorf("%w: a call-out needs the callee's name", ErrBadRequest)
		}
		number, digits, err := ParseNumber(r.Number)
		if err != nil {
			return Invitation{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		inv.Name, inv.Number, inv.DTMF = r.Name, number, digits
	default:
		return Invitation{}, fmt.Errorf("%w: type must be user, group or callout", ErrBadRequest)
	}
	for _, other := range c.invitations {
		if other.Active() && other.Kind != KindGroup && other.invitee() == inv.invitee() {
			return Invitation{}, ErrDuplicate
		}
	}
	if r.Kind == KindUser && (p == nil || !p.Available(r.User)) {
		return Invitation{}, ErrUnavailable
	}
	c.nextID++
	inv.ID = fmt.Sprintf("%s-%d", c.ID, c.nextID)
	c.invitations = append(c.invitations, inv)
	c.log(now, "invited", by, describe(inv))
	return *inv, nil
}

// Retry sends a failed or declined call-out again, as a new invitation.
func (c *Call) Retry(by, id string, now time.Time) (Invitation, error) {
	old := c.find(id)
	if old == nil {
		return Invitation{}, ErrNoInvitation
	}
	if old.Kind != KindCallout || (old.State != Failed && old.State != Declined) {
		return Invitation{}, ErrNotRetryable
	}
	number := old.Number
	if old.DTMF != "" {
		number += "-" + old.DTMF
	}
	return c.Invite(by, Request{Kind: KindCallout, Name: old.Name, Number: number}, nil, now)
}

func (c *Call) find(id string) *Invitation {
	for _, inv := range c.invitations {
		if inv.ID == id {
			return inv
		}
	}
	return nil
}

// Cancel ends an active invitation at the owner's request.
func (c *Call) Cancel(by, id string, now time.Time) (Invitation, error) {
	if !c.IsOwner(by) {
		return Invitation{}, ErrNotOwner
	}
	inv := c.find(id)
	if inv == nil {
		return Invitation{}, ErrNoInvitation
	}
	if !inv.Active() {
		return Invitation{}, ErrNotActive
	}
	c.end(inv, Ended, ReasonCancelled, now)
	return *inv, nil
}

// Accept: the invitee (for a group, member who) joined as participant p.
// It fails, and p must not join, when the invitation is no longer active.
func (c *Call) Accept(id string, p Participant, now time.Time) error {
	inv := c.find(id)
	if inv == nil {
		return ErrNoInvitation
	}
	if !inv.Active() || c.ended {
		return ErrNotActive
	}
	inv.Joined = p.Name
	if p.User != "" {
		inv.Joined = p.User
	}
	c.end(inv, Accepted, ReasonAccepted, now)
	p.Joined = now
	c.participants = append(c.participants, p)
	c.log(now, "joined", p.User, p.Name+" joined")
	return nil
}

// Join: p joins without an invitation — a call the owner's phone merged
// into this one, or a caller who dialled in with the PIN; how says which,
// for the history. It fails once the call has ended.
func (c *Call) Join(p Participant, how string, now time.Time) error {
	if c.ended {
		return ErrCallEnded
	}
	if slices.ContainsFunc(c.participants, func(q Participant) bool { return q.ID == p.ID }) {
		return ErrAlreadyIn
	}
	p.Joined = now
	c.participants = append(c.participants, p)
	c.log(now, "joined", p.User, p.Name+" joined ("+how+")")
	return nil
}

// Decline: the invitee said no (reason ReasonDeclined or ReasonNoPress1),
// or could not be reached (state Failed, with ReasonNoAnswer or
// ReasonUnreachable). An invitation no longer active is left as it is.
func (c *Call) Decline(id, state, reason string, now time.Time) {
	if inv := c.find(id); inv != nil && inv.Active() {
		c.end(inv, state, reason, now)
	}
}

// Leave: participant id left. When the owner leaves, their invitations
// end and ownership passes to the user who joined earliest among those
// left (none: the call has no owner). It returns the invitations it ended.
func (c *Call) Leave(id string, now time.Time) []Invitation {
	i := slices.IndexFunc(c.participants, func(p Participant) bool { return p.ID == id })
	if i < 0 {
		return nil
	}
	p := c.participants[i]
	c.participants = slices.Delete(c.participants, i, i+1)
	c.log(now, "left", p.User, p.Name+" left")
	if p.User == "" || p.User != c.owner || c.hasUser(p.User) {
		return nil
	}
	ended := c.endAll(ReasonOwnerLeft, now)
	c.owner = ""
	for _, q := range c.participants {
		if q.User != "" {
			c.owner = q.User
			c.log(now, "owner", q.User, q.Name+" owns the call")
			break
		}
	}
	return ended
}

// HandOver makes to (a user in the call) the owner; the old owner's
// invitations end.
func (c *Call) HandOver(by, to string, now time.Time) ([]Invitation, error) {
	if !c.IsOwner(by) {
		return nil, ErrNotOwner
	}
	if !c.hasUser(to) {
		return nil, ErrNotParticipant
	}
	if to == by {
		return nil, nil
	}
	ended := c.endAll(ReasonOwnerChanged, now)
	c.owner = to
	c.log(now, "owner", to, "ownership handed to "+to)
	return ended, nil
}

// End: the call is over; every active invitation ends with it.
func (c *Call) End(now time.Time) []Invitation {
	if c.ended {
		return nil
	}
	c.ended = true
	return c.endAll(ReasonCallEnded, now)
}

// Note adds a participant's note to the call's events.
func (c *Call) Note(who, text string, now time.Time) { c.log(now, "note", who, text) }

// History is the events of the last HistoryWindow before now: what a
// participant who joins now sees.
func (c *Call) History(now time.Time) []Event {
	from := now.Add(-HistoryWindow)
	i := slices.IndexFunc(c.events, func(e Event) bool { return !e.At.Before(from) })
	if i < 0 {
		return nil
	}
	return slices.Clone(c.events[i:])
}

func (c *Call) endAll(reason string, now time.Time) []Invitation {
	var out []Invitation
	for _, inv := range c.invitations {
		if inv.Active() {
			c.end(inv, Ended, reason, now)
			out = append(out, *inv)
		}
	}
	return out
}

func (c *Call) end(inv *Invitation, state, reason string, now time.Time) {
	inv.State, inv.Reason, inv.Ended = state, reason, now
	c.log(now, "invitation-ended", inv.By, describe(inv)+": "+reason)
}

func (c *Call) log(now time.Time, kind, who, text string) {
	c.events = append(c.events, Event{At: now, Kind: kind, Who: who, Text: text})
	// Older events than any joiner will see are dropped, beyond a floor
	// that keeps a busy call's memory bounded.
	if len(c.events) > 256 {
		from := now.Add(-HistoryWindow)
		i := slices.IndexFunc(c.events, func(e Event) bool { return !e.At.Before(from) })
		if i < 0 {
			i = len(c.events)
		}
		c.events = slices.Delete(c.events, 0, max(i, len(c.events)-256))
	}
}

func describe(inv *Invitation) string {
	switch inv.Kind {
	case KindUser:
		return "invitation of user " + inv.User
	case KindGroup:
		return "invitation of group " + inv.SDG
	}
	return "call-out to " + inv.Name + " at " + inv.Number
}
