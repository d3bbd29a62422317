package calls

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/invite"
	"github.com/outpost-voice/outpost/sbc"
)

// The default text: who invites, the number, and the PIN with its # when
// the call has one; nothing about a PIN when it has none.
func TestSMSText(t *testing.T) {
	for _, tc := range []struct{ owner, number, pin, want string }{
		{"Alice Adams", "+16505550150", "123456",
			"Alice Adams invites you to join a call. Dial +16505550150 and enter PIN 123456 followed by #."},
		{"Alice Adams", "+16505550150", "", "Alice Adams invites you to join a call. Dial +16505550150."},
		{"Alice Adams", "", "123456", "Alice Adams invites you to join a call. The PIN is 123456."},
		{"", "", "", "Someone invites you to join a call."},
	} {
		got := SMSText(tc.owner, tc.number, tc.pin)
		if got != tc.want {
			t.Errorf("SMSText(%q, %q, %q) = %q, want %q", tc.owner, tc.number, tc.pin, got, tc.want)
		}
		if err := CheckSMSText(got); err != nil {
			t.Errorf("the default text is refused: %v", err)
		}
	}
}

func TestCheckSMSText(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"plain", "Join us: dial +16505550150, PIN 123456#", true},
		{"unicode", "Rejoins l'appel — composez le +33 1 23 45 67 89 ☎", true},
		{"480 characters", strings.Repeat("é", 480), true},
		{"481 characters", strings.Repeat("a", 481), false},
		{"empty", "", false},
		{"blank", "   ", false},
		{"a line break", "line one\nline two", false},
		{"a tab", "a\tb", false},
		{"nul", "a\x00b", false},
		{"a C1 control", "a\u0085b", false},
		{"not utf-8", "a\xffb", false},
	} {
		err := CheckSMSText(tc.text)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadSMSText)) {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestSMSNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+16505550177", "+16505550177"},
		{" +1 (650) 555.0177 ", "+16505550177"},
		{"+447700900123", "+447700900123"},
		{"+16505550177-156", ""},
		{"6505550177", ""},
		{"+1650555017x", ""},
		{"", ""},
	} {
		got, err := SMSNumber(tc.in)
		if got != tc.want || (tc.want == "") != (err != nil) || (err != nil && !errors.Is(err, invite.ErrBadNumber)) {
			t.Errorf("SMSNumber(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// At most SMSPerMinute per call in any minute; calls are counted apart.
func TestSMSLimit(t *testing.T) {
	l := smsLimit{sent: map[string][]time.Time{}}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range SMSPerMinute {
		if !l.allow("c1", t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("sms %d refused", i+1)
		}
	}
	if l.allow("c1", t0.Add(30*time.Second)) {
		t.Fatal("a sixth sms within the minute was allowed")
	}
	if !l.allow("c2", t0.Add(30*time.Second)) {
		t.Fatal("another call's sms refused")
	}
	// A minute after the first, one may go again, and only one.
	if !l.allow("c1", t0.Add(time.Minute+time.Second/2)) {
		t.Fatal("an sms a minute after the first refused")
	}
	if l.allow("c1", t0.Add(time.Minute+time.Second/2)) {
		t.Fatal("the window let two in for one that left")
	}
	l.allow("c3", t0.Add(10*time.Minute))
	if len(l.sent) != 1 {
		t.Errorf("calls kept beyond their minute: %v", l.sent)
	}
}

// fakeSBC is a trunk's SBC that answers every MESSAGE with status.
type fakeSBC struct {
	addr netip.AddrPort

	mu     sync.Mutex
	status int
	msgs   []*sip.Request
}

func (s *fakeSBC) answer(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func startSBC(t *testing.T, status int) *fakeSBC {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSBC{addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), status: status}
	ua, srv, _ := newUA(t, "sbc", "")
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		s.mu.Lock()
		s.msgs = append(s.msgs, req)
		status := s.status
		s.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, status, "SBC says", nil))
	})
	serveUDP(t, ua, srv, conn)
	return s
}

func (s *fakeSBC) messages() []*sip.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sip.Request(nil), s.msgs...)
}

// smsBook is dialInBook with two HQ trunks and the call-out settings.
type smsBook struct {
	dialInBook
	trunks []account.Trunk
}

func (d smsBook) Trunks(context.Context) ([]account.Trunk, error) { return d.trunks, nil }
func (d smsBook) Callout(context.Context) (account.Callout, error) {
	return account.Callout{CallerIDs: []account.CallerID{{Country: "US", Number: "+16465550188", Dedicated: true}}}, nil
}

// staticResolver resolves each trunk to its host and port as they are.
type staticResolver struct{}

func (staticResolver) Resolve(_ context.Context, tg sbc.Target) ([]sbc.Endpoint, error) {
	return []sbc.Endpoint{{IP: netip.MustParseAddr(tg.Host), Port: tg.Port, Transport: "udp"}}, nil
}

type healthMap map[string]sbc.State

func (h healthMap) States() map[string]sbc.State { return h }

