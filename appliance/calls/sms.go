package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sbc"
)

// SMS invitations (issue 8): the owner of a call texts someone the way in
// (the dial-in number and the call's PIN, or a text of their own) as a SIP
// MESSAGE (RFC 3428) through the trunks, which the SBC delivers as an SMS.
// The trunks and the caller ID are a call-out's (calloutRoute); a trunk
// that times out, answers 408 or 5xx, or cannot be reached gives way to
// the next.

// Limits of SMS invitations.
const (
	MaxSMSText   = 480 // characters (Unicode code points) of a text
	SMSPerMinute = 5   // SMS a call may send in any minute
	// smsTimeout is how long one trunk address has to answer a MESSAGE
	// before the next is tried.
	smsTimeout = 8 * time.Second
)

// SMS errors beyond invite.ErrBadNumber, invite.ErrNotOwner and the call
// engine's.
var (
	ErrBadSMSText = errors.New("an SMS text must be 1 to 480 characters of UTF-8 without control characters (line breaks included)")
	ErrSMSRate    = errors.New("too many SMS for this call: at most 5 a minute; wait and send again")
	ErrNoSMSTrunk = errors.New("no trunk can carry the SMS: none is up for the number's country or the owner's site")
	ErrSMSFailed  = errors.New("the SMS was not accepted")
)

// SMSError is a MESSAGE every trunk tried refused (or never answered):
// the last trunk's final status (408 when none came).
type SMSError struct {
	Status int
	Reason string
	Trunk  string
}

func (e *SMSError) Error() string {
	return fmt.Sprintf("%v: trunk %s answered %d %s", ErrSMSFailed, e.Trunk, e.Status, e.Reason)
}

func (e *SMSError) Unwrap() error { return ErrSMSFailed }

// SMSRequest is an SMS invitation to send: Number (E.164, no extension
// digits) and Text ("" for the default, SMSText).
type SMSRequest struct {
	Number string
	Text   string
}

// SMSResult is an SMS the SBC accepted: its final status and the trunk.
type SMSResult struct {
	Status int    `json:"status"`
	Trunk  string `json:"trunk"`
}

// SMSText is the default text of an SMS invitation from owner: the number
// to dial and, when the call has a PIN, a reminder of it. Every text the
// node proposes comes from here.
func SMSText(owner, number, pin string) string {
	if owner == "" {
		owner = "Someone"
	}
	var b strings.Builder
	b.WriteString(owner + " invites you to join a call.")
	switch {
	case number != "" && pin != "":
		b.WriteString(" Dial " + number + " and enter PIN " + pin + " followed by #.")
	case number != "":
		b.WriteString(" Dial " + number + ".")
	case pin != "":
		b.WriteString(" The PIN is " + pin + ".")
	}
	return b.String()
}

// CheckSMSText says why text cannot be sent (ErrBadSMSText), or nil.
func CheckSMSText(text string) error {
	switch n := utf8.RuneCountInString(text); {
	case !utf8.ValidString(text):
		return fmt.Errorf("%w: it is not valid UTF-8", ErrBadSMSText)
	case strings.TrimSpace(text) == "":
		return fmt.Errorf("%w: it is empty", ErrBadSMSText)
	case n > MaxSMSText:
		return fmt.Errorf("%w: it has %d", ErrBadSMSText, n)
	}
	for i, r := range text {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %U at byte %d", ErrBadSMSText, r, i)
		}
	}
	return nil
}

// SMSNumber is the E.164 number an SMS goes to: a call-out's number
// (invite.ParseNumber), without extension digits.
func SMSNumber(s string) (string, error) {
	number, dtmf, err := invite.ParseNumber(s)
	if err != nil {
		return "", err
	}
	if dtmf != "" {
		return "", fmt.Errorf("%w: an SMS goes to the number alone, without -digits", invite.ErrBadNumber)
	}
	return number, nil
}

// smsLimit is when each call's SMS were sent, within the last minute.
type smsLimit struct {
	sent map[string][]time.Time // by call (conf) id
}

// allow notes an SMS of call id now, unless it has sent SMSPerMinute in
// the last minute.
func (l *smsLimit) allow(id string, now time.Time) bool {
	from := now.Add(-time.Minute)
	for k, ts := range l.sent { // the map holds the calls of the last minute only
		for len(ts) > 0 && !ts[0].After(from) {
			ts = ts[1:]
		}
		if len(ts) == 0 {
			delete(l.sent, k)
		} else {
			l.sent[k] = ts
		}
	}
	if len(l.sent[id]) >= SMSPerMinute {
		return false
	}
	l.sent[id] = append(l.sent[id], now)
	return true
}

