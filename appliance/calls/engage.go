package calls

import (
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Engagements: a user's calls as the embeddable call widget sees them
// (../shared/contract/embed-events.md). Every call a user places, is rung
// for or answers on this node is an engagement, named by its call
// record's ID; the B2BUA tells each user's subscribers what happens to
// their engagements, and acts on them for the user (control.go).

// Engagement is one of a user's calls.
type Engagement struct {
	ID        string    `json:"engagementId"`
	Direction string    `json:"direction"` // "inbound" or "outbound", for this user
	From      string    `json:"from"`      // the caller's extension, username or number
	To        string    `json:"to"`        // what was dialled, or the callee
	Queue     string    `json:"queueName"` // the SDG the call came through, if any
	State     string    `json:"state"`     // ringing, connected, held, ended
	Created   time.Time `json:"createTs"`
	Accepted  time.Time `json:"acceptTs,omitzero"`
	Held      bool      `json:"hold"`
	Muted     bool      `json:"mute"`
}

// Engagement states.
const (
	EngDialing   = "dialing" // placed, the callee not alerted yet
	EngRinging   = "ringing"
	EngConnected = "connected"
	EngHeld      = "held" // connected, the other party on hold
	EngEnded     = "ended"
)

// Kinds of engagement event.
const (
	EvStarted      = "outbound-started" // the user placed a call (from a phone or the widget)
	EvRinging      = "ringing"          // a call rings the user, or the user's call rings its callee
	EvConnected    = "connected"        // answered
	EvEnded        = "ended"            // a connected call ended
	EvNotConnected = "not-connected"    // missed, rejected, failed: never connected for this user
	EvCallLog      = "call-log"         // the call's record, once it is closed
	EvChanged      = "changed"          // hold or mute changed
	EvAgentStatus  = "agent-status"     // the user's agent status changed
)

// EngagementEvent is one thing that happened to one of a user's calls.
type EngagementEvent struct {
	Kind       string
	Engagement Engagement
	// Status and Reason: why a call did not connect (the SIP status and
	// the record's disposition).
	Status int
	Reason string
	// Record is the closed call record (EvCallLog).
	Record *store.CallRecord
	// AgentStatus is the user's agent status (EvAgentStatus).
	AgentStatus int
}

// Agent statuses (embed-events.md, zcc-agent-status-notification).
const (
	AgentOffline  = 0
	AgentReady    = 1
	AgentNotReady = 2
	AgentOccupied = 3
)

// Errors of the actions on engagements.
var (
	// ErrNoEngagement: the user has no such engagement (or it is not in a
	// state the action applies to).
	ErrNoEngagement = errors.New("no such engagement for this user")
	// ErrNotSupported: the action is not available for this call.
	ErrNotSupported = errors.New("not supported for this call")
)

// engagements is the hub: each user's live engagements and subscribers,
// by SIP username.
type engagements struct {
	mu     sync.Mutex
	active map[string]map[string]*Engagement // username -> engagement ID -> engagement
	// byID is every user a call engaged, live or not, until its record
	// closes: each gets the call log.
	byID  map[string]map[string]*Engagement
	subs  map[string]map[chan EngagementEvent]struct{}
	agent map[string]int // username -> agent status set by the user (absent: Ready)
}

// subscriberBuffer is how many events a subscriber may fall behind by;
// past it, events are dropped for that subscriber (it re-reads the state
// with Engagements).
const subscriberBuffer = 64

// Subscribe returns the events of username's engagements from now on,
// and a function that ends the subscription.
func (b *B2BUA) Subscribe(username string) (<-chan EngagementEvent, func()) {
	h := &b.engaged
	ch := make(chan EngagementEvent, subscriberBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[string]map[chan EngagementEvent]struct{}{}
	}
	if h.subs[username] == nil {
		h.subs[username] = map[chan EngagementEvent]struct{}{}
	}
	h.subs[username][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[username], ch)
			if len(h.subs[username]) == 0 {
				delete(h.subs, username)
			}
			h.mu.Unlock()
		})
	}
}

