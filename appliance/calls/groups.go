package calls

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/sdg"
)

// Calls to Survivability Distribution Groups and numbers[] entries: the
// route is walked by package sdg, which decides; this file turns its
// actions into SIP. A Ring forks the call to the members' phones (the
// caller ID shows the SDG's name) for the action's timeout; a Dial sends
// the call to a user's DID or out through the trunks; a Menu plays an IVR
// (ivr.go); a DialIn asks for the PIN of a live call and joins the caller
// to it (dialin.go). The path through SDGs and IVRs goes in the call
// record.

// GroupDirectory is what group calls read beyond Directory: the account's
// SDGs and numbers[] entries.
type GroupDirectory interface {
	SDGs(ctx context.Context) ([]account.SDG, error)
	Numbers(ctx context.Context) ([]account.Number, error)
}

// OverrideDirectory is a GroupDirectory that also holds the cluster's
// emergency SDG overrides (store.Reader): each replaces its SDG's route
// in the index, so calls walk the override.
type OverrideDirectory interface {
	SDGOverrides(ctx context.Context) ([]store.SDGOverride, error)
}

// Rotations keeps rotating groups' state: the member who answered each
// group's last call, shared by the cluster.
type Rotations interface {
	LastAnswered(group string) string // "" when none
	Rotated(group, member string)     // member answered group's last call
}

// SetRotations gives rotating groups their shared state; without it each
// node remembers its own.
func (b *B2BUA) SetRotations(r Rotations) {
	b.mu.Lock()
	b.rotations = r
	b.mu.Unlock()
}

func (b *B2BUA) rotationState() Rotations {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rotations == nil {
		b.rotations = &localRotations{last: map[string]string{}}
	}
	return b.rotations
}

// localRotations is a node's own memory of rotating groups, when the
// cluster's is not given.
type localRotations struct {
	mu   sync.Mutex
	last map[string]string
}

func (l *localRotations) LastAnswered(group string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[group]
}

func (l *localRotations) Rotated(group, member string) {
	l.mu.Lock()
	l.last[group] = member
	l.mu.Unlock()
}

// groupIndexTTL is how long the SDG and numbers[] index is reused.
const groupIndexTTL = time.Second

// groupIndex is the SDGs and numbers[] entries by id and number.
type groupIndex struct {
	at      time.Time
	sdgs    map[string]account.SDG
	numbers map[string]account.Number
	// overrides are the SDGs whose route an override replaced in sdgs.
	overrides map[string]store.SDGOverride
}

func (g *groupIndex) SDG(id string) (account.SDG, bool) {
	s, ok := g.sdgs[id]
	return s, ok
}

func (g *groupIndex) Number(e164 string) (account.Number, bool) {
	n, ok := g.numbers[e164]
	return n, ok
}

