package calls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/g711"
	"github.com/outpost-voice/outpost/appliance/media/ivr"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sdg"
)

// Dialling in to a live call (issue 8, "Invite information"). The owner
// of a call asks for its invite information: the account's dial-in
// numbers (numbers[] entries whose route is a conference route) and the
// call's PIN, six random digits made the first time they are asked for,
// unique among the live calls of this node and gone when the call ends.
// Someone who calls a conference route (a dial-in number from the PSTN,
// an SDG's extension from a phone, an IVR option) is answered by the
// node's IVR endpoint, asked for the PIN, and joined to the call whose
// PIN they enter, as an invitee who accepted would be: a two-party call
// is mixed first.
//
// Guessing is bounded: three PINs per call, then goodbye; a source (the
// caller's number from the PSTN, the user from a phone) that entered
// MaxPINFailures wrong PINs within PINFailureWindow is refused for
// PINLockout; and the node refuses every dial-in while it has seen
// MaxNodePINFailures wrong PINs within PINFailureWindow (a guesser
// changing caller IDs), so that a 6-digit PIN (a million) is not
// practical to find while its call lasts.

// Limits of PIN guessing.
const (
	PINDigits          = 6                // the length of the PINs made
	MaxPINFailures     = 10               // wrong PINs from one source within PINFailureWindow: locked out
	PINLockout         = 5 * time.Minute  // how long a source is then refused
	PINFailureWindow   = 10 * time.Minute // what the failures are counted over
	MaxNodePINFailures = 100              // wrong PINs from all sources within PINFailureWindow: every dial-in refused
)

// dialInHow is what a dial-in participant's join says in the history.
const dialInHow = "dialled in"

// InviteInfo is what a call's owner gives someone to dial in
// (GET /api/v1/calls/{id}/invite-info).
type InviteInfo struct {
	DialIn  []DialInNumber `json:"dial_in"`
	PIN     string         `json:"pin"`
	SMSText string         `json:"sms_text"` // the SMS invitation's default text (SMSText)
}

// DialInNumber is a numbers[] entry that reaches a conference route.
type DialInNumber struct {
	Number string `json:"number"`
	Site   string `json:"site"`
}

// dialInState is a node's dial-in state: the live calls' PINs, the PIN
// guessers, and the SMS invitations sent (sms.go).
type dialInState struct {
	mu    sync.Mutex
	pins  pinBook
	guard pinGuard
	sms   smsLimit
}

func newDialInState() *dialInState {
	return &dialInState{
		pins:  pinBook{byPIN: map[string]*conf{}, ofCall: map[string]string{}},
		guard: pinGuard{bySource: map[string]*guesses{}},
		sms:   smsLimit{sent: map[string][]time.Time{}},
	}
}

func (b *B2BUA) dialIns() *dialInState { return b.dialins }

// confLive says whether cf is still a call in progress here.
func (b *B2BUA) confLive(cf *conf) bool {
	b.mu.Lock()
	cur := b.confs[cf.id]
	b.mu.Unlock()
	if cur != cf {
		return false
	}
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return !cf.ended
}

// pinBook is the PINs of live calls. A PIN whose call ended is forgotten
// the next time the book is used.
type pinBook struct {
	byPIN  map[string]*conf
	ofCall map[string]string // by the conf's id
}

// errNoFreePIN: random PINs kept colliding (a million of them, so never
// in practice).
var errNoFreePIN = errors.New("no free PIN")

// pin is cf's PIN, made with random the first time.
func (pb *pinBook) pin(cf *conf, live func(*conf) bool, random func() (string, error)) (string, error) {
	pb.sweep(live)
	if p, ok := pb.ofCall[cf.id]; ok && pb.byPIN[p] == cf {
		return p, nil
	}
	for range 64 {
		p, err := random()
		if err != nil {
			return "", err
		}
		if _, taken := pb.byPIN[p]; taken {
			continue
		}
		pb.byPIN[p], pb.ofCall[cf.id] = cf, p
		return p, nil
	}
	return "", errNoFreePIN
}

// lookup is the live call whose PIN is pin, nil when none.
func (pb *pinBook) lookup(pin string, live func(*conf) bool) *conf {
	pb.sweep(live)
	return pb.byPIN[pin]
}

// sweep forgets the PINs of calls that ended.
func (pb *pinBook) sweep(live func(*conf) bool) {
	for p, cf := range pb.byPIN {
		if !live(cf) {
			delete(pb.byPIN, p)
			delete(pb.ofCall, cf.id)
		}
	}
}