// Engagements lists username's live engagements, oldest first.
func (b *B2BUA) Engagements(username string) []Engagement {
	h := &b.engaged
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Engagement, 0, len(h.active[username]))
	for _, e := range h.active[username] {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// engagement returns a copy of username's engagement id.
func (b *B2BUA) engagement(username, id string) (Engagement, bool) {
	h := &b.engaged
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.active[username][id]
	if e == nil {
		return Engagement{}, false
	}
	return *e, true
}

// engage records a change to username's engagement e.ID (update edits
// it; a new one starts as e) and tells the subscribers kind; an EvEnded
// or EvNotConnected event forgets it. A user without subscribers has
// their engagements tracked all the same: a widget opened mid-call sees
// them.
func (b *B2BUA) engage(username string, e Engagement, kind string, update func(*Engagement), ev EngagementEvent) {
	if username == "" || e.ID == "" {
		return
	}
	h := &b.engaged
	h.mu.Lock()
	before := len(h.active[username])
	if h.active == nil {
		h.active = map[string]map[string]*Engagement{}
	}
	m := h.active[username]
	if m == nil {
		m = map[string]*Engagement{}
		h.active[username] = m
	}
	cur := m[e.ID]
	if cur == nil {
		cur = &e
		m[e.ID] = cur
		if h.byID == nil {
			h.byID = map[string]map[string]*Engagement{}
		}
		if h.byID[e.ID] == nil {
			h.byID[e.ID] = map[string]*Engagement{}
		}
		h.byID[e.ID][username] = cur
	}
	if update != nil {
		update(cur)
	}
	ev.Kind, ev.Engagement = kind, *cur
	if kind == EvEnded || kind == EvNotConnected {
		h.forgetLocked(username, e.ID)
	}
	h.sendLocked(username, ev)
	h.occupiedLocked(username, before)
	h.mu.Unlock()
}

// occupiedLocked tells username's subscribers their agent status when
// they went from no call to one (Occupied) or back (what they set).
func (h *engagements) occupiedLocked(username string, before int) {
	after := len(h.active[username])
	if (before == 0) == (after == 0) {
		return
	}
	status := AgentOccupied
	if after == 0 {
		status = AgentReady
		if s, ok := h.agent[username]; ok {
			status = s
		}
	}
	h.sendLocked(username, EngagementEvent{Kind: EvAgentStatus, AgentStatus: status})
}

// forgetLocked drops username's engagement id from the live ones (the
// call log still goes to them).
func (h *engagements) forgetLocked(username, id string) {
	if m := h.active[username]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(h.active, username)
		}
	}
}

// sendLocked hands ev to username's subscribers, dropping it for one
// that is full.
func (h *engagements) sendLocked(username string, ev EngagementEvent) {
	for ch := range h.subs[username] {
		select {
		case ch <- ev:
		default:
		}
	}
}

// AgentStatus is username's agent status: Occupied while on a call here,
// else what they set (Ready when they set nothing).
func (b *B2BUA) AgentStatus(username string) int {
	if len(b.Engagements(username)) > 0 {
		return AgentOccupied
	}
	h := &b.engaged
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.agent[username]; ok {
		return s
	}
	return AgentReady
}

// SetAgentStatus sets username's agent status (Offline, Ready or Not
// Ready; Occupied follows calls). A user who is Not Ready or Offline is
// not rung as a group member.
func (b *B2BUA) SetAgentStatus(username string, status int) error {
	if status != AgentOffline && status != AgentReady && status != AgentNotReady {
		return errors.New("agent status must be 0 (Offline), 1 (Ready) or 2 (Not Ready)")
	}
	h := &b.engaged
	h.mu.Lock()
	if h.agent == nil {
		h.agent = map[string]int{}
	}
	if status == AgentReady {
		delete(h.agent, username)
	} else {
		h.agent[username] = status
	}
	h.mu.Unlock()
	eff := b.AgentStatus(username)
	h.mu.Lock()
	h.sendLocked(username, EngagementEvent{Kind: EvAgentStatus, AgentStatus: eff})
	h.mu.Unlock()
	return nil
}

// agentAway reports whether username set themselves Not Ready or Offline.
func (b *B2BUA) agentAway(username string) bool {
	h := &b.engaged
	h.mu.Lock()
	defer h.mu.Unlock()
	_, away := h.agent[username]
	return away
}

// userKey is u's name in the hub: a user of the account (not a caller
// from the PSTN or a leg another node carries), else "".
func userKey(u account.User) string {
	if u.ID == "" {
		return ""
	}
	return u.SIP.Username
}

