package calls

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sdg"
)

// What the node's calls look like from outside (status, API): each SDG's
// members and their live state, and the calls in progress with their path.

// GroupStatus is one SDG as the calls on this node see it.
type GroupStatus struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Extension string         `json:"extension,omitempty"`
	Site      string         `json:"site"`
	Route     string         `json:"route"`              // the route's type
	Strategy  string         `json:"strategy,omitempty"` // a group's
	Members   []MemberStatus `json:"members,omitempty"`
	// LastAnswered is who took a rotating group's last call (the next
	// starts after them).
	LastAnswered string `json:"last_answered,omitempty"`
	// Override is the emergency override in force (Route above is then
	// its route's type); nil when none.
	Override *OverrideStatus `json:"override,omitempty"`
}

// OverrideStatus is an SDG's emergency override: its route, who made it
// and when.
type OverrideStatus struct {
	Route *account.Route `json:"route"`
	By    string         `json:"by"`
	At    time.Time      `json:"at"`
}

// MemberStatus is a group member's live state: idle, ringing, busy or
// unregistered.
type MemberStatus struct {
	UserID   string `json:"user_id"`
	Username string `json:"username,omitempty"`
	Name     string `json:"name,omitempty"`
	State    string `json:"state"`
}

// CallStatus is a call in progress on this node: routed through groups or
// IVR menus (state "routing", "ivr") or connected.
type CallStatus struct {
	ID      string    `json:"id"` // the call's record ID (also its engagement's)
	CallID  string    `json:"call_id"`
	Caller  string    `json:"caller"`
	Callee  string    `json:"callee,omitempty"`
	Dialled string    `json:"dialled,omitempty"`
	State   string    `json:"state"` // routing, ivr, connected
	Route   string    `json:"route,omitempty"`
	Start   time.Time `json:"start"`
	Answer  time.Time `json:"answer,omitzero"`
	// Anchored says the media goes through this node's relay (trunk and
	// IVR calls).
	Anchored bool `json:"anchored"`
	// Owner is the user ID of the call's owner (who placed it, else who
	// answered it; conference.go), when a user is in it.
	Owner string `json:"owner,omitempty"`
	// Participants and Invitations: who is in a connected call and who
	// was invited to it.
	Participants []invite.Participant `json:"participants,omitempty"`
	Invitations  []invite.Invitation  `json:"invitations,omitempty"`
	// Site, Slot and ParkedBy: a parked call's (state "parked", park.go).
	Site     string `json:"site,omitempty"`
	Slot     int    `json:"slot,omitempty"`
	ParkedBy string `json:"parked_by,omitempty"`
	// History is the call's events and notes of the last five minutes:
	// what a participant who joins now sees.
	History []invite.Event `json:"history,omitempty"`
}

// walkView is a group call being routed, for CallStatus.
type walkView struct {
	id                      string // the record's
	callID, caller, dialled string
	start                   time.Time
	route                   string // the path so far (guarded by the B2BUA's mu)
}

func (b *B2BUA) walkStarted(id string, v *walkView) {
	b.mu.Lock()
	b.walking[id] = v
	b.mu.Unlock()
}

// walkAt notes a group call's path so far.
func (b *B2BUA) walkAt(id string, path []string) {
	route := strings.Join(path, " > ")
	b.mu.Lock()
	if w := b.walking[id]; w != nil {
		w.route = route
	}
	b.mu.Unlock()
}

func (b *B2BUA) walkEnded(id string) {
	b.mu.Lock()
	delete(b.walking, id)
	b.mu.Unlock()
}

func (b *B2BUA) ringingAdd(userID string, n int) {
	if userID == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ringing[userID] += n; b.ringing[userID] <= 0 {
		delete(b.ringing, userID)
	}
}

func (b *B2BUA) isRinging(userID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ringing[userID] > 0
}

