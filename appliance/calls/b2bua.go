package calls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Authenticator authenticates a caller (Proxy-Authorization, 407).
type Authenticator interface {
	AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool)
}

// Journal records finished calls (local-first, shared with the cluster).
type Journal interface {
	Record(r store.CallRecord)
}

// Directory is what the B2BUA reads: the configuration and the bindings.
type Directory interface {
	Account(ctx context.Context) (account.Account, error)
	LookupDial(ctx context.Context, dial string) (store.Target, error)
	Site(ctx context.Context, id string) (account.Site, error)
	UserByID(ctx context.Context, id string) (account.User, error)
	Bindings(ctx context.Context, aor string, now time.Time) ([]store.Binding, error)
	Members(ctx context.Context) ([]store.Member, error)
}

// B2BUA connects calls between phones: every call is an inbound leg from
// the caller and an outbound leg to the callee, each its own SIP dialog.
// Media flows directly between the phones (their SDP is passed through).
type B2BUA struct {
	nodeID  string
	hopKey  []byte // authenticates INVITEs between the nodes of the cluster
	auth    Authenticator
	dir     Directory
	journal Journal
	in      *sipgo.DialogServerCache
	out     *sipgo.DialogClientCache
	log     *slog.Logger

	mu     sync.Mutex
	calls  map[string]*call // by inbound and by outbound dialog ID
	active atomic.Int64
}

// call is one connected call.
type call struct {
	in  *sipgo.DialogServerSession
	out *sipgo.DialogClientSession
	rec *store.CallRecord // nil on a node that only carries another node's leg
}

// NewB2BUA builds the call handler. contact is the Contact the node puts in
// its dialogs.
// hopSecret (shared by every node) authenticates calls one node hands to
// another for a phone registered there.
func NewB2BUA(client *sipgo.Client, contact sip.ContactHeader, auth Authenticator, dir Directory,
	journal Journal, nodeID string, hopSecret []byte, log *slog.Logger) *B2BUA {
	return &B2BUA{
		nodeID: nodeID, hopKey: hopSecret, auth: auth, dir: dir, journal: journal, log: log,
		in:    sipgo.NewDialogServerCache(client, contact),
		out:   sipgo.NewDialogClientCache(client, contact),
		calls: map[string]*call{},
	}
}

// Active is the number of connected calls.
func (b *B2BUA) Active() int { return int(b.active.Load()) }

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// storePlan is a Plan over the directory for one request.
type storePlan struct {
	ctx context.Context
	dir Directory
}

func (p storePlan) Lookup(dial string) (Target, bool) {
	t, err := p.dir.LookupDial(p.ctx, dial)
	if err != nil {
		return Target{}, false
	}
	return Target{Kind: t.Kind, ID: t.ID}, true
}

func (p storePlan) Site(id string) (account.Site, bool) {
	s, err := p.dir.Site(p.ctx, id)
	return s, err == nil
}