// numberOf is how u appears in an engagement: extension, else username
// (a PSTN caller's number), else name.
func numberOf(u account.User) string {
	switch {
	case u.Extension != "":
		return u.Extension
	case u.SIP.Username != "":
		return u.SIP.Username
	}
	return u.Name
}

// engStarted: caller placed the call rec records.
func (b *B2BUA) engStarted(caller account.User, rec *store.CallRecord) {
	if rec == nil {
		return
	}
	b.engage(userKey(caller), Engagement{ID: rec.ID, Direction: "outbound", From: numberOf(caller), To: rec.Dialled,
		State: EngDialing, Created: rec.Start}, EvStarted, nil, EngagementEvent{})
}

// engRinging: the call rt routes rings user's phones (inbound for them),
// once per user and call.
func (b *B2BUA) engRinging(rt route, caller, user account.User) {
	key := userKey(user)
	if rt.rec == nil || key == "" {
		return
	}
	if _, ok := b.engagement(key, rt.rec.ID); ok {
		return
	}
	b.engage(key, Engagement{ID: rt.rec.ID, Direction: "inbound", From: numberOf(caller), To: numberOf(user),
		Queue: rt.queue, State: EngRinging, Created: b.now().UTC()}, EvRinging, nil, EngagementEvent{})
}

// engCalleeRinging: the caller's call rings its callee (outbound ringing
// for the caller).
func (b *B2BUA) engCalleeRinging(caller account.User, rec *store.CallRecord) {
	key := userKey(caller)
	if rec == nil || key == "" {
		return
	}
	e, ok := b.engagement(key, rec.ID)
	if ok && e.State != EngDialing {
		return
	}
	b.engage(key, Engagement{ID: rec.ID, Direction: "outbound", From: numberOf(caller), To: rec.Dialled, Created: rec.Start},
		EvRinging, func(e *Engagement) { e.State = EngRinging }, EngagementEvent{})
}

// engMissed: user's phones stopped ringing for the call without
// answering it (another answered, the group moved on, the caller gave up).
func (b *B2BUA) engMissed(rt route, user account.User, status int, reason string) {
	key := userKey(user)
	if rt.rec == nil || key == "" {
		return
	}
	if e, ok := b.engagement(key, rt.rec.ID); !ok || e.State != EngRinging {
		return
	}
	b.engage(key, Engagement{ID: rt.rec.ID}, EvNotConnected, nil, EngagementEvent{Status: status, Reason: reason})
}

// engConnected: caller and callee are connected by the call rec records.
func (b *B2BUA) engConnected(caller, callee account.User, rec *store.CallRecord, queue string) {
	if rec == nil {
		return
	}
	now := b.now().UTC()
	connected := func(e *Engagement) { e.State, e.Accepted = EngConnected, now }
	if key := userKey(caller); key != "" {
		b.engage(key, Engagement{ID: rec.ID, Direction: "outbound", From: numberOf(caller), To: rec.Dialled,
			Queue: queue, Created: rec.Start}, EvConnected, connected, EngagementEvent{})
	}
	if key := userKey(callee); key != "" {
		b.engage(key, Engagement{ID: rec.ID, Direction: "inbound", From: numberOf(caller), To: numberOf(callee),
			Queue: queue, Created: rec.Start}, EvConnected, connected, EngagementEvent{})
	}
}

// engClosed: the call rec records is over. Every user it engaged is told
// it ended (or never connected for them) and gets its record.
func (b *B2BUA) engClosed(rec store.CallRecord) {
	h := &b.engaged
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, e := range h.byID[rec.ID] {
		if h.active[key][rec.ID] != nil {
			before := len(h.active[key])
			ev := EngagementEvent{Kind: EvNotConnected, Status: rec.Status, Reason: rec.Disposition}
			if e.State == EngConnected || e.State == EngHeld {
				ev.Kind = EvEnded
			}
			e.State = EngEnded
			ev.Engagement = *e
			h.forgetLocked(key, rec.ID)
			h.sendLocked(key, ev)
			h.occupiedLocked(key, before)
		}
		r := rec
		h.sendLocked(key, EngagementEvent{Kind: EvCallLog, Engagement: *e, Record: &r})
	}
	delete(h.byID, rec.ID)
}