// Groups is every SDG with its members' state.
func (b *B2BUA) Groups(ctx context.Context) ([]GroupStatus, error) {
	idx, err := b.groups(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := b.dir.Account(ctx)
	if err != nil {
		return nil, err
	}
	pres := presence{ctx: ctx, b: b, acct: acct}
	rot := b.rotationState()
	out := make([]GroupStatus, 0, len(idx.sdgs))
	for _, g := range idx.sdgs {
		gs := GroupStatus{ID: g.ID, Name: g.Name, Extension: g.Extension, Site: g.Site}
		if o, ok := idx.overrides[g.ID]; ok {
			gs.Override = &OverrideStatus{Route: o.Route, By: o.By, At: o.At}
		}
		if r := g.Route; r != nil {
			gs.Route, gs.Strategy = r.Type, r.Strategy
			if r.Type == account.RouteUser {
				gs.Members = append(gs.Members, b.memberStatus(ctx, pres, r.ID))
			}
			for _, m := range r.Members {
				gs.Members = append(gs.Members, b.memberStatus(ctx, pres, m))
			}
			if r.Strategy == account.StrategyRotating {
				gs.LastAnswered = rot.LastAnswered("sdg:" + g.ID + "/route")
			}
		}
		out = append(out, gs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (b *B2BUA) memberStatus(ctx context.Context, pres presence, userID string) MemberStatus {
	ms := MemberStatus{UserID: userID}
	if u, err := b.dir.UserByID(ctx, userID); err == nil {
		ms.Username, ms.Name = u.SIP.Username, u.Name
	}
	st := pres.State(userID)
	switch {
	case st == sdg.Idle && b.isRinging(userID):
		ms.State = "ringing"
	default:
		ms.State = st.String()
	}
	return ms
}

// Calls lists the calls in progress on this node, oldest first.
func (b *B2BUA) Calls() []CallStatus {
	b.mu.Lock()
	var out []CallStatus
	seen := map[*call]bool{}
	for _, c := range b.calls {
		if seen[c] || c.rec == nil || c.bridge {
			continue
		}
		seen[c] = true
		r := c.rec
		st := CallStatus{ID: r.ID, CallID: r.CallID, Caller: r.Caller, Callee: r.Callee, Dialled: r.Dialled,
			State: "connected", Route: r.Route, Start: r.Start, Answer: r.Answer,
			Anchored: c.parties[0].media != nil || c.parties[1].media != nil, Owner: c.parties[0].user.ID}
		if st.Owner == "" {
			st.Owner = c.parties[1].user.ID
		}
		for _, p := range c.parties {
			st.Participants = append(st.Participants, invite.Participant{ID: p.id, User: p.user.ID, Name: p.user.Name,
				Number: numberOf(p.user), Joined: r.Answer})
		}
		out = append(out, st)
	}
	for id, w := range b.walking {
		state := "routing"
		if b.ivrs[id] != nil {
			state = "ivr"
		}
		out = append(out, CallStatus{ID: w.id, CallID: w.callID, Caller: w.caller, Dialled: w.dialled, State: state,
			Route: w.route, Start: w.start, Anchored: b.ivrs[id] != nil})
	}
	var mixed []*conf
	confs := map[string]*conf{}
	for id, cf := range b.confs {
		confs[id] = cf
	}
	b.mu.Unlock()
	// The conferences' state under their own locks, not b.mu's.
	now := b.now().UTC()
	for i := range out {
		if cf := confs[out[i].ID]; cf != nil {
			v := cf.view(now)
			out[i].Owner, out[i].Participants, out[i].Invitations, out[i].History = v.Owner, v.Participants, v.Invitations, v.History
			delete(confs, out[i].ID)
		}
	}
	for _, cf := range confs {
		mixed = append(mixed, cf)
	}
	for _, cf := range mixed {
		v := cf.view(now)
		if !v.Mixed {
			continue
		}
		r := cf.rec
		out = append(out, CallStatus{ID: r.ID, CallID: r.CallID, Caller: r.Caller, Callee: r.Callee, Dialled: r.Dialled,
			State: "conference", Route: r.Route, Start: r.Start, Answer: r.Answer, Anchored: true,
			Owner: v.Owner, Participants: v.Participants, Invitations: v.Invitations, History: v.History})
	}
	out = append(out, b.parkedStatus()...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}
