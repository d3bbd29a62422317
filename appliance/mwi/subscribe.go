package mwi

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
)

// subscription is one phone's message-summary subscription (RFC 6665): a
// dialog this node is the notifier of.
type subscription struct {
	key, mailbox, username, callID string
	local                          sip.FromHeader // the NOTIFYs' From: the SUBSCRIBE's To with our tag
	remote                         sip.ToHeader   // the NOTIFYs' To: the SUBSCRIBE's From
	target                         sip.Uri        // the subscriber's Contact
	source, transport              string         // the flow the SUBSCRIBE came over
	created                        time.Time
	expires                        time.Time // under Notifier.mu

	mu       sync.Mutex
	cseq     uint32
	last     Summary
	notified bool
	state    string // "": active; else the terminated state of the last NOTIFY
}

// dialogKey names a subscription by its dialog: Call-ID and both tags.
func dialogKey(callID, remoteTag, localTag string) string {
	return callID + "\x00" + remoteTag + "\x00" + localTag
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// eventPackage is the package of a request's Event header, without
// parameters, lower-case.
func eventPackage(req *sip.Request) string {
	h := req.GetHeader("Event")
	if h == nil {
		return ""
	}
	pkg, _, _ := strings.Cut(h.Value(), ";")
	return strings.ToLower(strings.TrimSpace(pkg))
}

// acceptsSummary reports whether the subscriber takes the body: no Accept
// means the package's default (RFC 6665 §4.1.2.1).
func acceptsSummary(req *sip.Request) bool {
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for t := range strings.SplitSeq(h.Value(), ",") {
			t, _, _ = strings.Cut(t, ";")
			switch strings.ToLower(strings.TrimSpace(t)) {
			case ContentType, "application/*", "*/*", "":
				return true
			}
		}
	}
	return false
}

// OnSubscribe answers SUBSCRIBE: message-summary to the caller's own
// mailbox is granted (200, then a NOTIFY at once); other packages get 489.
func (n *Notifier) OnSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	if !registrar.Sane(req, tx) {
		return
	}
	if eventPackage(req) != Event {
		respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", Event))
		return
	}
	if !acceptsSummary(req) {
		respond(tx, req, 406, "Not Acceptable", sip.NewHeader("Accept", ContentType))
		return
	}
	secs, ok := expiresHeader(req)
	if !ok {
		respond(tx, req, 400, "Bad Request: Expires is not a number of seconds")
		return
	}
	secs, minExp, ok := registrar.GrantExpires(secs, n.opt.MinExpires, n.opt.DefaultExpires)
	if !ok {
		respond(tx, req, 423, "Interval Too Brief", minExp)
		return
	}
	secs = min(secs, int(n.opt.MaxExpires/time.Second))
	if req.Contact() == nil {
		respond(tx, req, 400, "Bad Request: SUBSCRIBE without Contact")
		return
	}
	user, ok := n.auth.AuthenticateRequest(req, tx)
	if !ok {
		return
	}
	ctx := context.Background()
	if tag, _ := req.To().Params.Get("tag"); tag != "" {
		n.refresh(ctx, req, tx, user, tag, secs)
		return
	}
	target := req.Recipient.User
	if target == "" {
		target = req.To().Address.User
	}
	if !registrar.Owns(user, target) {
		respond(tx, req, 403, "Forbidden: subscribe to your own mailbox")
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	localTag, _ := res.To().Params.Get("tag")
	remoteTag, _ := req.From().Params.Get("tag")
	now := n.opt.Now()
	s := &subscription{
		key:      dialogKey(req.CallID().Value(), remoteTag, localTag),
		mailbox:  user.ID,
		username: user.SIP.Username,
		callID:   req.CallID().Value(),
		local:    sip.FromHeader{DisplayName: res.To().DisplayName, Address: res.To().Address, Params: res.To().Params.Clone()},
		remote: sip.ToHeader{DisplayName: req.From().DisplayName, Address: req.From().Address,
			Params: req.From().Params.Clone()},
		target:    req.Contact().Address,
		source:    req.Source(),
		transport: req.Transport(),
		created:   now,
		expires:   now.Add(time.Duration(secs) * time.Second),
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
	res.AppendHeader(n.opt.Contact.Clone())
	log := n.log.With("username", s.username, "call_id", s.callID, "source", s.source)
	switch {
	case !user.VoicemailSettings().Enabled:
		s.state = "terminated;reason=noresource"
		log.Info("message waiting subscription refused: no mailbox")
	case secs == 0: // a fetch: one NOTIFY, no subscription
		s.state = "terminated;reason=timeout"
	default:
		n.add(s)
		log.Info("message waiting subscribed", "expires_s", secs)
	}
	_ = tx.Respond(res)
	go n.first(ctx, s)
}

// add keeps s, ending the user's oldest subscription past MaxPerUser.
func (n *Notifier) add(s *subscription) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var oldest *subscription
	count := 0
	for _, o := range n.subs {
		if o.mailbox != s.mailbox {
			continue
		}
		count++
		if oldest == nil || o.created.Before(oldest.created) {
			oldest = o
		}
	}
	if count >= n.opt.MaxPerUser && oldest != nil {
		delete(n.subs, oldest.key)
		n.log.Info("message waiting subscription dropped: too many for the user", "username", oldest.username, "call_id", oldest.callID)
	}
	n.subs[s.key] = s
}

