package registrar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Directory is what the registrar reads from the config plane.
type Directory interface {
	Account(ctx context.Context) (account.Account, error)
	UserByUsername(ctx context.Context, username string) (account.User, error) // store.ErrNotFound
	Mode(ctx context.Context) (string, time.Time, error)
}

// Options tune the registrar. Zero values take the defaults.
type Options struct {
	NodeID               string
	MinExpires           time.Duration // shorter requests get 423 (default 60 s)
	MaxExpires           time.Duration // longer ones are cut to this (default 3600 s)
	DefaultExpires       time.Duration // when the phone names none (default 3600 s)
	SurvivabilityExpires time.Duration // the cap while the mode is survivability or recovering (default 120 s)
	// SiteCapacity bounds the live bindings per site on this node; 0:
	// unlimited. Its last PriorityReserve(SiteCapacity) places are kept
	// for users whose priority is emergency or common_area.
	SiteCapacity int
	// FailbackExpires caps the interval while the mode is normal, so
	// phones that failed over re-register soon and find the cloud again;
	// 0: no cap beyond MaxExpires (the node sets sip.failback_expires).
	FailbackExpires time.Duration
	// Failback is what else sends idle phones back to the cloud in
	// normal mode: FailbackOff (or ""), FailbackNotify or FailbackReject.
	Failback string
	// FailbackRetryAfter is the Retry-After of FailbackReject's 503
	// (default 30 s).
	FailbackRetryAfter time.Duration
	// InCall reports whether a user, by SIP username, is in a call here:
	// failback never disturbs them. nil: nobody is.
	InCall func(username string) bool
	// Send sends a request outside any dialog (to its destination, over
	// its transport) and returns the final response: sipgo's Client.Do.
	// FailbackNotify needs it.
	Send func(ctx context.Context, req *sip.Request) (*sip.Response, error)
	// NotifyRate bounds FailbackNotify's NOTIFYs per second (default 50).
	NotifyRate int
	// FailbackScan is how often Run looks for bindings to notify
	// (default 1 s).
	FailbackScan time.Duration
	// MaxInFlight bounds the REGISTERs handled at once; past it a REGISTER
	// gets 503 with Retry-After at once instead of queueing, so a node that
	// falls behind sheds load rather than collapsing under retransmissions
	// (default 1024).
	MaxInFlight int
	// LocalHost reports whether host names this node or another member, so
	// an AOR may use it instead of the realm.
	LocalHost func(host string) bool
	Now       func() time.Time
}