// OnInvite authenticates the caller, decides where the call goes and rings
// every contact of the callee registered here at once; the first answer
// wins and the other contacts are cancelled.
func (b *B2BUA) OnInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			b.reinvite(req, tx)
			return
		}
	}
	if req.GetHeader(hopAuthHeader) != nil {
		b.onHop(req, tx)
		return
	}
	caller, ok := b.auth.AuthenticateRequest(req, tx)
	if !ok {
		return
	}
	ctx := context.Background()
	now := time.Now().UTC()
	rec := &store.CallRecord{
		ID: newRecordID(), CallID: req.CallID().Value(), Caller: caller.SIP.Username, CallerName: caller.Name,
		Dialled: req.Recipient.User, Start: now, Node: b.nodeID, Site: caller.Site,
	}
	refuse := func(code int, reason, disposition string) {
		respond(tx, req, code, reason)
		b.finish(rec, code, disposition)
	}
	dest := Resolve(Dial{CallerSite: caller.Site, Digits: req.Recipient.User}, storePlan{ctx, b.dir})
	rec.Destination = dest.Kind
	switch dest.Kind {
	case DestUser:
	case DestSDG, DestNumber:
		refuse(480, "Temporarily Unavailable: group routing is not available yet", DispUnavailable)
		return
	case DestExternal, DestEmergency:
		refuse(503, "Service Unavailable: no trunk to the PSTN yet", DispFailed)
		return
	default:
		refuse(404, "Not Found", DispRefused)
		return
	}
	acct, err := b.dir.Account(ctx)
	if err != nil {
		refuse(500, "Server Internal Error", DispFailed)
		return
	}
	callee, err := b.dir.UserByID(ctx, dest.ID)
	if err != nil {
		refuse(404, "Not Found", DispRefused)
		return
	}
	rec.Callee = callee.SIP.Username
	bindings, err := b.dir.Bindings(ctx, callee.SIP.Username+"@"+acct.SIPRealm, time.Now())
	if err != nil {
		refuse(500, "Server Internal Error", DispFailed)
		return
	}
	targets := b.targets(ctx, bindings)
	if len(targets) == 0 {
		refuse(480, "Temporarily Unavailable", DispUnavailable)
		return
	}
	ds, err := b.in.ReadInvite(req, tx)
	if err != nil {
		refuse(500, "Server Internal Error", DispFailed)
		return
	}
	_ = ds.Respond(100, "Trying", nil)
	b.ring(ds, req, caller, callee, acct, targets, rec)
}

// target is where one leg goes: a phone's flow on this node, or the node
// that holds the phone's flow.
type target struct {
	binding store.Binding
	via     string // the holding node's SIP address; empty when local
}

// targets places each binding: here when this node holds its flow, else at
// the member that does (a member with no SIP address is skipped).
func (b *B2BUA) targets(ctx context.Context, bindings []store.Binding) []target {
	var out []target
	var members []store.Member
	for _, bd := range bindings {
		if bd.Node == b.nodeID {
			out = append(out, target{binding: bd})
			continue
		}
		if members == nil {
			members, _ = b.dir.Members(ctx)
		}
		for _, m := range members {
			if m.ID == bd.Node && m.SIPAddr != "" {
				out = append(out, target{binding: bd, via: m.SIPAddr})
			}
		}
	}
	return out
}

type legResult struct {
	sess *sipgo.DialogClientSession
	err  error
}

// ring forks the call to every binding and connects the first answer.
func (b *B2BUA) ring(ds *sipgo.DialogServerSession, req *sip.Request, caller, callee account.User, acct account.Account,
	targets []target, rec *store.CallRecord) {
	ctx, cancel := context.WithCancel(ds.Context())
	defer cancel()
	results := make(chan legResult, len(targets))
	var ringing sync.Once
	for _, tg := range targets {
		go func() {
			sess, err := b.leg(ctx, req, caller, callee, acct, tg, func(res *sip.Response) {
				if res.StatusCode == 180 || res.StatusCode == 183 {
					ringing.Do(func() { _ = ds.Respond(res.StatusCode, res.Reason, res.Body(), contentType(res)...) })
				}
			})
			results <- legResult{sess, err}
		}()
	}
	var winner *sipgo.DialogClientSession
	busy := false
	for range targets {
		r := <-results
		switch {
		case r.err == nil && winner == nil:
			winner = r.sess
			cancel() // the other contacts stop ringing
		case r.err == nil:
			// answered too late: hang that contact up
			_ = r.sess.Ack(context.Background())
			_ = r.sess.Bye(context.Background())
		default:
			var de *sipgo.ErrDialogResponse
			if errors.As(r.err, &de) && de.Res.StatusCode == 486 {
				busy = true
			}
		}
	}
	if winner == nil {
		switch {
		case ds.Context().Err() != nil: // the caller cancelled: sipgo answered 487
			b.finish(rec, 487, DispCancelled)
		case busy:
			_ = ds.Respond(486, "Busy Here", nil)
			b.finish(rec, 486, DispBusy)
		default:
			_ = ds.Respond(480, "Temporarily Unavailable", nil)
			b.finish(rec, 480, DispNoAnswer)
		}
		return
	}
	if err := winner.Ack(context.Background()); err != nil {
		b.log.Warn("ack callee", "call_id", req.CallID().Value(), "error", err)
	}
	if err := ds.Respond(200, "OK", winner.InviteResponse.Body(), contentType(winner.InviteResponse)...); err != nil {
		b.log.Warn("answer caller", "call_id", req.CallID().Value(), "error", err)
		_ = winner.Bye(context.Background())
		b.finish(rec, 500, DispFailed)
		return
	}
	if rec != nil {
		rec.Answer, rec.Status = time.Now().UTC(), 200
	}
	c := &call{in: ds, out: winner, rec: rec}
	b.mu.Lock()
	b.calls[ds.ID], b.calls[winner.ID] = c, c
	b.mu.Unlock()
	b.active.Add(1)
	b.log.Info("call connected", "call_id", req.CallID().Value(), "from", caller.SIP.Username, "to", callee.SIP.Username)
}