// SendSMS sends an SMS invitation to call id on behalf of its owner by
// (an admin passes the owner) and notes it in the call's history.
func (b *B2BUA) SendSMS(ctx context.Context, by, id string, r SMSRequest) (SMSResult, error) {
	cf, owner, err := b.ownedConf(ctx, by, id)
	if err != nil {
		return SMSResult{}, err
	}
	number, err := SMSNumber(r.Number)
	if err != nil {
		return SMSResult{}, err
	}
	text := r.Text
	if text == "" {
		info, err := b.inviteInfo(ctx, cf, owner)
		if err != nil {
			return SMSResult{}, err
		}
		text = info.SMSText
	} else if err := CheckSMSText(text); err != nil {
		return SMSResult{}, err
	}
	st := b.dialIns()
	st.mu.Lock()
	ok := st.sms.allow(cf.id, b.now())
	st.mu.Unlock()
	if !ok {
		return SMSResult{}, ErrSMSRate
	}
	callerID, trunks, err := b.smsRoute(ctx, number, owner)
	if err != nil {
		return SMSResult{}, err
	}
	log := b.log.With("call", cf.id, "number", number)
	res, err := b.sendMessage(ctx, trunks, callerID, owner.Name, number, text, log)
	note := fmt.Sprintf("SMS invitation to %s", number)
	if err != nil {
		var se *SMSError
		if errors.As(err, &se) {
			note += fmt.Sprintf(" refused (%d %s, trunk %s)", se.Status, se.Reason, se.Trunk)
		} else {
			note += " not sent"
		}
		log.Warn("sms invitation failed", "error", err)
	} else {
		note += fmt.Sprintf(" sent (trunk %s)", res.Trunk)
		log.Info("sms invitation sent", "trunk", res.Trunk, "status", res.Status, "caller_id", callerID)
	}
	cf.mu.Lock()
	cf.st.Note(owner.ID, note, b.now().UTC())
	cf.mu.Unlock()
	return res, err
}

// smsRoute is the caller ID and trunks of an SMS to number: a call-out's.
func (b *B2BUA) smsRoute(ctx context.Context, number string, owner account.User) (string, []account.Trunk, error) {
	cfgDir, ok1 := b.dir.(CalloutDirectory)
	trunkDir, ok2 := b.dir.(TrunkDirectory)
	if !ok1 || !ok2 || b.trunksSet() == nil {
		return "", nil, ErrNoSMSTrunk
	}
	co, err := cfgDir.Callout(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("read the callout settings: %w", err)
	}
	all, err := trunkDir.Trunks(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("read the trunks: %w", err)
	}
	callerID, trunks := b.calloutRoute(ctx, co, number, owner, all)
	if len(trunks) == 0 {
		return "", nil, ErrNoSMSTrunk
	}
	if callerID == "" { // no callout caller ID fits: the owner's own, as on a call
		site, _ := b.dir.Site(ctx, owner.Site)
		callerID = sbc.OutboundCallerID(owner, site)
	}
	return callerID, trunks, nil
}

// sendMessage sends text as a MESSAGE to number on each trunk in turn
// until one accepts it or one's refusal is final (sbc.FailOver).
func (b *B2BUA) sendMessage(ctx context.Context, trunks []account.Trunk, callerID, name, number, text string,
	log *slog.Logger) (SMSResult, error) {
	t := b.trunksSet()
	last := &SMSError{Status: 408, Reason: "Request Timeout"}
	for _, trunk := range trunks {
		status, reason, att := b.messageTrunk(ctx, t, trunk, callerID, name, number, text)
		if status >= 200 && status < 300 {
			return SMSResult{Status: status, Trunk: trunk.ID}, nil
		}
		last = &SMSError{Status: status, Reason: reason, Trunk: trunk.ID}
		log.Warn("sms: trunk attempt failed", "trunk", trunk.ID, "status", status, "reason", reason,
			"fail_over", sbc.FailOver(att))
		if ctx.Err() != nil || !sbc.FailOver(att) {
			break
		}
	}
	return SMSResult{}, last
}