// SendSMS: a MESSAGE with the call-out caller ID and the default text
// (the PIN) goes to the first trunk, which fails (503), then to the
// second, which accepts it; the history says so. A 404 is final; a non-owner,
// a bad number or text, too many SMS and no usable trunk are refused.
func TestSendSMS(t *testing.T) {
	bad, good := startSBC(t, 503), startSBC(t, 202)
	trunk := func(id string, prio int, s *fakeSBC) account.Trunk {
		return account.Trunk{ID: id, Site: "hq", Host: s.addr.Addr().String(), Port: int(s.addr.Port()), Transport: "udp",
			Priority: prio, Weight: 1, Codecs: []string{"PCMU"}}
	}
	dir := smsBook{dialInBook: dialInBook{userBook{newPhoneBook()}},
		trunks: []account.Trunk{trunk("t1", 10, bad), trunk("t2", 20, good)}}
	node := startNode(t, "n1", dir)
	health := healthMap{}
	node.b.SetTrunks(&Trunks{Health: health, Resolver: staticResolver{}, Channels: sbc.NewChannels(),
		UserCalls: sbc.NewChannels(), Host: "outpost.example"})
	node.b.SetMixer(&fakeMixer{t: t, rooms: map[string]*fakeRoom{}})
	a := startPhone(t, "alice", onCue)
	bob := startPhone(t, "bob", onCue)
	dir.bind("bob", "b-1", bob.contactURI, bob.addr, "n1")
	connect(t, node, a, "1002", bob)
	id := node.b.Calls()[0].ID
	ctx := context.Background()

	for _, tc := range []struct {
		name, by, number, text string
		want                   error
	}{
		{"not the owner", "u-bob", "+16505550177", "", invite.ErrNotOwner},
		{"extension digits", "u-alice", "+16505550177-1", "", invite.ErrBadNumber},
		{"a control character", "u-alice", "+16505550177", "hi\r\nthere", ErrBadSMSText},
	} {
		if _, err := node.b.SendSMS(ctx, tc.by, id, SMSRequest{Number: tc.number, Text: tc.text}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if len(bad.messages())+len(good.messages()) != 0 {
		t.Fatal("a refused request sent a MESSAGE")
	}

	res, err := node.b.SendSMS(ctx, "u-alice", id, SMSRequest{Number: "+1 650 555 0177"})
	if err != nil || res.Status != 202 || res.Trunk != "t2" {
		t.Fatalf("SendSMS = %+v, %v; want 202 through t2 after t1's 503", res, err)
	}
	info, _ := node.b.InviteInfo(ctx, "u-alice", id)
	if len(bad.messages()) != 1 || len(good.messages()) != 1 {
		t.Fatalf("MESSAGEs: %d to t1, %d to t2; want one each", len(bad.messages()), len(good.messages()))
	}
	m := good.messages()[0]
	checks := map[string]string{
		"Request-URI":         m.Recipient.String(),
		"From":                m.From().Value(),
		"To":                  m.To().Value(),
		"P-Asserted-Identity": m.GetHeader("P-Asserted-Identity").Value(),
		"Content-Type":        m.ContentType().Value(),
		"body":                string(m.Body()),
	}
	wants := map[string]string{
		"Request-URI":         "sip:+16505550177@127.0.0.1:",
		"From":                `"Alice" <sip:+16465550188@outpost.example>;tag=`,
		"To":                  "<sip:+16505550177@127.0.0.1>",
		"P-Asserted-Identity": `"Alice" <sip:+16465550188@outpost.example>`,
		"Content-Type":        "text/plain;charset=UTF-8",
		"body":                info.SMSText,
	}
	for k, w := range wants {
		if !strings.HasPrefix(checks[k], w) {
			t.Errorf("MESSAGE %s %q, want %q", k, checks[k], w)
		}
	}
	if !strings.Contains(info.SMSText, "PIN "+info.PIN+" ") {
		t.Errorf("the default text %q lacks the PIN", info.SMSText)
	}
	v, _ := node.b.Conference(id)
	if len(v.History) == 0 || !strings.Contains(v.History[len(v.History)-1].Text, "SMS invitation to +16505550177 sent (trunk t2)") {
		t.Errorf("history %+v", v.History)
	}

	// A final refusal (404) is not retried on the next trunk.
	bad.answer(404)
	_, err = node.b.SendSMS(ctx, "u-alice", id, SMSRequest{Number: "+16505550178", Text: "Call me"})
	var se *SMSError
	if !errors.As(err, &se) || se.Status != 404 || se.Trunk != "t1" || !errors.Is(err, ErrSMSFailed) {
		t.Fatalf("a 404: %v", err)
	}
	if len(good.messages()) != 1 || string(bad.messages()[1].Body()) != "Call me" {
		t.Errorf("after a 404: %d MESSAGEs to t2, t1's body %q", len(good.messages()), bad.messages()[1].Body())
	}

	// Both trunks down: nothing to send through.
	health["t1"], health["t2"] = sbc.StateDown, sbc.StateDown
	if _, err := node.b.SendSMS(ctx, "u-alice", id, SMSRequest{Number: "+16505550177"}); !errors.Is(err, ErrNoSMSTrunk) {
		t.Fatalf("no trunk: %v", err)
	}
	delete(health, "t1")
	delete(health, "t2")
	bad.answer(503)
	// Three sent (or tried) so far; two more, then the limit.
	for range SMSPerMinute - 3 {
		if _, err := node.b.SendSMS(ctx, "u-alice", id, SMSRequest{Number: "+16505550177"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node.b.SendSMS(ctx, "u-alice", id, SMSRequest{Number: "+16505550177"}); !errors.Is(err, ErrSMSRate) {
		t.Fatalf("the sixth sms in a minute: %v", err)
	}
}
