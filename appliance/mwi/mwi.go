package mwi

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Authenticator authenticates a request and answers the challenge itself
// when the credentials are missing or wrong (registrar.Registrar).
type Authenticator interface {
	AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool)
}

// Directory is what mwi reads of the config plane: the realm.
type Directory interface {
	Account(ctx context.Context) (account.Account, error)
}

// Mailboxes counts a mailbox's messages (voicemail.Box).
type Mailboxes interface {
	Counts(ctx context.Context, mailbox string) (newCount, saved int, err error)
}

// Bindings is the node's location service: the live bindings whose flows
// this node holds (registrar.Location).
type Bindings interface {
	Live(now time.Time) []store.Binding
}

// Options tune the notifier. Zero values take the defaults.
type Options struct {
	// Contact is the node's Contact in the subscriptions' dialogs.
	Contact sip.ContactHeader
	// Send sends a request outside any transaction of ours and returns the
	// final response (sipgo's Client.Do).
	Send func(ctx context.Context, req *sip.Request) (*sip.Response, error)
	// MinExpires, MaxExpires and DefaultExpires bound a subscription's
	// lifetime: shorter requests get 423, longer ones are cut, and a
	// SUBSCRIBE without Expires gets the default (60 s, 3600 s, 3600 s).
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// RegisterDelay is how long after a new registration the phone is
	// told of its waiting messages, so a phone that subscribes right
	// after registering gets only its subscription's NOTIFY (default 2 s).
	RegisterDelay time.Duration
	// MaxPerUser bounds one user's subscriptions here; a new one past it
	// ends the oldest (default 16).
	MaxPerUser int
	Now        func() time.Time
	// After runs f after d (time.AfterFunc; tests run it at once).
	After func(d time.Duration, f func())
}

func (o *Options) defaults() {
	registrar.ExpiresDefaults(&o.MinExpires, &o.MaxExpires, &o.DefaultExpires)
	if o.RegisterDelay == 0 {
		o.RegisterDelay = 2 * time.Second
	}
	if o.MaxPerUser == 0 {
		o.MaxPerUser = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
}

// notifyTimeout bounds one NOTIFY transaction.
const notifyTimeout = 8 * time.Second

// Notifier is the node's message-summary notifier.
type Notifier struct {
	auth  Authenticator
	dir   Directory
	boxes Mailboxes
	loc   Bindings
	opt   Options
	log   *slog.Logger

	mu    sync.Mutex
	subs  map[string]*subscription // by dialog key
	last  map[string]Summary       // by binding id: the last unsolicited summary sent (or found empty)
	boxMu map[string]*sync.Mutex   // by mailbox: one pass at a time, so NOTIFYs follow the changes' order
}

// New builds a notifier.
func New(auth Authenticator, dir Directory, boxes Mailboxes, loc Bindings, opt Options, log *slog.Logger) *Notifier {
	opt.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{auth: auth, dir: dir, boxes: boxes, loc: loc, opt: opt, log: log,
		subs: map[string]*subscription{}, last: map[string]Summary{}, boxMu: map[string]*sync.Mutex{}}
}

// lockMailbox serializes the passes over one mailbox.
func (n *Notifier) lockMailbox(mailbox string) func() {
	n.mu.Lock()
	m := n.boxMu[mailbox]
	if m == nil {
		m = &sync.Mutex{}
		n.boxMu[mailbox] = m
	}
	n.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// summary is mailbox's summary for username's phones.
func (n *Notifier) summary(ctx context.Context, mailbox, username string) (Summary, error) {
	acct, err := n.dir.Account(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("read account: %w", err)
	}
	newCount, saved, err := n.boxes.Counts(ctx, mailbox)
	if err != nil {
		return Summary{}, fmt.Errorf("count mailbox %s: %w", mailbox, err)
	}
	return Summary{Account: messageAccount(username, acct.SIPRealm), New: newCount, Old: saved}, nil
}

// Changed NOTIFYs every subscription of mailbox, and every phone of its
// user registered here without one, whose last summary differs from the
// mailbox's now. The node calls it for every change of a message, made
// here or replicated.
func (n *Notifier) Changed(ctx context.Context, mailbox string) {
	unlock := n.lockMailbox(mailbox)
	defer unlock()
	now := n.opt.Now()
	n.mu.Lock()
	var subs []*subscription
	for _, s := range n.subs {
		if s.mailbox == mailbox {
			subs = append(subs, s)
		}
	}
	n.mu.Unlock()
	var bs []store.Binding
	for _, b := range n.loc.Live(now) {
		if b.UserID == mailbox && !n.covered(b) {
			bs = append(bs, b)
		}
	}
	if len(subs) == 0 && len(bs) == 0 {
		return
	}
	username := ""
	if len(subs) > 0 {
		username = subs[0].username
	} else {
		username = bs[0].Username
	}
	sum, err := n.summary(ctx, mailbox, username)
	if err != nil {
		n.log.Warn("message waiting not sent", "mailbox", mailbox, "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() { defer wg.Done(); n.notify(ctx, s, sum, false) }()
	}
	for _, b := range bs {
		n.mu.Lock()
		prev, known := n.last[b.ID]
		n.mu.Unlock()
		if known && prev == sum {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); n.unsolicited(ctx, b, sum) }()
	}
	wg.Wait()
}

// Registered is told of the bindings the registrar wrote (the node's
// location persist hook). A binding this notifier has not seen is a
// phone that just registered: after RegisterDelay, if it has not
// subscribed and its mailbox holds messages, it gets an unsolicited
// NOTIFY. Removed bindings are forgotten.
func (n *Notifier) Registered(ctx context.Context, bs []store.Binding) {
	var fresh []store.Binding
	n.mu.Lock()
	for _, b := range bs {
		if b.Deleted {
			delete(n.last, b.ID)
			continue
		}
		if _, known := n.last[b.ID]; !known {
			n.last[b.ID] = Summary{} // known from now on: refreshes do not greet again
			fresh = append(fresh, b)
		}
	}
	n.mu.Unlock()
	for _, b := range fresh {
		n.opt.After(n.opt.RegisterDelay, func() {
			if ctx.Err() == nil {
				n.greet(ctx, b)
			}
		})
	}
}

// greet tells a phone that just registered of its waiting messages.
func (n *Notifier) greet(ctx context.Context, b store.Binding) {
	unlock := n.lockMailbox(b.UserID)
	defer unlock()
	if n.covered(b) {
		return
	}
	sum, err := n.summary(ctx, b.UserID, b.Username)
	if err != nil {
		n.log.Warn("message waiting not sent", "mailbox", b.UserID, "aor", b.AOR, "error", err)
		return
	}
	if sum.Empty() {
		n.mu.Lock()
		if _, known := n.last[b.ID]; known {
			n.last[b.ID] = sum
		}
		n.mu.Unlock()
		return
	}
	n.unsolicited(ctx, b, sum)
}

// unsolicited sends sum to a binding outside any subscription.
func (n *Notifier) unsolicited(ctx context.Context, b store.Binding, sum Summary) {
	log := n.log.With("aor", b.AOR, "contact", b.Contact, "source", b.Source)
	req, err := unsolicitedRequest(b, sum, n.opt.Contact)
	if err != nil {
		log.Warn("message waiting not sent", "error", err)
		return
	}
	n.mu.Lock()
	n.last[b.ID] = sum
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	res, err := n.opt.Send(ctx, req)
	if err != nil {
		log.Info("unsolicited message waiting sent, no answer", "error", err)
		return
	}
	log.Info("unsolicited message waiting sent", "new", sum.New, "old", sum.Old, "status", res.StatusCode)
}

// unsolicitedRequest is the NOTIFY for b outside any subscription: to its
// contact, through the flow it registered from, from and to the mailbox's
// account. Its Subscription-State is terminated: there is no
// subscription to keep.
func unsolicitedRequest(b store.Binding, sum Summary, contact sip.ContactHeader) (*sip.Request, error) {
	var uri, acct sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, fmt.Errorf("binding contact %q: %w", b.Contact, err)
	}
	if err := sip.ParseUri(sum.Account, &acct); err != nil {
		return nil, fmt.Errorf("message account %q: %w", sum.Account, err)
	}
	req := sip.NewRequest(sip.NOTIFY, uri)
	req.SetDestination(b.Source)
	req.SetTransport(strings.ToUpper(b.Transport))
	from := &sip.FromHeader{Address: acct, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: acct, Params: sip.NewParams()})
	req.AppendHeader(contact.Clone())
	req.AppendHeader(sip.NewHeader("Event", Event))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	req.AppendHeader(sip.NewHeader("Content-Type", ContentType))
	req.SetBody(sum.Body())
	return req, nil
}