func contentType(m interface{ GetHeader(string) sip.Header }) []sip.Header {
	if h := m.GetHeader("Content-Type"); h != nil {
		return []sip.Header{sip.NewHeader("Content-Type", h.Value())}
	}
	return nil
}

// leg sends the INVITE to one contact through the flow it registered from,
// or to the node holding that flow.
func (b *B2BUA) leg(ctx context.Context, in *sip.Request, caller, callee account.User, acct account.Account,
	tg target, onResponse func(*sip.Response)) (*sipgo.DialogClientSession, error) {
	bd := tg.binding
	var uri sip.Uri
	if err := sip.ParseUri(bd.Contact, &uri); err != nil {
		return nil, fmt.Errorf("contact %q: %w", bd.Contact, err)
	}
	inv := sip.NewRequest(sip.INVITE, uri)
	if tg.via == "" {
		inv.SetDestination(bd.Source)
		inv.SetTransport(strings.ToUpper(bd.Transport))
	} else {
		inv.SetDestination(tg.via)
		inv.SetTransport("UDP")
	}
	fromUser := caller.Extension
	if fromUser == "" {
		fromUser = caller.SIP.Username
	}
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&sip.FromHeader{DisplayName: caller.Name,
		Address: sip.Uri{Scheme: "sip", User: fromUser, Host: acct.SIPRealm}, Params: fromParams})
	inv.AppendHeader(&sip.ToHeader{DisplayName: callee.Name,
		Address: sip.Uri{Scheme: "sip", User: callee.SIP.Username, Host: acct.SIPRealm}, Params: sip.NewParams()})
	for _, h := range contentType(in) {
		inv.AppendHeader(h)
	}
	if tg.via != "" {
		callID := sip.GenerateTagN(24)
		inv.AppendHeader(sip.NewHeader("Call-ID", callID))
		inv.AppendHeader(sip.NewHeader(hopBindingHeader, bd.AOR+" "+bd.ID))
		inv.AppendHeader(sip.NewHeader(hopAuthHeader, b.hopMAC(callID, bd.AOR, bd.ID)))
	}
	inv.SetBody(in.Body())
	sess, err := b.out.WriteInvite(ctx, inv)
	if err != nil {
		return nil, err
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		onResponse(res)
		return nil
	}})
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	return sess, nil
}

// OnAck confirms the caller's side of a connected call.
func (b *B2BUA) OnAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = b.in.ReadAck(req, tx)
}