func (o *Options) defaults() {
	ExpiresDefaults(&o.MinExpires, &o.MaxExpires, &o.DefaultExpires)
	if o.SurvivabilityExpires == 0 {
		o.SurvivabilityExpires = 120 * time.Second
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 1024
	}
	if o.FailbackRetryAfter == 0 {
		o.FailbackRetryAfter = 30 * time.Second
	}
	if o.InCall == nil {
		o.InCall = func(string) bool { return false }
	}
	if o.NotifyRate == 0 {
		o.NotifyRate = 50
	}
	if o.FailbackScan == 0 {
		o.FailbackScan = time.Second
	}
	if o.LocalHost == nil {
		o.LocalHost = func(string) bool { return false }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Registrar answers REGISTER and OPTIONS.
type Registrar struct {
	dir      Directory
	digest   *Digest
	throttle *Throttle
	loc      *Location
	opt      Options
	log      *slog.Logger
	inFlight chan struct{} // a slot per REGISTER being handled
	shed     atomic.Int64  // REGISTERs answered 503 for load
}

// New builds a registrar over a directory, a digest authenticator shared
// with the call handlers, and the node's location service.
func New(dir Directory, digest *Digest, throttle *Throttle, loc *Location, opt Options, log *slog.Logger) *Registrar {
	opt.defaults()
	return &Registrar{dir: dir, digest: digest, throttle: throttle, loc: loc, opt: opt, log: log,
		inFlight: make(chan struct{}, opt.MaxInFlight)}
}

// durableWait bounds how long a REGISTER's answer waits for its group
// commit.
const durableWait = time.Second

// Allow and Accept list what Outpost's SIP side understands.
const (
	allowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER, UPDATE, INFO, SUBSCRIBE"
	acceptTypes  = "application/sdp"
	supported    = "path, outbound, replaces, timer"
)

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// Sane answers, and returns false for, requests RFC 3261 says to refuse
// before looking at them: another SIP version (505, §8.2; RFC 4475
// §3.1.2.16) or a CSeq whose method is not the request's (400, §8.1.1.5;
// RFC 4475 §3.1.2.17). Every request handler starts with it.
func Sane(req *sip.Request, tx sip.ServerTransaction) bool {
	if req.SipVersion != "SIP/2.0" {
		respond(tx, req, 505, "Version Not Supported")
		return false
	}
	if cs := req.CSeq(); cs != nil && cs.MethodName != req.Method {
		respond(tx, req, 400, "Bad Request: CSeq method does not match the request")
		return false
	}
	return true
}

// OnOptions answers OPTIONS with what the node supports.
func (r *Registrar) OnOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !Sane(req, tx) {
		return
	}
	respond(tx, req, 200, "OK",
		sip.NewHeader("Allow", allowMethods),
		sip.NewHeader("Accept", acceptTypes),
		sip.NewHeader("Supported", supported))
}

// errRefused carries a SIP answer out of the binding update.
type errRefused struct {
	code     int
	reason   string
	hdrs     []sip.Header
	failback bool // refused by failback "reject"
}

func (e *errRefused) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// OnRegister authenticates a REGISTER and updates the AOR's bindings
// (RFC 3261 §10.3).
func (r *Registrar) OnRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !Sane(req, tx) {
		return
	}
	select {
	case r.inFlight <- struct{}{}:
		defer func() { <-r.inFlight }()
	default:
		if r.shed.Add(1)%1000 == 1 {
			r.log.Warn("shedding REGISTERs: too many in flight", "max_in_flight", r.opt.MaxInFlight, "shed_total", r.shed.Load())
		}
		respond(tx, req, 503, "Service Unavailable: busy", sip.NewHeader("Retry-After", "1"))
		return
	}
	ctx := context.Background()
	now := r.opt.Now()
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		respond(tx, req, 400, "Bad Request: To, Call-ID and CSeq are required")
		return
	}
	acct, err := r.dir.Account(ctx)
	if err != nil || acct.SIPRealm == "" {
		respond(tx, req, 503, "Service Unavailable: no account configuration yet", sip.NewHeader("Retry-After", "30"))
		return
	}
	host := strings.ToLower(to.Address.Host)
	if host != acct.SIPRealm && !r.opt.LocalHost(host) {
		respond(tx, req, 404, "Not Found: domain not served here")
		return
	}
	user, ok := r.authenticate(ctx, req, tx, acct.SIPRealm, "Authorization", 401)
	if !ok {
		return
	}
	if !Owns(user, to.Address.User) {
		respond(tx, req, 403, "Forbidden: the authenticated user does not own this address")
		return
	}
	contacts, wildcard, err := parseContacts(req)
	if err != nil {
		respond(tx, req, 400, "Bad Request: "+err.Error())
		return
	}
	expiresHdr := -1
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			respond(tx, req, 400, "Bad Request: Expires is not a number of seconds")
			return
		}
		expiresHdr = int(min(n, 1<<31-1))
	}
	if wildcard && expiresHdr != 0 {
		respond(tx, req, 400, "Bad Request: Contact * needs Expires: 0")
		return
	}
	aor := user.SIP.Username + "@" + acct.SIPRealm
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo
	mode, _, err := r.dir.Mode(ctx)
	if err != nil {
		mode = store.ModeNormal // as when it was never set
	}
	maxExp := r.maxExpires(mode)
	// Failback "reject" turns away the refresh of an existing binding so
	// the phone goes back to its first server; a user in a call is left
	// alone (asked here, outside the location's lock, and only when the
	// AOR has a binding to refresh).
	reject := mode == store.ModeNormal && r.opt.Failback == FailbackReject && len(contacts) > 0 &&
		len(r.loc.Lookup(aor, now)) > 0 && !r.opt.InCall(user.SIP.Username)
	src := flowSource(req)
	bindings, err := r.loc.Update(aor, now, func(cur []store.Binding, siteCount func(string) int) ([]store.Binding, error) {
		if wildcard {
			for _, b := range cur {
				if b.CallID == callID && cseq < b.CSeq {
					return nil, &errRefused{code: 500, reason: "Server Internal Error: out-of-order REGISTER"}
				}
			}
			return nil, nil
		}
		next := slices.Clone(cur)
		added := 0
		for _, c := range contacts {
			exp := c.expires
			if exp < 0 {
				exp = expiresHdr
			}
			exp, minExp, ok := GrantExpires(exp, r.opt.MinExpires, r.opt.DefaultExpires)
			if !ok {
				return nil, &errRefused{code: 423, reason: "Interval Too Brief", hdrs: []sip.Header{minExp}}
			}
			id := bindingID(aor, c)
			i := slices.IndexFunc(next, func(b store.Binding) bool { return b.ID == id })
			if i >= 0 && next[i].CallID == callID && cseq == next[i].CSeq {
				continue // a retransmission that outlived its transaction: already applied
			}
			if i >= 0 && next[i].CallID == callID && cseq < next[i].CSeq {
				return nil, &errRefused{code: 500, reason: "Server Internal Error: out-of-order REGISTER"}
			}
			if reject && exp > 0 && i >= 0 {
				return nil, &errRefused{code: 503, reason: reasonFailback, failback: true,
					hdrs: []sip.Header{sip.NewHeader("Retry-After", r.retryAfter())}}
			}
			if exp == 0 {
				if i >= 0 {
					next = slices.Delete(next, i, i+1)
				}
				continue
			}
			b := store.Binding{
				ID: id, AOR: aor, UserID: user.ID, Username: user.SIP.Username, Site: user.Site,
				Contact: c.raw, InstanceID: c.instanceID, RegID: c.regID,
				CallID: callID, CSeq: cseq, Transport: strings.ToLower(req.Transport()), Source: src,
				Node: r.opt.NodeID, UserAgent: headerValue(req, "User-Agent"),
				Expires:   now.Add(min(time.Duration(exp)*time.Second, maxExp)),
				UpdatedAt: now,
			}
			if i >= 0 {
				next[i] = b
			} else {
				next = append(next, b)
				added++
			}
		}
		if added > 0 && r.opt.SiteCapacity > 0 && siteCount(user.Site)+len(next) > admitted(r.opt.SiteCapacity, user) {
			return nil, &errRefused{code: 503, reason: "Service Unavailable: site at capacity",
				hdrs: []sip.Header{sip.NewHeader("Retry-After", "60")}}
		}
		return next, nil
	})
	mark := r.loc.Queued()
	var refused *errRefused
	if errors.As(err, &refused) {
		if refused.failback {
			r.log.Info("failback: re-REGISTER refused so the phone returns to its primary server",
				"aor", aor, "source", src, "retry_after", r.retryAfter())
		}
		respond(tx, req, refused.code, refused.reason, refused.hdrs...)
		return
	}
	// The 200 says the registration holds: wait for the group commit that
	// puts it on disk (about 20 ms), so a node killed right after answering
	// keeps it. A store that cannot write (a full disk) does not hold the
	// answer: the registration stays in memory, the location keeps
	// retrying, and the wait is bounded by durableWait.
	wctx, cancel := context.WithTimeout(ctx, durableWait)
	r.loc.WaitDurable(wctx, mark)
	cancel()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bindings {
		secs := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(secs)))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	res.AppendHeader(sip.NewHeader("Supported", supported))
	_ = tx.Respond(res)
}