// messageTrunk sends the MESSAGE to one trunk (each address its host
// resolves to in turn, on transport errors and timeouts) and returns the
// final status (408 when none came) and the attempt for sbc.FailOver.
func (b *B2BUA) messageTrunk(ctx context.Context, t *Trunks, trunk account.Trunk, callerID, name, number, text string) (int, string, sbc.Attempt) {
	eps, err := t.Resolver.Resolve(ctx, sbc.TargetOf(trunk))
	if err != nil {
		return 503, "Service Unavailable: " + err.Error(), sbc.Attempt{TransportError: true}
	}
	status, reason, att := 503, "Service Unavailable: the trunk has no address", sbc.Attempt{TransportError: true}
	for _, ep := range eps {
		status, reason, att = b.messageEndpoint(ctx, t, trunk, ep, callerID, name, number, text)
		if !att.TransportError && !att.NoAnswer {
			break // the SBC answered: its other addresses would say the same
		}
	}
	return status, reason, att
}

func (b *B2BUA) messageEndpoint(ctx context.Context, t *Trunks, trunk account.Trunk, ep sbc.Endpoint, callerID, name, number, text string) (int, string, sbc.Attempt) {
	ta := trunkAddressOf(t, trunk, ep, number, callerID, name)
	if ta.transport == "TLS" {
		if t.TLS == nil {
			return 503, "Service Unavailable: tls toward sbcs is not set up on this node", sbc.Attempt{TransportError: true}
		}
		if err := t.TLS.Connect(ctx, sbc.TargetOf(trunk), ep); err != nil {
			return 503, "Service Unavailable: " + err.Error(), sbc.Attempt{TransportError: true}
		}
	}
	req := ta.request(sip.MESSAGE)
	mf := sip.MaxForwardsHeader(maxForwards)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(text))
	mctx, cancel := context.WithTimeout(ctx, smsTimeout)
	defer cancel()
	res, err := b.dialogs.ua.Client.Do(mctx, req)
	switch {
	case err == nil:
		return res.StatusCode, res.Reason, sbc.Attempt{Status: res.StatusCode}
	case ctx.Err() != nil:
		return 487, "Request Terminated", sbc.Attempt{Status: 487}
	case mctx.Err() != nil || errors.Is(err, sip.ErrTransactionTimeout):
		return 408, "Request Timeout", sbc.Attempt{NoAnswer: true}
	}
	return 503, "Service Unavailable: " + err.Error(), sbc.Attempt{TransportError: true}
}

// trunkAddress is how a request to a number through a trunk's address is
// addressed: the Request-URI, the transport, and the From (the caller ID
// at the node's host, with the caller's name), To and
// P-Asserted-Identity, so that an SBC sees the same on every INVITE and
// MESSAGE the node sends it (RFC 5853: nothing of the inside).
type trunkAddress struct {
	uri       sip.Uri
	dest      string // the address the request is sent to
	transport string // UDP, TCP or TLS
	from      *sip.FromHeader
	to        *sip.ToHeader
	pai       sip.Header
}

// trunkAddressOf addresses number at trunk's address ep, from callerID.
func trunkAddressOf(t *Trunks, trunk account.Trunk, ep sbc.Endpoint, number, callerID, name string) trunkAddress {
	host := ep.Host
	if host == "" || trunk.Host == ep.IP.String() {
		host = ep.IP.String()
	}
	uri := sip.Uri{Scheme: "sip", User: number, Host: host, Port: ep.Port, UriParams: sip.NewParams()}
	transport := strings.ToUpper(ep.Transport)
	if transport != "UDP" {
		uri.UriParams.Add("transport", strings.ToLower(ep.Transport))
	}
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	fromURI := sip.Uri{Scheme: "sip", User: callerID, Host: t.Host}
	return trunkAddress{
		uri: uri, dest: ep.Addr(), transport: transport,
		from: &sip.FromHeader{DisplayName: name, Address: fromURI, Params: fromParams},
		to:   &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: host}, Params: sip.NewParams()},
		pai:  sip.NewHeader("P-Asserted-Identity", fmt.Sprintf("%q <%s>", name, fromURI.String())),
	}
}

// request is a request of method so addressed (From, To and
// P-Asserted-Identity set; the rest is the caller's).
func (a trunkAddress) request(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, a.uri)
	req.SetDestination(a.dest)
	req.SetTransport(a.transport)
	req.AppendHeader(a.from)
	req.AppendHeader(a.to)
	req.AppendHeader(a.pai)
	return req
}