// refresh handles a SUBSCRIBE inside a subscription's dialog: a new
// lifetime, or its end (Expires: 0). A dialog this node does not know (it
// was subscribed on another node, or before a restart) gets 481, and the
// phone subscribes afresh.
func (n *Notifier) refresh(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, user account.User, localTag string, secs int) {
	remoteTag, _ := req.From().Params.Get("tag")
	key := dialogKey(req.CallID().Value(), remoteTag, localTag)
	n.mu.Lock()
	s := n.subs[key]
	if s != nil && s.mailbox == user.ID {
		if secs == 0 {
			delete(n.subs, key)
		} else {
			s.expires = n.opt.Now().Add(time.Duration(secs) * time.Second)
		}
	}
	n.mu.Unlock()
	switch {
	case s == nil:
		respond(tx, req, 481, "Subscription Does Not Exist")
		return
	case s.mailbox != user.ID:
		respond(tx, req, 403, "Forbidden: not your subscription")
		return
	}
	respond(tx, req, 200, "OK", sip.NewHeader("Expires", strconv.Itoa(secs)), n.opt.Contact.Clone())
	if secs == 0 {
		s.mu.Lock()
		s.state = "terminated;reason=timeout"
		s.mu.Unlock()
		n.log.Info("message waiting unsubscribed", "username", s.username, "call_id", s.callID)
	}
	go n.first(ctx, s)
}

// first sends a subscription's NOTIFY after a SUBSCRIBE: always, whatever
// the last one said (RFC 6665 §4.2.1.2).
func (n *Notifier) first(ctx context.Context, s *subscription) {
	unlock := n.lockMailbox(s.mailbox)
	defer unlock()
	sum, err := n.summary(ctx, s.mailbox, s.username)
	if err != nil {
		n.log.Warn("message waiting not sent", "username", s.username, "error", err)
		sum = Summary{}
	}
	n.notify(ctx, s, sum, true)
}

// terminate sends s's last NOTIFY, terminated for reason.
func (n *Notifier) terminate(ctx context.Context, s *subscription, reason string) {
	s.mu.Lock()
	s.state = "terminated;reason=" + reason
	s.mu.Unlock()
	n.first(ctx, s)
}

// notify sends sum to s, unless s already has it (force sends anyway).
// The caller holds s's mailbox lock. A subscriber that refuses the NOTIFY
// or does not answer ends the subscription (RFC 6665 §4.2.2).
func (n *Notifier) notify(ctx context.Context, s *subscription, sum Summary, force bool) {
	s.mu.Lock()
	if !force && s.notified && s.last == sum {
		s.mu.Unlock()
		return
	}
	state := s.state
	if state == "" {
		n.mu.Lock()
		alive := n.subs[s.key] == s
		left := s.expires.Sub(n.opt.Now())
		n.mu.Unlock()
		if !alive || left <= 0 {
			s.mu.Unlock()
			return // ended meanwhile: its terminating NOTIFY is sent by whoever ended it
		}
		state = "active;expires=" + strconv.Itoa(int((left+time.Second-1)/time.Second))
	}
	s.cseq++
	s.last, s.notified = sum, true
	req := s.request(sum, state, n.opt.Contact)
	s.mu.Unlock()

	log := n.log.With("username", s.username, "call_id", s.callID, "subscription_state", state)
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	res, err := n.opt.Send(ctx, req)
	if err == nil && res.IsSuccess() {
		log.Debug("message waiting notified", "new", sum.New, "old", sum.Old)
		return
	}
	if err == nil {
		log.Info("message waiting NOTIFY refused: subscription ended", "status", res.StatusCode)
	} else {
		log.Info("message waiting NOTIFY not answered: subscription ended", "error", err)
	}
	n.mu.Lock()
	if n.subs[s.key] == s {
		delete(n.subs, s.key)
	}
	n.mu.Unlock()
}

// request is the NOTIFY in s's dialog.
func (s *subscription) request(sum Summary, state string, contact sip.ContactHeader) *sip.Request {
	req := sip.NewRequest(sip.NOTIFY, s.target)
	req.SetDestination(s.source)
	req.SetTransport(s.transport)
	from := s.local
	from.Params = from.Params.Clone()
	to := s.remote
	to.Params = to.Params.Clone()
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	callID := sip.CallIDHeader(s.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(contact.Clone())
	req.AppendHeader(sip.NewHeader("Event", Event))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", ContentType))
	req.SetBody(sum.Body())
	return req
}

// Subscriptions is how many subscriptions this node holds.
func (n *Notifier) Subscriptions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}