// randomPIN is PINDigits random decimal digits (crypto/rand).
func randomPIN() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("random pin: %w", err)
	}
	return fmt.Sprintf("%0*d", PINDigits, n.Int64()), nil
}

// pinGuard counts wrong PINs per source and for the node.
type pinGuard struct {
	bySource map[string]*guesses
	all      []time.Time // the node's wrong PINs within PINFailureWindow, oldest first
}

// guesses is one source's wrong PINs within PINFailureWindow.
type guesses struct {
	at          []time.Time
	lockedUntil time.Time
}

// Why a dial-in is refused before it starts.
var (
	errSourceLocked = errors.New("too many wrong PINs from this caller; try again later")
	errNodeLocked   = errors.New("too many wrong PINs on this node; dial-in is paused")
)

// allowed says whether source may enter a PIN now.
func (g *pinGuard) allowed(source string, now time.Time) error {
	g.prune(now)
	if s := g.bySource[source]; s != nil && now.Before(s.lockedUntil) {
		return errSourceLocked
	}
	if len(g.all) >= MaxNodePINFailures {
		return errNodeLocked
	}
	return nil
}

// failed notes a wrong PIN from source; the error says what it locked.
func (g *pinGuard) failed(source string, now time.Time) error {
	g.prune(now)
	g.all = append(g.all, now)
	s := g.bySource[source]
	if s == nil {
		s = &guesses{}
		g.bySource[source] = s
	}
	s.at = append(s.at, now)
	if len(s.at) >= MaxPINFailures {
		s.at, s.lockedUntil = nil, now.Add(PINLockout)
		return errSourceLocked
	}
	if len(g.all) >= MaxNodePINFailures {
		return errNodeLocked
	}
	return nil
}

// prune forgets the failures older than PINFailureWindow and the sources
// with none left and no lockout.
func (g *pinGuard) prune(now time.Time) {
	from := now.Add(-PINFailureWindow)
	keep := func(ts []time.Time) []time.Time {
		i := slices.IndexFunc(ts, func(t time.Time) bool { return t.After(from) })
		if i < 0 {
			return ts[:0]
		}
		return ts[i:]
	}
	g.all = keep(g.all)
	for k, s := range g.bySource {
		if s.at = keep(s.at); len(s.at) == 0 && !now.Before(s.lockedUntil) {
			delete(g.bySource, k)
		}
	}
}

// pinSource is who a PIN guess is counted against: the user of a phone,
// else the caller's number (from the PSTN; spoofable, hence the node's own
// limit too).
func pinSource(caller account.User, rec *store.CallRecord) string {
	if caller.ID != "" {
		return "user:" + caller.ID
	}
	if rec.Caller != "" {
		return "pstn:" + rec.Caller
	}
	return "pstn:anonymous"
}

// ownedConf is call id's conf for its owner by (a user ID; an admin passes
// the owner): invite.ErrNotOwner for anyone else, ErrNoCall when there is
// no such call here. The call becomes a conf if it was a plain call.
func (b *B2BUA) ownedConf(ctx context.Context, by, id string) (*conf, account.User, error) {
	owner, err := b.CallOwner(id)
	if err != nil {
		return nil, account.User{}, err
	}
	if by == "" || by != owner {
		return nil, account.User{}, invite.ErrNotOwner
	}
	b.mu.Lock()
	mixer := b.mixer
	b.mu.Unlock()
	if mixer == nil {
		return nil, account.User{}, ErrNoMixer
	}
	cf, err := b.confOf(id)
	if err != nil {
		return nil, account.User{}, err
	}
	cf.mu.Lock()
	owner, ended := cf.st.Owner(), cf.ended
	cf.mu.Unlock()
	switch {
	case ended:
		return nil, account.User{}, invite.ErrCallEnded
	case owner != by:
		return nil, account.User{}, invite.ErrNotOwner
	}
	u, err := b.dir.UserByID(ctx, owner)
	if err != nil {
		return nil, account.User{}, fmt.Errorf("read the owner: %w", err)
	}
	return cf, u, nil
}

// InviteInfo is call id's dial-in numbers, PIN (made now if the call has
// none) and default SMS text, for its owner by (an admin passes the
// owner).
func (b *B2BUA) InviteInfo(ctx context.Context, by, id string) (InviteInfo, error) {
	cf, owner, err := b.ownedConf(ctx, by, id)
	if err != nil {
		return InviteInfo{}, err
	}
	return b.inviteInfo(ctx, cf, owner)
}