// groups is the index, read at most once per groupIndexTTL.
func (b *B2BUA) groups(ctx context.Context) (*groupIndex, error) {
	gd, ok := b.dir.(GroupDirectory)
	if !ok {
		return nil, errors.New("the directory has no SDGs")
	}
	b.groupIdx.Lock()
	defer b.groupIdx.Unlock()
	now := b.now()
	if g := b.groupIdx.idx; g != nil && now.Sub(g.at) < groupIndexTTL {
		return g, nil
	}
	sdgs, err := gd.SDGs(ctx)
	if err != nil {
		return nil, err
	}
	nums, err := gd.Numbers(ctx)
	if err != nil {
		return nil, err
	}
	g := &groupIndex{at: now, sdgs: make(map[string]account.SDG, len(sdgs)), numbers: make(map[string]account.Number, len(nums))}
	for _, s := range sdgs {
		g.sdgs[s.ID] = s
	}
	for _, n := range nums {
		g.numbers[n.Number] = n
	}
	if od, ok := b.dir.(OverrideDirectory); ok {
		ovs, err := od.SDGOverrides(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range ovs {
			if s, ok := g.sdgs[o.SDGID]; ok && o.Route != nil {
				s.Route = o.Route
				g.sdgs[o.SDGID] = s
				if g.overrides == nil {
					g.overrides = map[string]store.SDGOverride{}
				}
				g.overrides[o.SDGID] = o
			}
		}
	}
	b.groupIdx.idx = g
	return g, nil
}

// presence answers the engine's questions about members from the
// registrations and the calls in progress on this node.
type presence struct {
	ctx  context.Context
	b    *B2BUA
	acct account.Account
}

func (p presence) State(userID string) sdg.MemberState {
	if p.b.onCall(userID) {
		return sdg.Busy
	}
	u, err := p.b.dir.UserByID(p.ctx, userID)
	if err != nil || p.b.agentAway(u.SIP.Username) { // Not Ready or Offline in the call widget: not rung
		return sdg.Unregistered
	}
	bs, err := p.b.dir.Bindings(p.ctx, u.SIP.Username+"@"+p.acct.SIPRealm, p.b.now())
	if err != nil || len(bs) == 0 {
		return sdg.Unregistered
	}
	return sdg.Idle
}

func (p presence) LastCallEnd(userID string) time.Time {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.b.lastCallEnd[userID]
}

// onCall says whether a user is a party of a connected call here.
func (b *B2BUA) onCall(userID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.onCalls[userID] > 0
}

// groupWalk is a group call's engine, started when the call was routed.
type groupWalk struct {
	call      *sdg.Call
	first     sdg.Action
	rotations Rotations
}

// startGroup starts the engine for a call to an SDG or a numbers[] entry;
// a route that fails at once (nobody available, no fallback) is refused
// before any dialog.
func (b *B2BUA) startGroup(ctx context.Context, root account.Route, rec *store.CallRecord) (route, *refusal) {
	acct, err := b.dir.Account(ctx)
	idx, ierr := b.groups(ctx)
	if err != nil || ierr != nil {
		b.log.Error("group call: configuration unreadable", "call_id", rec.CallID, "error", errors.Join(err, ierr))
		return route{}, &refusal{500, "Server Internal Error", DispFailed}
	}
	rotations := b.rotationState()
	env := sdg.Env{Directory: idx, Presence: presence{ctx: ctx, b: b, acct: acct}, Rotations: rotations}
	c, act := sdg.Start(env, root)
	if f, ok := act.(sdg.Fail); ok {
		rec.Route = strings.Join(f.Path, " > ")
		return route{}, &refusal{f.Status, sipReason(f.Status), failDisposition(f.Err)}
	}
	queue := ""
	if g, ok := idx.SDG(root.ID); ok && root.Type == account.RouteSDG {
		queue = g.Name
	}
	return route{acct: acct, group: &groupWalk{call: c, first: act, rotations: rotations}, hops: maxForwards, queue: queue}, nil
}

// walk routes a call to an SDG or a numbers[] entry: it drives the
// route's engine until someone answers or the route fails.
func (b *B2BUA) walk(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt route, rec *store.CallRecord) {
	ctx := ds.Context()
	log := b.log.With("call_id", req.CallID().Value())
	c, act := rt.group.call, rt.group.first
	b.walkStarted(ds.ID, &walkView{id: rec.ID, callID: rec.CallID, caller: rec.Caller, dialled: rec.Dialled, start: rec.Start})
	defer b.walkEnded(ds.ID)
	var ringing sync.Once
	for {
		b.walkAt(ds.ID, c.Path())
		switch a := act.(type) {
		case sdg.Ring:
			tr := rt
			tr.targets, tr.callee = b.memberTargets(ctx, rt.acct, a.Users), account.User{}
			shown := caller
			if a.DisplayName != "" {
				shown.Name = a.DisplayName + ": " + caller.Name
			}
			b.holdForMember(ds)
			rctx, cancel := context.WithTimeout(ctx, a.Timeout)
			winner, tg, status := b.ringOnce(rctx, ds, req, shown, tr, &ringing)
			cancel()
			if winner == nil {
				if ctx.Err() != nil {
					b.finish(rec, 487, DispCancelled)
					return
				}
				if status == 487 { // the ring timed out
					status = 408
				}
				act = c.Next(sdg.NoAnswer{Step: a.Step, Status: status})
				continue
			}
			member := *tg.user
			act = c.Next(sdg.Answered{Step: a.Step, User: member.ID})
			if done, ok := act.(sdg.Connected); ok {
				if done.Rotation != nil {
					rt.group.rotations.Rotated(done.Rotation.Group, done.Rotation.Member)
				}
				rec.Route = strings.Join(done.Path, " > ")
			}
			log.Info("group call answered", "member", member.SIP.Username, "route", rec.Route)
			b.answer(ds, req, caller, tr, winner, member, rec)
			return
		case sdg.Dial:
			if b.dialFromGroup(ds, req, caller, rt, a, rec, &act, c) {
				return
			}
		case sdg.Menu:
			act = b.menu(ds, req, &rt, a, c)
		case sdg.DialIn:
			var done bool
			if act, done = b.dialIn(ds, req, caller, &rt, a, c, rec); done {
				return
			}
		case sdg.Voicemail:
			var done bool
			if act, done = b.voicemailFromGroup(ds, req, caller, &rt, a, c, rec); done {
				return
			}
		case sdg.Fail:
			rec.Route = strings.Join(a.Path, " > ")
			log.Info("group call not answered", "status", a.Status, "reason", a.Reason(), "route", rec.Route)
			b.groupFailed(ds, a, rec)
			return
		default: // Connected comes with Answered above; Wait cannot follow the events sent here
			log.Error("group call: unexpected step", "action", act)
			_ = ds.Respond(500, "Server Internal Error", nil)
			b.finish(rec, 500, DispFailed)
			return
		}
	}
}

// memberTargets is where the members' phones ring.
func (b *B2BUA) memberTargets(ctx context.Context, acct account.Account, users []string) []target {
	var out []target
	for _, id := range users {
		u, err := b.dir.UserByID(ctx, id)
		if err != nil {
			continue
		}
		bs, err := b.dir.Bindings(ctx, u.SIP.Username+"@"+acct.SIPRealm, b.now())
		if err != nil {
			continue
		}
		for _, tg := range b.targets(ctx, bs) {
			tg.user = &u
			out = append(out, tg)
		}
	}
	return out
}

// groupFailed ends a group call nobody answered: with the engine's status
// while the caller is unanswered, else (after an IVR) by hanging up.
func (b *B2BUA) groupFailed(ds *sipgo.DialogServerSession, f sdg.Fail, rec *store.CallRecord) {
	disp := failDisposition(f.Err)
	if disp == DispCancelled {
		b.finish(rec, 487, DispCancelled)
		return
	}
	if b.ivrAnswered(ds) {
		b.endIVR(ds)
		b.finish(rec, 200, disp)
		return
	}
	_ = ds.Respond(f.Status, sipReason(f.Status), nil)
	b.finish(rec, f.Status, disp)
}

// failDisposition is the record's disposition for why a route failed.
func failDisposition(err error) string {
	switch {
	case errors.Is(err, sdg.ErrHangup):
		return DispCancelled
	case errors.Is(err, sdg.ErrBusy):
		return DispBusy
	case errors.Is(err, sdg.ErrUnavailable), errors.Is(err, sdg.ErrNotFound):
		return DispUnavailable
	case errors.Is(err, sdg.ErrLoop), errors.Is(err, sdg.ErrTooDeep), errors.Is(err, sdg.ErrBadRoute):
		return DispFailed
	case errors.Is(err, sdg.ErrNoPIN):
		return DispRefused
	case errors.Is(err, sdg.ErrNoVoicemail):
		return DispUnavailable
	}
	return DispNoAnswer
}

// sipReason is the reason phrase of the statuses a group call ends with.
func sipReason(status int) string {
	if r, ok := groupReasons[status]; ok {
		return r
	}
	return "Temporarily Unavailable"
}

var groupReasons = map[int]string{403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 480: "Temporarily Unavailable",
	482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated",
	488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable"}

// dialFromGroup sends a group call to a number a route names (sdg.Dial): a
// user's DID rings that user; another number goes out through the
// caller's site's trunks (which then answers the caller itself: done).
// Otherwise act becomes the engine's next action.
func (b *B2BUA) dialFromGroup(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt route,
	a sdg.Dial, rec *store.CallRecord, act *sdg.Action, c *sdg.Call) (done bool) {
	ctx := ds.Context()
	site := caller.Site
	if site == "" {
		site = rec.Site // a call from a trunk: the trunk's site
	}
	dest := Resolve(Dial{CallerSite: site, Digits: a.Number}, storePlan{ctx, b.dir})
	switch {
	case dest.Kind == DestUser:
		*act = sdg.Ring{Step: a.Step, Users: []string{dest.ID}, Timeout: sdg.UserRingTimeout, DisplayName: a.DisplayName}
		return false
	case (dest.Kind == DestExternal || dest.Kind == DestEmergency) && rt.media == nil && !b.ivrAnswered(ds) && b.trunksSet() != nil:
		rec.Route = strings.Join(append(c.Path(), "dial:"+dest.Number), " > ")
		rec.Destination = dest.Kind
		b.callOut(ds, req, caller, dest, rt.hops, rec)
		return true
	}
	// A call from the PSTN forwarded back to it, or one an IVR answered:
	// not carried (two relay sessions, or a second answer to the caller).
	b.log.Warn("group call: the number a route dials cannot be reached from this call",
		"call_id", req.CallID().Value(), "number", a.Number, "kind", dest.Kind)
	*act = c.Next(sdg.NoAnswer{Step: a.Step, Status: 480})
	return false
}
