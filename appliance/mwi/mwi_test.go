package mwi

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The RFC 3842 body: a status line, then message-account and the
// message-context lines "type: new/old (urgent-new/urgent-old)".
var (
	statusLine  = regexp.MustCompile(`^Messages-Waiting: (yes|no)\r\n`)
	accountLine = regexp.MustCompile(`^Message-Account: sip:[^@\s]+@[^\s]+\r\n`)
	voiceLine   = regexp.MustCompile(`^Voice-Message: (\d+)/(\d+) \((\d+)/(\d+)\)\r\n`)
)

func TestSummaryBody(t *testing.T) {
	for _, tc := range []struct {
		sum  Summary
		want string
	}{
		{Summary{Account: "sip:carol@acme.example"}, "Messages-Waiting: no\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 0/0 (0/0)\r\n"},
		{Summary{Account: "sip:carol@acme.example", New: 1}, "Messages-Waiting: yes\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 1/0 (0/0)\r\n"},
		{Summary{Account: "sip:carol@acme.example", Old: 2}, "Messages-Waiting: no\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 0/2 (0/0)\r\n"},
		{Summary{Account: "sip:bob@acme.example", New: 12, Old: 345}, "Messages-Waiting: yes\r\nMessage-Account: sip:bob@acme.example\r\nVoice-Message: 12/345 (0/0)\r\n"},
		{Summary{New: 1}, "Messages-Waiting: yes\r\nVoice-Message: 1/0 (0/0)\r\n"},
	} {
		got := string(tc.sum.Body())
		if got != tc.want {
			t.Errorf("%+v: body %q, want %q", tc.sum, got, tc.want)
		}
		checkGrammar(t, got, tc.sum)
	}
}

// checkGrammar parses body by RFC 3842's grammar and checks the counts.
func checkGrammar(t *testing.T, body string, sum Summary) {
	t.Helper()
	rest := body
	m := statusLine.FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("%q: no status line first", body)
	}
	if want := map[bool]string{true: "yes", false: "no"}[sum.New > 0]; m[1] != want {
		t.Errorf("%q: Messages-Waiting %s, want %s", body, m[1], want)
	}
	rest = rest[len(m[0]):]
	if a := accountLine.FindString(rest); a != "" {
		rest = rest[len(a):]
	}
	v := voiceLine.FindStringSubmatch(rest)
	if v == nil {
		t.Fatalf("%q: no Voice-Message line after the status and account", body)
	}
	if got := v[1] + "/" + v[2]; got != fmt.Sprintf("%d/%d", sum.New, sum.Old) {
		t.Errorf("%q: counts %s, want %d/%d", body, got, sum.New, sum.Old)
	}
	if rest = rest[len(v[0]):]; rest != "" {
		t.Errorf("%q: trailing %q", body, rest)
	}
}

// harness is a notifier over fakes: carol (u-carol) is authenticated
// unless challenge is set; the clock moves only when told.
type harness struct {
	n *Notifier

	mu        sync.Mutex
	now       time.Time
	counts    map[string][2]int
	bindings  []store.Binding
	challenge bool
	refuse    int // answer NOTIFYs with this status when set
	sent      chan *sip.Request
}

var carol = account.User{ID: "u-carol", Extension: "1003", SIP: account.SIPCredentials{Username: "carol"}}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), counts: map[string][2]int{}, sent: make(chan *sip.Request, 64)}
	h.n = New(authFunc(func(req *sip.Request, tx sip.ServerTransaction) (account.User, bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.challenge {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil))
			return account.User{}, false
		}
		return carol, true
	}), dirFunc(func(context.Context) (account.Account, error) {
		return account.Account{SIPRealm: "acme.example"}, nil
	}), countsFunc(func(_ context.Context, mailbox string) (int, int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		c := h.counts[mailbox]
		return c[0], c[1], nil
	}), liveFunc(func(now time.Time) []store.Binding {
		h.mu.Lock()
		defer h.mu.Unlock()
		var out []store.Binding
		for _, b := range h.bindings {
			if b.Expires.After(now) {
				out = append(out, b)
			}
		}
		return out
	}), Options{
		Contact: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: "192.0.2.1", Port: 5060}},
		Send: func(_ context.Context, req *sip.Request) (*sip.Response, error) {
			h.sent <- req
			h.mu.Lock()
			code := h.refuse
			h.mu.Unlock()
			if code == 0 {
				code = 200
			}
			return sip.NewResponseFromRequest(req, code, "", nil), nil
		},
		After: func(_ time.Duration, f func()) { f() },
		Now: func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.now
		},
	}, nil)
	return h
}