// covered reports whether a binding's phone has a subscription here: it
// hears from that instead of unsolicited NOTIFYs.
func (n *Notifier) covered(b store.Binding) bool {
	var uri sip.Uri
	parsed := sip.ParseUri(b.Contact, &uri) == nil
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.subs {
		if s.mailbox != b.UserID {
			continue
		}
		if s.source == b.Source || parsed && sameContact(s.target, uri) {
			return true
		}
	}
	return false
}

// sameContact compares two contacts by user, host and port.
func sameContact(a, b sip.Uri) bool {
	port := func(u sip.Uri) int {
		if u.Port == 0 {
			return 5060
		}
		return u.Port
	}
	return a.User == b.User && strings.EqualFold(a.Host, b.Host) && port(a) == port(b)
}

// Run ends expired subscriptions (terminated;reason=timeout) and forgets
// unsolicited state of bindings gone, every second, until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.Sweep(ctx)
		}
	}
}

// Sweep ends the subscriptions expired by now and forgets the bindings no
// longer live.
func (n *Notifier) Sweep(ctx context.Context) {
	now := n.opt.Now()
	live := map[string]bool{}
	for _, b := range n.loc.Live(now) {
		live[b.ID] = true
	}
	n.mu.Lock()
	var expired []*subscription
	for k, s := range n.subs {
		if !now.Before(s.expires) {
			delete(n.subs, k)
			expired = append(expired, s)
		}
	}
	for id := range n.last {
		if !live[id] {
			delete(n.last, id)
		}
	}
	n.mu.Unlock()
	for _, s := range expired {
		n.log.Info("message waiting subscription expired", "username", s.username, "call_id", s.callID)
		n.terminate(ctx, s, "timeout")
	}
}

// expiresHeader parses a request's Expires: -1 when there is none; ok
// false when it is malformed.
func expiresHeader(req *sip.Request) (secs int, ok bool) {
	h := req.GetHeader("Expires")
	if h == nil {
		return -1, true
	}
	v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}