// AuthenticateRequest authenticates a request other than REGISTER (an
// INVITE) with Proxy-Authorization, answering 407 with fresh challenges
// when the credentials are missing or wrong (RFC 3261 §22.3).
func (r *Registrar) AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool) {
	ctx := context.Background()
	acct, err := r.dir.Account(ctx)
	if err != nil || acct.SIPRealm == "" {
		respond(tx, req, 503, "Service Unavailable: no account configuration yet", sip.NewHeader("Retry-After", "30"))
		return account.User{}, false
	}
	return r.authenticate(ctx, req, tx, acct.SIPRealm, "Proxy-Authorization", 407)
}

// authenticate checks the request's credentials in header (Authorization or
// Proxy-Authorization), answering code (401 or 407) with fresh challenges
// when they are missing or wrong. Unknown users and wrong passwords get the
// same answer after the same work.
func (r *Registrar) authenticate(ctx context.Context, req *sip.Request, tx sip.ServerTransaction,
	realm, header string, code int) (account.User, bool) {
	ip := sourceIP(req)
	if !r.throttle.Allowed(ip) {
		respond(tx, req, 403, "Forbidden: too many failed attempts; wait and retry")
		return account.User{}, false
	}
	challenge := func(stale bool) {
		name := "WWW-Authenticate"
		if code == 407 {
			name = "Proxy-Authenticate"
		}
		res := sip.NewResponseFromRequest(req, code, map[int]string{401: "Unauthorized", 407: "Proxy Authentication Required"}[code], nil)
		for _, v := range r.digest.Challenges(realm, stale) {
			res.AppendHeader(sip.NewHeader(name, v))
		}
		_ = tx.Respond(res)
	}
	h := req.GetHeader(header)
	if h == nil {
		challenge(false)
		return account.User{}, false
	}
	cred, err := ParseCredentials(h.Value())
	if err != nil {
		r.throttle.Fail(ip)
		respond(tx, req, 400, "Bad Request: "+err.Error())
		return account.User{}, false
	}
	user, err := r.dir.UserByUsername(ctx, cred.Username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		respond(tx, req, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return account.User{}, false
	}
	ha1 := r.digest.DecoyHA1(cred.Username, realm, cred.Algorithm)
	if alg, aerr := cred.DigestAlgorithm(); known && aerr == nil {
		ha1 = user.SIP.HA1MD5
		if alg == account.DigestSHA256 {
			ha1 = user.SIP.HA1SHA256
		}
	}
	err = r.digest.Verify(cred, realm, string(req.Method), ha1)
	switch {
	case err == nil && known:
		r.throttle.Succeed(ip)
		return user, true
	case errors.Is(err, ErrStaleNonce), errors.Is(err, ErrReplay):
		// The response was right for a nonce that is too old or already
		// used: a fresh nonce, no penalty (nothing was guessed).
		challenge(true)
	default:
		r.throttle.Fail(ip)
		r.log.Debug("authentication failed", "username", cred.Username, "source", req.Source(), "error", err)
		challenge(false)
	}
	return account.User{}, false
}

// Owns reports whether an AOR user part belongs to the user: the SIP
// username, the extension or one of the user's numbers.
func Owns(u account.User, aorUser string) bool {
	return aorUser == u.SIP.Username || (aorUser != "" && aorUser == u.Extension) || slices.Contains(u.Numbers, aorUser)
}

// bindingID is stable for one device of one AOR: its RFC 5626 instance-id
// when it sends one, else its contact URI.
func bindingID(aor string, c contact) string {
	key := c.raw
	if c.instanceID != "" {
		key = c.instanceID + ";" + strconv.Itoa(c.regID)
	}
	sum := sha256.Sum256([]byte(aor + "|" + key))
	return hex.EncodeToString(sum[:16])
}

// flowSource is where the request came from (received/rport, RFC 3581): the
// flow calls go back through.
func flowSource(req *sip.Request) string { return req.Source() }

func sourceIP(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