// OnBye ends a call from either side and hangs up the other.
func (b *B2BUA) OnBye(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ds, err := b.in.MatchDialogRequest(req); err == nil {
		_ = b.in.ReadBye(req, tx)
		if c := b.end(ds.ID); c != nil {
			_ = c.out.Bye(ctx)
		}
		return
	}
	if cs, err := b.out.MatchRequestDialog(req); err == nil {
		_ = b.out.ReadBye(req, tx)
		if c := b.end(cs.ID); c != nil {
			_ = c.in.Bye(ctx)
		}
		return
	}
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// end forgets a call by either dialog ID.
func (b *B2BUA) end(id string) *call {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[id]
	if c == nil {
		return nil
	}
	delete(b.calls, c.in.ID)
	delete(b.calls, c.out.ID)
	b.active.Add(-1)
	if c.rec != nil {
		b.finish(c.rec, 200, DispAnswered)
	}
	return c
}

// reinvite passes an in-dialog re-INVITE (hold, resume, codec change) to
// the other leg and its answer back.
func (b *B2BUA) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	b.passInDialog(req, tx)
}

// OnUpdate passes an in-dialog UPDATE to the other leg.
func (b *B2BUA) OnUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	b.passInDialog(req, tx)
}

// passInDialog sends an in-dialog request (re-INVITE, UPDATE) from one leg
// on the other, with its body, and answers it with the other side's final
// response. A 2xx to a re-INVITE is acknowledged on the far leg at once,
// as the callee's first answer is.
func (b *B2BUA) passInDialog(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	var do func(context.Context, *sip.Request) (*sip.Response, error)
	var ack func(*sip.Request) error
	var target sip.Uri
	if ds, err := b.in.MatchDialogRequest(req); err == nil {
		c := b.lookup(ds.ID)
		if c == nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		target = remoteTarget(c.out.InviteResponse, c.out.InviteRequest.Recipient)
		do, ack = c.out.Do, c.out.WriteRequest
	} else if cs, err := b.out.MatchRequestDialog(req); err == nil {
		c := b.lookup(cs.ID)
		if c == nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		target = remoteTarget(c.in.InviteRequest, c.in.InviteRequest.Recipient)
		do, ack = c.in.Do, c.in.WriteRequest
	} else {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	fwd := sip.NewRequest(req.Method, target)
	for _, h := range contentType(req) {
		fwd.AppendHeader(h)
	}
	fwd.SetBody(req.Body())
	res, err := do(ctx, fwd)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error: the other party did not answer")
		return
	}
	if req.IsInvite() && res.IsSuccess() {
		a := sip.NewRequest(sip.ACK, target)
		a.SetBody(nil)
		if err := ack(a); err != nil {
			b.log.Warn("ack re-INVITE on the far leg", "error", err)
		}
	}
	out := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, res.Body())
	for _, h := range contentType(res) {
		out.AppendHeader(h)
	}
	_ = tx.Respond(out)
}

// remoteTarget is where in-dialog requests go: the peer's Contact from m,
// else fallback.
func remoteTarget(m interface{ Contact() *sip.ContactHeader }, fallback sip.Uri) sip.Uri {
	if c := m.Contact(); c != nil {
		return c.Address
	}
	return fallback
}

// lookup finds a connected call by either dialog ID.
func (b *B2BUA) lookup(id string) *call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[id]
}

// Dispositions of a call record.
const (
	DispAnswered    = "answered"
	DispBusy        = "busy"
	DispNoAnswer    = "no_answer"
	DispUnavailable = "unavailable"
	DispCancelled   = "cancelled"
	DispFailed      = "failed"
	DispRefused     = "refused"
)

// finish closes a call record and hands it to the journal. rec is nil on a
// node that only carries another node's leg: the caller's node records.
func (b *B2BUA) finish(rec *store.CallRecord, status int, disposition string) {
	if rec == nil || b.journal == nil {
		return
	}
	rec.End, rec.Status, rec.Disposition = time.Now().UTC(), status, disposition
	b.journal.Record(*rec)
}

// newRecordID is a random UUID (version 4), the record's stable id.
func newRecordID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
