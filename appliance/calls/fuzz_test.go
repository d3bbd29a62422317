package calls

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// acceptAll authenticates every caller as alice: the fuzz target is the
// call handling after authentication (the registrar fuzzes digest).
type acceptAll struct{}

func (acceptAll) AuthenticateRequest(*sip.Request, sip.ServerTransaction) (account.User, bool) {
	return account.User{ID: "u-alice", Site: "hq", Extension: "1001", Name: "Alice",
		SIP: account.SIPCredentials{Username: "alice"}}, true
}

// noPhones is the demo's dial plan with nobody registered, so no INVITE
// leaves the process.
type noPhones struct{}

var errNone = errors.New("none")

func (noPhones) Account(context.Context) (account.Account, error) {
	return account.Account{SIPRealm: "acme.example"}, nil
}
func (noPhones) LookupDial(_ context.Context, dial string) (store.Target, error) {
	switch dial {
	case "1002", "+16505550102":
		return store.Target{Kind: store.TargetUser, ID: "u-bob", Site: "hq"}, nil
	case "1900":
		return store.Target{Kind: store.TargetSDG, ID: "sdg-frontdesk", Site: "hq"}, nil
	}
	return store.Target{}, store.ErrNotFound
}
func (noPhones) Site(_ context.Context, id string) (account.Site, error) {
	if id != "hq" {
		return account.Site{}, store.ErrNotFound
	}
	return account.Site{ID: "hq", Country: "US", AreaCode: "650",
		Emergency: account.Emergency{Numbers: []string{"911"}}}, nil
}
func (noPhones) UserByID(_ context.Context, id string) (account.User, error) {
	if id != "u-bob" {
		return account.User{}, store.ErrNotFound
	}
	return account.User{ID: "u-bob", SIP: account.SIPCredentials{Username: "bob"}}, nil
}
func (noPhones) Bindings(context.Context, string, time.Time) ([]store.Binding, error) {
	return nil, nil
}
func (noPhones) Members(context.Context) ([]store.Member, error) { return nil, errNone }

func fuzzB2BUA(t testing.TB) *B2BUA {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: "127.0.0.1", Port: 5060}}
	return NewB2BUA(client, contact, acceptAll{}, noPhones{}, nil, "n1", []byte("0123456789abcdef0123456789abcdef"),
		slog.New(slog.DiscardHandler))
}

func rawInvite(ruri, extra string) string {
	return strings.Join([]string{
		"INVITE " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-f1;rport",
		"From: <sip:alice@acme.example>;tag=a1",
		"To: <sip:1002@acme.example>" + extra,
		"Call-ID: fuzz-1@192.0.2.10",
		"CSeq: 1 INVITE",
		"Contact: <sip:alice@192.0.2.10:5060>",
		"Max-Forwards: 70",
		"Content-Type: application/sdp",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
}

// refer is an in-dialog REFER to referTo.
func refer(referTo string) string {
	r := strings.Replace(strings.Replace(rawInvite("sip:1002@acme.example", ";tag=b1"), "INVITE sip", "REFER sip", 1), "1 INVITE", "2 REFER", 1)
	return strings.Replace(r, "Max-Forwards", "Refer-To: <"+referTo+">\r\nMax-Forwards", 1)
}

// FuzzInvite feeds arbitrary messages to the call handlers: they must never
// panic and must answer every request exactly once with a final status
// (an ACK: never).
func FuzzInvite(f *testing.F) {
	for _, seed := range []string{
		rawInvite("sip:1002@acme.example", ""),
		rawInvite("sip:1900@acme.example", ""),
		rawInvite("sip:911@acme.example", ""),
		rawInvite("sip:4155550123@acme.example", ""),
		rawInvite("sip:nobody@acme.example", ""),
		rawInvite("sip:1002@acme.example", ";tag=b1"), // in-dialog, unknown dialog
		strings.Replace(rawInvite("sip:bob@127.0.0.1", ""), "Max-Forwards", "X-Outpost-Binding: bob@acme.example id\r\nX-Outpost-Hop-Auth: 00\r\nMax-Forwards", 1),
		strings.Replace(strings.Replace(rawInvite("sip:1002@acme.example", ";tag=b1"), "INVITE sip", "BYE sip", 1), "1 INVITE", "2 BYE", 1),
		strings.Replace(strings.Replace(rawInvite("sip:1002@acme.example", ";tag=b1"), "INVITE sip", "UPDATE sip", 1), "1 INVITE", "2 UPDATE", 1),
		strings.Replace(rawInvite("sip:1002@acme.example", ""), "SIP/2.0\r\n", "SIP/3.0\r\n", 1),
		refer("sip:1003@acme.example"),
		refer("sip:1003@acme.example?Replaces=fuzz-2%40192.0.2.10%3Bto-tag%3Dx%3Bfrom-tag%3Dy"),
		refer("sip:1003@acme.example?Replaces=%zz"),
		refer("tel:+16505550103"),
		strings.Replace(refer("sip:1003@acme.example"), ";tag=b1", "", 1), // outside a dialog
		strings.Replace(strings.Replace(rawInvite("sip:1002@acme.example", ";tag=b1"), "INVITE sip", "INFO sip", 1), "1 INVITE", "2 INFO", 1),
	} {
		f.Add([]byte(seed))
	}
	b := fuzzB2BUA(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil {
			return // the transaction layer never hands such a request to a handler
		}
		if _, ok := req.From().Params.Get("tag"); !ok {
			return // siptest's recorder needs a From tag to build its key
		}
		handler := map[sip.RequestMethod]func(*sip.Request, sip.ServerTransaction){
			sip.INVITE: b.OnInvite, sip.BYE: b.OnBye, sip.UPDATE: b.OnUpdate, sip.REFER: b.OnRefer, sip.INFO: b.OnInfo,
			sip.ACK: b.OnAck,
		}[req.Method]
		if handler == nil {
			return
		}
		tx := siptest.NewServerTxRecorder(req)
		defer tx.Terminate()
		handler(req, tx)
		if req.IsAck() {
			if res := tx.Result(); len(res) != 0 {
				t.Fatalf("an ACK was answered: %s", res[0].StartLine())
			}
			return
		}
		var final int
		for _, r := range tx.Result() {
			if r.StatusCode >= 200 {
				final++
			}
		}
		if final != 1 {
			t.Fatalf("%s: %d final responses, want 1", req.StartLine(), final)
		}
	})
}