func (b *B2BUA) inviteInfo(ctx context.Context, cf *conf, owner account.User) (InviteInfo, error) {
	st := b.dialIns()
	st.mu.Lock()
	pin, err := st.pins.pin(cf, b.confLive, randomPIN)
	st.mu.Unlock()
	if err != nil {
		return InviteInfo{}, err
	}
	nums := b.dialInNumbers(ctx, owner.Site)
	first := ""
	if len(nums) > 0 {
		first = nums[0].Number
	}
	return InviteInfo{DialIn: nums, PIN: pin, SMSText: SMSText(owner.Name, first, pin)}, nil
}

// dialInNumbers is the numbers[] entries whose route is a conference
// route: site's first, then by number.
func (b *B2BUA) dialInNumbers(ctx context.Context, site string) []DialInNumber {
	out := []DialInNumber{}
	idx, err := b.groups(ctx)
	if err != nil {
		return out
	}
	for _, n := range idx.numbers {
		if n.Route != nil && n.Route.Type == account.RouteConference {
			out = append(out, DialInNumber{Number: n.Number, Site: n.Site})
		}
	}
	slices.SortFunc(out, func(a, c DialInNumber) int {
		if (a.Site == site) != (c.Site == site) {
			if a.Site == site {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Number, c.Number)
	})
	return out
}

// dialIn runs a conference route's DialIn (groups.go's walk): it answers
// the caller for the IVR if the walk has not, asks for a PIN up to
// sdg.PINAttempts times and joins the caller to the call whose PIN it is.
// done says the call is settled here (joined, or hung up after goodbye);
// otherwise next is the engine's next action.
func (b *B2BUA) dialIn(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt *route, a sdg.DialIn,
	c *sdg.Call, rec *store.CallRecord) (next sdg.Action, done bool) {
	log := b.log.With("call_id", req.CallID().Value())
	source := pinSource(caller, rec)
	st := b.dialIns()
	st.mu.Lock()
	err := st.guard.allowed(source, b.now())
	st.mu.Unlock()
	if err != nil {
		log.Warn("dial-in refused", "source", source, "reason", err)
		return b.dialInFailed(ds, a, c, rec, 403)
	}
	b.mu.Lock()
	mixer := b.mixer
	b.mu.Unlock()
	if mixer == nil {
		log.Warn("dial-in: this node has no conference bridge")
		return b.dialInFailed(ds, a, c, rec, 503)
	}
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		if iv, err = b.answerForIVR(ds, req, rt); err != nil {
			log.Warn("dial-in: cannot answer", "error", err)
			return b.dialInFailed(ds, a, c, rec, 488)
		}
	}
	ctx := ds.Context()
	prompts := []string{sdg.PINPrompt}
	for try := 1; try <= sdg.PINAttempts; try++ {
		pin, err := readPIN(ctx, iv.leg, prompts)
		if err != nil { // the caller hung up
			return c.Next(sdg.Hangup{}), false
		}
		prompts = []string{sdg.PINPrompt}
		if pin == "" {
			log.Info("dial-in: no PIN entered", "attempt", try)
			continue
		}
		st.mu.Lock()
		// Checked again before each PIN: a lockout (the node's, from other
		// callers) holds for calls already in progress too.
		refused := st.guard.allowed(source, b.now())
		var cf *conf
		var locked error
		if refused == nil {
			if cf = st.pins.lookup(pin, b.confLive); cf == nil {
				locked = st.guard.failed(source, b.now())
			}
		}
		st.mu.Unlock()
		if refused != nil {
			log.Warn("dial-in refused", "source", source, "reason", refused)
			break
		}
		if cf == nil {
			log.Info("dial-in: wrong PIN", "source", source, "attempt", try)
			if locked != nil {
				log.Warn("dial-in: PIN guessing locked out", "source", source, "reason", locked)
				break
			}
			prompts = []string{sdg.PINInvalidPrompt, sdg.PINPrompt}
			continue
		}
		ivrKept, err := b.joinByPIN(ctx, ds, req, caller, iv, rt, cf, rec)
		if err != nil {
			log.Warn("dial-in: could not join the call", "call", cf.id, "error", err)
			if !ivrKept { // nothing more can be said to the caller
				_ = ds.Bye(context.Background())
				act := c.Next(sdg.NoAnswer{Step: a.Step})
				b.dialInEnded(rec, act, 200, DispFailed)
				return act, true
			}
			prompts = []string{sdg.PINInvalidPrompt, sdg.PINPrompt}
			continue
		}
		act := c.Next(sdg.Answered{Step: a.Step})
		if done, ok := act.(sdg.Connected); ok {
			rec.Route = strings.Join(done.Path, " > ") + ":" + cf.id
		}
		log.Info("dial-in joined", "call", cf.id, "source", source)
		return act, true
	}
	return b.dialInFailed(ds, a, c, rec, 480)
}