type (
	authFunc   func(*sip.Request, sip.ServerTransaction) (account.User, bool)
	dirFunc    func(context.Context) (account.Account, error)
	countsFunc func(context.Context, string) (int, int, error)
	liveFunc   func(time.Time) []store.Binding
)

func (f authFunc) AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool) {
	return f(req, tx)
}
func (f dirFunc) Account(ctx context.Context) (account.Account, error) { return f(ctx) }
func (f countsFunc) Counts(ctx context.Context, m string) (int, int, error) {
	return f(ctx, m)
}
func (f liveFunc) Live(now time.Time) []store.Binding { return f(now) }

func (h *harness) set(fn func(h *harness)) {
	h.mu.Lock()
	fn(h)
	h.mu.Unlock()
}

// subscribe is a SUBSCRIBE from carol's phone at 192.0.2.10:5062.
type subscribe struct {
	uri, event, expires, toTag, accept string
	callID                             string
	cseq                               int
	noContact                          bool
}

func (s subscribe) request(t *testing.T) *sip.Request {
	t.Helper()
	if s.uri == "" {
		s.uri = "sip:carol@acme.example"
	}
	if s.event == "" {
		s.event = "message-summary"
	}
	if s.callID == "" {
		s.callID = "sub-1@192.0.2.10"
	}
	if s.cseq == 0 {
		s.cseq = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SUBSCRIBE %s SIP/2.0\r\n", s.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-%d\r\n", s.cseq)
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:carol@acme.example>;tag=phone-1\r\n")
	to := "To: <" + s.uri + ">"
	if s.toTag != "" {
		to += ";tag=" + s.toTag
	}
	b.WriteString(to + "\r\n")
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d SUBSCRIBE\r\n", s.callID, s.cseq)
	if !s.noContact {
		b.WriteString("Contact: <sip:carol@192.0.2.10:5062>\r\n")
	}
	fmt.Fprintf(&b, "Event: %s\r\n", s.event)
	if s.accept != "" {
		fmt.Fprintf(&b, "Accept: %s\r\n", s.accept)
	}
	if s.expires != "" {
		fmt.Fprintf(&b, "Expires: %s\r\n", s.expires)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	msg, err := sip.ParseMessage([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource("192.0.2.10:5062")
	return req
}

func (h *harness) serve(t *testing.T, req *sip.Request) *sip.Response {
	t.Helper()
	tx := siptest.NewServerTxRecorder(req)
	h.n.OnSubscribe(req, tx)
	rs := tx.Result()
	if len(rs) != 1 {
		t.Fatalf("%d responses, want 1", len(rs))
	}
	return rs[0]
}

// next is the next NOTIFY sent, within a second.
func (h *harness) next(t *testing.T) *sip.Request {
	t.Helper()
	select {
	case req := <-h.sent:
		return req
	case <-time.After(time.Second):
		t.Fatal("no NOTIFY sent")
		return nil
	}
}

// none checks that nothing more was sent; the notifier sends at once, so
// whatever it would send is queued by the time the checked call returns.
func (h *harness) none(t *testing.T) {
	t.Helper()
	select {
	case req := <-h.sent:
		t.Fatalf("unexpected NOTIFY to %s: %s / %q", req.Recipient.String(), hdr(req, "Subscription-State"), req.Body())
	default:
	}
}

func hdr(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func checkNotify(t *testing.T, req *sip.Request, state, body string) {
	t.Helper()
	if req.Method != sip.NOTIFY {
		t.Fatalf("sent %s, want NOTIFY", req.Method)
	}
	for name, want := range map[string]string{
		"Event": "message-summary", "Content-Type": "application/simple-message-summary", "Subscription-State": state,
	} {
		if got := hdr(req, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if got := string(req.Body()); got != body {
		t.Errorf("body %q, want %q", got, body)
	}
}

const (
	body00 = "Messages-Waiting: no\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 0/0 (0/0)\r\n"
	body10 = "Messages-Waiting: yes\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 1/0 (0/0)\r\n"
	body01 = "Messages-Waiting: no\r\nMessage-Account: sip:carol@acme.example\r\nVoice-Message: 0/1 (0/0)\r\n"
)