// dialInFailed ends a dial-in that did not join: a caller already
// answered hears goodbye and is hung up (done); one not answered yet gets
// status from the walk (groupFailed).
func (b *B2BUA) dialInFailed(ds *sipgo.DialogServerSession, a sdg.DialIn, c *sdg.Call, rec *store.CallRecord, status int) (sdg.Action, bool) {
	act := c.Next(sdg.NoAnswer{Step: a.Step, Status: status})
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		return act, false
	}
	ctx, cancel := context.WithTimeout(ds.Context(), 10*time.Second)
	defer cancel()
	_ = iv.leg.Play(ctx, "goodbye")
	b.takeIVR(ds.ID)
	_ = ds.Bye(ctx)
	b.dialInEnded(rec, act, 200, DispRefused)
	return act, true
}

func (b *B2BUA) dialInEnded(rec *store.CallRecord, act sdg.Action, status int, disp string) {
	if f, ok := act.(sdg.Fail); ok {
		rec.Route = strings.Join(f.Path, " > ")
	}
	b.finish(rec, status, disp)
}

// readPIN plays prompts and collects keys until #, sdg.MaxPINDigits keys
// or sdg.PINDigitTimeout without one; "" when none came. An error is the
// caller's hang-up.
func readPIN(ctx context.Context, leg IVRLeg, prompts []string) (string, error) {
	var pin []byte
	for {
		k, err := leg.Menu(ctx, prompts, sdg.PINDigitTimeout)
		prompts = nil
		switch {
		case errors.Is(err, ivr.ErrNoInput):
			return string(pin), nil
		case err != nil:
			return "", err
		case k == '#':
			return string(pin), nil
		}
		if pin = append(pin, k); len(pin) >= sdg.MaxPINDigits {
			return string(pin), nil
		}
	}
}

// joinByPIN joins the caller, answered by the IVR endpoint iv, to cf: a
// leg of the call's room (the call is mixed first if it was not) takes
// the IVR's place as the relay's other side. When it fails, ivrKept says
// whether the IVR endpoint still faces the caller.
func (b *B2BUA) joinByPIN(ctx context.Context, ds *sipgo.DialogServerSession, req *sip.Request, caller account.User,
	iv *ivrCall, rt *route, cf *conf, rec *store.CallRecord) (ivrKept bool, err error) {
	room, err := b.roomOf(cf)
	if err != nil {
		return true, err
	}
	codec, pt, ok := ivrFormats(iv.sent, nil)
	if !ok {
		codec, pt = g711.PCMU, 0
	}
	leg, err := room.Join(ds.ID, iv.ms.Local(0), codec, pt)
	if err != nil {
		b.closeRoomIfIdle(cf)
		return true, err
	}
	_ = iv.leg.Play(ctx, sdg.JoiningPrompt)
	b.takeIVR(ds.ID) // the endpoint stops before the relay turns to the room
	p := answeredParty(ds, caller)
	p.media = &media{sess: iv.ms, side: 1, codecs: rt.codecs, srtp: rt.srtp}
	p.heard(req.Body())
	p.told(iv.sent)
	if err := b.joinAnchored(cf, "", dialInHow, p, iv.ms, leg, codec, pt); err != nil {
		leg.Leave()
		b.closeRoomIfIdle(cf)
		return false, err
	}
	rec.Answer, rec.Status = b.now().UTC(), 200
	b.keepConfRecord(p, rec)
	return true, nil
}

// joinAnchored joins p to cf through leg when p is the far side (1) of
// the relay session ms, whose near side (0) faced the node's IVR endpoint
// until now: the near side and the leg face each other, so p's media
// never moves (no re-INVITE). A call-out's callee joins the same way.
func (b *B2BUA) joinAnchored(cf *conf, invID, how string, p *party, ms MediaSession, leg RoomLeg, codec g711.Codec, pt uint8) error {
	leg.SetCodec(codec, pt)
	leg.SetPeer(ms.Local(0))
	ms.SetRemote(0, leg.Addr())
	return b.join(cf, invID, how, p, leg, codec, pt)
}

// keepConfRecord keeps rec, the own record of a participant who came in
// by a call of their own (a call-out, a dial-in), to be closed when they
// leave (leaveConf).
func (b *B2BUA) keepConfRecord(p *party, rec *store.CallRecord) {
	b.mu.Lock()
	if b.confRecs == nil {
		b.confRecs = map[string]*store.CallRecord{}
	}
	b.confRecs[p.id] = rec
	b.mu.Unlock()
}
