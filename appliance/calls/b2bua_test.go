package calls

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The B2BUA's handlers are tested two ways: refusals by calling them with
// siptest's server transaction recorder (no sockets), and calls between
// phones over loopback UDP, where the phones are sipgo user agents the
// tests script and the node is a B2BUA behind a sipgo server, as in
// appliance/node. Every test observes SIP messages and call records only.

// waitFor bounds every wait for a message or a state: far above what
// loopback needs, far below sipgo's 32 s transaction timeouts.
const waitFor = 5 * time.Second

var testHopKey = []byte("0123456789abcdef0123456789abcdef")

// quiet is the logger of every test user agent: sipgo logs transaction
// timeouts and closed sockets as the tests tear down.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func init() {
	// sipgo's connections log through its package logger ("UDP ref went
	// negative" as the user agents close); sip.SIPDebug=true shows the
	// messages themselves.
	sip.SetDefaultLogger(quiet())
}

// eventually polls cond until it holds, failing the test at the deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// settled waits until the node holds no call and no dialog: a call that is
// over leaves nothing behind.
func settled(t testing.TB, node *simNode) {
	t.Helper()
	eventually(t, "the node to hold no call and no dialog", func() bool {
		return node.b.Active() == 0 && node.b.Dialogs() == 0
	})
}

// --- fakes ------------------------------------------------------------------

// recordJournal keeps the call records it is given.
type recordJournal struct {
	mu   sync.Mutex
	recs []store.CallRecord
}

func (j *recordJournal) Record(r store.CallRecord) {
	j.mu.Lock()
	j.recs = append(j.recs, r)
	j.mu.Unlock()
}

func (j *recordJournal) all() []store.CallRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]store.CallRecord(nil), j.recs...)
}

// wait waits until the journal holds n records and returns them.
func (j *recordJournal) wait(t testing.TB, n int) []store.CallRecord {
	t.Helper()
	eventually(t, fmt.Sprintf("%d call record(s)", n), func() bool { return len(j.all()) >= n })
	got := j.all()
	if len(got) != n {
		t.Fatalf("%d call records, want %d: %+v", len(got), n, got)
	}
	return got
}

// wantRecord is what a test checks of a call record; the caller is always
// acceptAll's alice of site hq on node n1.
type wantRecord struct {
	disposition string
	status      int
	callee      string
	dialled     string
	destination string
}

var recordID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func checkRecord(t testing.TB, got store.CallRecord, callID string, want wantRecord) {
	t.Helper()
	type view struct {
		CallID, Caller, CallerName, Callee, Dialled, Destination, Disposition, Node, Site string
		Status                                                                            int
		Answered                                                                          bool
	}
	g := view{got.CallID, got.Caller, got.CallerName, got.Callee, got.Dialled, got.Destination, got.Disposition,
		got.Node, got.Site, got.Status, !got.Answer.IsZero()}
	w := view{callID, "alice", "Alice", want.callee, want.dialled, want.destination, want.disposition,
		"n1", "hq", want.status, want.disposition == DispAnswered}
	if g != w {
		t.Errorf("call record:\n got %+v\nwant %+v", g, w)
	}
	if !recordID.MatchString(got.ID) {
		t.Errorf("record id %q is not a UUID v4", got.ID)
	}
	if got.Start.IsZero() || got.End.Before(got.Start) || (!got.Answer.IsZero() && got.Answer.Before(got.Start)) {
		t.Errorf("record times: start %v answer %v end %v", got.Start, got.Answer, got.End)
	}
}

// challengeAll answers every caller 407 as the registrar does without
// credentials.
type challengeAll struct{}

func (challengeAll) AuthenticateRequest(req *sip.Request, tx sip.ServerTransaction) (account.User, bool) {
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="acme.example", nonce="abc", algorithm=MD5, qop="auth"`))
	_ = tx.Respond(res)
	return account.User{}, false
}

// phoneBook is noPhones' dial plan plus carol (1003), an extension whose
// user is gone (1099) and an account number (+16505550199), with the
// bindings and members a test gives it. Every node of a test cluster
// reads the same phoneBook, as they read the same replicated store.
type phoneBook struct {
	noPhones
	mu           sync.Mutex
	bindings     map[string][]store.Binding // by AOR
	members      []store.Member
	failAccount  bool
	failBindings bool
}

func newPhoneBook() *phoneBook { return &phoneBook{bindings: map[string][]store.Binding{}} }

var errUnreadable = errors.New("store unreadable")

func (d *phoneBook) Account(ctx context.Context) (account.Account, error) {
	if d.failAccount {
		return account.Account{}, errUnreadable
	}
	return d.noPhones.Account(ctx)
}

func (d *phoneBook) LookupDial(ctx context.Context, dial string) (store.Target, error) {
	switch dial {
	case "1003":
		return store.Target{Kind: store.TargetUser, ID: "u-carol", Site: "hq"}, nil
	case "1099":
		return store.Target{Kind: store.TargetUser, ID: "u-gone", Site: "hq"}, nil
	case "+16505550199":
		return store.Target{Kind: store.TargetNumber, ID: "+16505550199", Site: "hq"}, nil
	}
	return d.noPhones.LookupDial(ctx, dial)
}

func (d *phoneBook) UserByID(ctx context.Context, id string) (account.User, error) {
	if id == "u-carol" {
		return account.User{ID: "u-carol", Name: "Carol", SIP: account.SIPCredentials{Username: "carol"}}, nil
	}
	return d.noPhones.UserByID(ctx, id)
}

func (d *phoneBook) Bindings(_ context.Context, aor string, _ time.Time) ([]store.Binding, error) {
	if d.failBindings {
		return nil, errUnreadable
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]store.Binding(nil), d.bindings[aor]...), nil
}

func (d *phoneBook) Members(context.Context) ([]store.Member, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]store.Member(nil), d.members...), nil
}

// bind registers a contact of user at source, its flow held by node.
func (d *phoneBook) bind(user, id, contact, source, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	aor := user + "@acme.example"
	d.bindings[aor] = append(d.bindings[aor], store.Binding{ID: id, AOR: aor, Username: user, Contact: contact,
		Source: source, Transport: "udp", Node: node, Expires: time.Now().Add(time.Hour)})
}

func (d *phoneBook) member(id, sipAddr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members = append(d.members, store.Member{ID: id, SIPAddr: sipAddr})
}

// hopSign is the X-Outpost-Hop-Auth a node puts on a call it hands over,
// signed now.
func hopSign(key []byte, callID, aor, id string) string {
	return hopSignAt(key, callID, aor, id, time.Now().Unix())
}

func hopSignAt(key []byte, callID, aor, id string, at int64) string {
	m := hmac.New(sha256.New, key)
	m.Write(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", callID, aor, id, at))
	return fmt.Sprintf("%d;%s", at, hex.EncodeToString(m.Sum(nil)))
}

// --- handlers on a recorder ---------------------------------------------------

func recorderB2BUA(t *testing.T, auth Authenticator, dir Directory) (*B2BUA, *recordJournal) {
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
	j := &recordJournal{}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: "127.0.0.1", Port: 5060}}
	return NewB2BUA(client, contact, auth, dir, j, "n1", testHopKey, quiet()), j
}

// newRequest is a request from alice's phone as the transport hands it to
// a handler, changed by edits.
func newRequest(t testing.TB, method sip.RequestMethod, ruri string, edits ...func(*sip.Request)) *sip.Request {
	t.Helper()
	raw := strings.Join([]string{
		string(method) + " " + ruri + " SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + sip.GenerateTagN(10),
		`From: "Alice" <sip:alice@acme.example>;tag=a1`,
		"To: <" + ruri + ">",
		"Call-ID: " + sip.GenerateTagN(12) + "@192.0.2.10",
		"CSeq: 1 " + string(method),
		"Contact: <sip:alice@192.0.2.10:5060>",
		"Max-Forwards: 70",
		"Content-Length: 0",
		"", "",
	}, "\r\n")
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	for _, e := range edits {
		e(req)
	}
	return req
}

func withHeader(name, value string) func(*sip.Request) {
	return func(r *sip.Request) { r.AppendHeader(sip.NewHeader(name, value)) }
}

func without(name string) func(*sip.Request) { return func(r *sip.Request) { r.RemoveHeader(name) } }

func withToTag(r *sip.Request) { r.To().Params.Add("tag", "b1") }

func withVersion(v string) func(*sip.Request) { return func(r *sip.Request) { r.SipVersion = v } }

func withCSeqMethod(m sip.RequestMethod) func(*sip.Request) {
	return func(r *sip.Request) { r.CSeq().MethodName = m }
}

// withHop signs the request as a node handing over binding id of aor.
func withHop(key []byte, aor, id string) func(*sip.Request) {
	return func(r *sip.Request) {
		r.AppendHeader(sip.NewHeader("X-Outpost-Binding", aor+" "+id))
		r.AppendHeader(sip.NewHeader("X-Outpost-Hop-Auth", hopSign(key, r.CallID().Value(), aor, id)))
	}
}

// serve runs handler on req with a recorder and returns what it answered
// (without the 100 Trying the transaction may send by itself).
func serve(t *testing.T, handler func(*sip.Request, sip.ServerTransaction), req *sip.Request) []*sip.Response {
	t.Helper()
	tx := siptest.NewServerTxRecorder(req)
	done := make(chan struct{})
	go func() { defer close(done); handler(req, tx) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("%s: the handler did not return", req.StartLine())
	}
	tx.Terminate()
	var out []*sip.Response
	for _, r := range tx.Result() {
		if r.StatusCode != 100 {
			out = append(out, r)
		}
	}
	return out
}

// answeredOnce checks that the handler answered exactly once, with code
// and (when not empty) reason.
func answeredOnce(t *testing.T, got []*sip.Response, code int, reason string) {
	t.Helper()
	if len(got) != 1 {
		var lines []string
		for _, r := range got {
			lines = append(lines, r.StartLine())
		}
		t.Fatalf("answered %q, want one %d", lines, code)
	}
	if got[0].StatusCode != code || (reason != "" && got[0].Reason != reason) {
		t.Fatalf("answered %q, want %d %s", got[0].StartLine(), code, reason)
	}
}

// TestInviteRefused covers every INVITE the node answers itself, and the
// call record each leaves (none for requests that never became a call).
func TestInviteRefused(t *testing.T) {
	elsewhere := func(d *phoneBook) { d.bind("bob", "b-bob", "sip:bob@192.0.2.20:5060", "192.0.2.20:5060", "n2") }
	here := func(d *phoneBook) { d.bind("bob", "b-bob", "sip:bob@192.0.2.20:5060", "192.0.2.20:5060", "n1") }
	for _, tc := range []struct {
		name   string
		auth   Authenticator
		setup  func(*phoneBook)
		ruri   string
		edits  []func(*sip.Request)
		code   int
		reason string
		rec    *wantRecord // nil: no record
	}{
		{name: "unauthenticated caller", auth: challengeAll{}, ruri: "sip:1002@acme.example",
			code: 407, reason: "Proxy Authentication Required"},
		{name: "not a dial string", ruri: "sip:nobody@acme.example", code: 404, reason: "Not Found",
			rec: &wantRecord{DispRefused, 404, "", "nobody", DestInvalid}},
		{name: "unknown extension", ruri: "sip:1234@acme.example", code: 404, reason: "Not Found",
			rec: &wantRecord{DispRefused, 404, "", "1234", DestInvalid}},
		{name: "extension of a deleted user", ruri: "sip:1099@acme.example", code: 404, reason: "Not Found",
			rec: &wantRecord{DispRefused, 404, "", "1099", DestUser}},
		{name: "user with no phone registered", ruri: "sip:1002@acme.example", code: 480, reason: "Temporarily Unavailable",
			rec: &wantRecord{DispUnavailable, 480, "bob", "1002", DestUser}},
		{name: "user's number with no phone registered", ruri: "sip:+16505550102@acme.example", code: 480,
			rec: &wantRecord{DispUnavailable, 480, "bob", "+16505550102", DestUser}},
		{name: "phone held by an unknown node", setup: elsewhere, ruri: "sip:1002@acme.example", code: 480,
			rec: &wantRecord{DispUnavailable, 480, "bob", "1002", DestUser}},
		{name: "phone held by a member without SIP address", ruri: "sip:1002@acme.example", code: 480,
			setup: func(d *phoneBook) { elsewhere(d); d.member("n2", "") },
			rec:   &wantRecord{DispUnavailable, 480, "bob", "1002", DestUser}},
		{name: "SDG", ruri: "sip:1900@acme.example", code: 480,
			reason: "Temporarily Unavailable: group routing is not available yet",
			rec:    &wantRecord{DispUnavailable, 480, "", "1900", DestSDG}},
		{name: "account number", ruri: "sip:+16505550199@acme.example", code: 480,
			reason: "Temporarily Unavailable: group routing is not available yet",
			rec:    &wantRecord{DispUnavailable, 480, "", "+16505550199", DestNumber}},
		{name: "external number", ruri: "sip:4155550123@acme.example", code: 503,
			reason: "Service Unavailable: no trunk to the PSTN yet",
			rec:    &wantRecord{DispFailed, 503, "", "4155550123", DestExternal}},
		{name: "emergency number", ruri: "sip:911@acme.example", code: 503,
			reason: "Service Unavailable: no trunk to the PSTN yet",
			rec:    &wantRecord{DispFailed, 503, "", "911", DestEmergency}},
		{name: "account unreadable", setup: func(d *phoneBook) { d.failAccount = true }, ruri: "sip:1002@acme.example",
			code: 500, rec: &wantRecord{DispFailed, 500, "", "1002", DestUser}},
		{name: "bindings unreadable", setup: func(d *phoneBook) { d.failBindings = true }, ruri: "sip:1002@acme.example",
			code: 500, rec: &wantRecord{DispFailed, 500, "bob", "1002", DestUser}},
		{name: "INVITE without Contact", setup: here, ruri: "sip:1002@acme.example", edits: []func(*sip.Request){without("Contact")},
			code: 500, rec: &wantRecord{DispFailed, 500, "bob", "1002", DestUser}},
		{name: "SIP version 3", ruri: "sip:1002@acme.example", edits: []func(*sip.Request){withVersion("SIP/3.0")},
			code: 505, reason: "Version Not Supported"},
		{name: "CSeq of another method", ruri: "sip:1002@acme.example", edits: []func(*sip.Request){withCSeqMethod(sip.BYE)},
			code: 400, reason: "Bad Request: CSeq method does not match the request"},
		{name: "re-INVITE of SIP version 3", ruri: "sip:1002@acme.example",
			edits: []func(*sip.Request){withToTag, withVersion("SIP/3.0")}, code: 505},
		{name: "re-INVITE of an unknown dialog", ruri: "sip:1002@acme.example", edits: []func(*sip.Request){withToTag},
			code: 481, reason: "Call/Transaction Does Not Exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPhoneBook()
			if tc.setup != nil {
				tc.setup(dir)
			}
			auth := tc.auth
			if auth == nil {
				auth = acceptAll{}
			}
			b, j := recorderB2BUA(t, auth, dir)
			req := newRequest(t, sip.INVITE, tc.ruri, tc.edits...)
			answeredOnce(t, serve(t, b.OnInvite, req), tc.code, tc.reason)
			recs := j.all()
			switch {
			case tc.rec == nil && len(recs) != 0:
				t.Fatalf("recorded %+v, want no record", recs)
			case tc.rec != nil && len(recs) != 1:
				t.Fatalf("%d records, want 1: %+v", len(recs), recs)
			case tc.rec != nil:
				checkRecord(t, recs[0], req.CallID().Value(), *tc.rec)
			}
			if b.Active() != 0 {
				t.Errorf("Active() = %d after a refusal", b.Active())
			}
		})
	}
}

// TestInDialogRefused covers BYE, UPDATE and INFO that the node cannot place:
// outside any dialog it holds, or malformed. None leaves a record.
func TestInDialogRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method sip.RequestMethod
		edits  []func(*sip.Request)
		code   int
	}{
		{"BYE of an unknown dialog", sip.BYE, []func(*sip.Request){withToTag}, 481},
		{"BYE without To tag", sip.BYE, nil, 481},
		{"UPDATE of an unknown dialog", sip.UPDATE, []func(*sip.Request){withToTag}, 481},
		{"UPDATE without To tag", sip.UPDATE, nil, 481},
		{"BYE of SIP version 3", sip.BYE, []func(*sip.Request){withToTag, withVersion("SIP/3.0")}, 505},
		{"BYE with CSeq of another method", sip.BYE, []func(*sip.Request){withToTag, withCSeqMethod(sip.INVITE)}, 400},
		{"UPDATE of SIP version 3", sip.UPDATE, []func(*sip.Request){withToTag, withVersion("SIP/3.0")}, 505},
		{"UPDATE with CSeq of another method", sip.UPDATE, []func(*sip.Request){withToTag, withCSeqMethod(sip.BYE)}, 400},
		{"INFO of an unknown dialog", sip.INFO, []func(*sip.Request){withToTag}, 481},
		{"INFO without To tag", sip.INFO, nil, 481},
		{"INFO of SIP version 3", sip.INFO, []func(*sip.Request){withToTag, withVersion("SIP/3.0")}, 505},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, j := recorderB2BUA(t, acceptAll{}, newPhoneBook())
			handler := map[sip.RequestMethod]func(*sip.Request, sip.ServerTransaction){
				sip.BYE: b.OnBye, sip.UPDATE: b.OnUpdate, sip.INFO: b.OnInfo}[tc.method]
			req := newRequest(t, tc.method, "sip:outpost@127.0.0.1:5060", tc.edits...)
			answeredOnce(t, serve(t, handler, req), tc.code, "")
			if recs := j.all(); len(recs) != 0 {
				t.Fatalf("recorded %+v, want no record", recs)
			}
		})
	}
	t.Run("ACK of an unknown dialog", func(t *testing.T) {
		b, j := recorderB2BUA(t, acceptAll{}, newPhoneBook())
		req := newRequest(t, sip.ACK, "sip:outpost@127.0.0.1:5060", withToTag)
		if got := serve(t, b.OnAck, req); len(got) != 0 {
			t.Fatalf("answered an ACK: %v", got[0].StartLine())
		}
		if recs := j.all(); len(recs) != 0 {
			t.Fatalf("recorded %+v, want no record", recs)
		}
	})
}

// TestHopRefused covers calls handed over by another node that this node
// does not ring. The caller's node records those calls, so this one
// records nothing; and a hop never falls back to the caller's digest
// authentication (challengeAll would answer 407).
func TestHopRefused(t *testing.T) {
	const aor, id = "bob@acme.example", "b-bob"
	here := func(d *phoneBook) { d.bind("bob", id, "sip:bob@192.0.2.20:5060", "192.0.2.20:5060", "n1") }
	ruri := "sip:bob@192.0.2.20:5060"
	for _, tc := range []struct {
		name   string
		setup  func(*phoneBook)
		edits  []func(*sip.Request)
		code   int
		reason string
	}{
		{name: "bad signature", setup: here, code: 403, reason: "Forbidden",
			edits: []func(*sip.Request){withHeader("X-Outpost-Binding", aor+" "+id), withHeader("X-Outpost-Hop-Auth", "00")}},
		{name: "signed with another key", setup: here, code: 403,
			edits: []func(*sip.Request){withHop([]byte("another cluster's key, 32 bytes."), aor, id)}},
		{name: "signed for another Call-ID", setup: here, code: 403,
			edits: []func(*sip.Request){withHeader("X-Outpost-Binding", aor+" "+id),
				withHeader("X-Outpost-Hop-Auth", hopSign(testHopKey, "another-call@192.0.2.10", aor, id))}},
		{name: "signed for another binding", setup: here, code: 403,
			edits: []func(*sip.Request){func(r *sip.Request) {
				r.AppendHeader(sip.NewHeader("X-Outpost-Binding", aor+" "+id))
				r.AppendHeader(sip.NewHeader("X-Outpost-Hop-Auth", hopSign(testHopKey, r.CallID().Value(), aor, "b-other")))
			}}},
		{name: "signed too long ago", setup: here, code: 403,
			edits: []func(*sip.Request){func(r *sip.Request) {
				r.AppendHeader(sip.NewHeader("X-Outpost-Binding", aor+" "+id))
				r.AppendHeader(sip.NewHeader("X-Outpost-Hop-Auth",
					hopSignAt(testHopKey, r.CallID().Value(), aor, id, time.Now().Add(-2*hopWindow).Unix())))
			}}},
		{name: "signed in the future", setup: here, code: 403,
			edits: []func(*sip.Request){func(r *sip.Request) {
				r.AppendHeader(sip.NewHeader("X-Outpost-Binding", aor+" "+id))
				r.AppendHeader(sip.NewHeader("X-Outpost-Hop-Auth",
					hopSignAt(testHopKey, r.CallID().Value(), aor, id, time.Now().Add(2*hopWindow).Unix())))
			}}},
		{name: "no binding header", setup: here, code: 403,
			edits: []func(*sip.Request){withHeader("X-Outpost-Hop-Auth", hopSign(testHopKey, "x", aor, id))}},
		{name: "binding header without id", setup: here, code: 403,
			edits: []func(*sip.Request){func(r *sip.Request) {
				r.AppendHeader(sip.NewHeader("X-Outpost-Binding", aor))
				r.AppendHeader(sip.NewHeader("X-Outpost-Hop-Auth", hopSign(testHopKey, r.CallID().Value(), aor, "")))
			}}},
		{name: "binding unknown here", code: 480, reason: "Temporarily Unavailable: the phone is no longer registered here",
			edits: []func(*sip.Request){withHop(testHopKey, aor, id)}},
		{name: "binding held by another node", code: 480,
			setup: func(d *phoneBook) { d.bind("bob", id, "sip:bob@192.0.2.20:5060", "192.0.2.20:5060", "n2") },
			edits: []func(*sip.Request){withHop(testHopKey, aor, id)}},
		{name: "bindings unreadable", setup: func(d *phoneBook) { here(d); d.failBindings = true }, code: 500,
			edits: []func(*sip.Request){withHop(testHopKey, aor, id)}},
		{name: "account unreadable", setup: func(d *phoneBook) { here(d); d.failAccount = true }, code: 500,
			edits: []func(*sip.Request){withHop(testHopKey, aor, id)}},
		{name: "no Contact", setup: here, code: 500,
			edits: []func(*sip.Request){withHop(testHopKey, aor, id), without("Contact")}},
		{name: "no To", setup: here, code: 400,
			edits: []func(*sip.Request){withHop(testHopKey, aor, id), without("To")}},
		{name: "SIP version 3", setup: here, code: 505,
			edits: []func(*sip.Request){withHop(testHopKey, aor, id), withVersion("SIP/3.0")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPhoneBook()
			if tc.setup != nil {
				tc.setup(dir)
			}
			b, j := recorderB2BUA(t, challengeAll{}, dir)
			req := newRequest(t, sip.INVITE, ruri, tc.edits...)
			answeredOnce(t, serve(t, b.OnInvite, req), tc.code, tc.reason)
			if recs := j.all(); len(recs) != 0 {
				t.Fatalf("recorded %+v, want no record", recs)
			}
		})
	}
}

// A hop INVITE captured on the wire and sent again, after its transaction
// ended, is refused: each signature is good once.
func TestHopReplayRefused(t *testing.T) {
	const aor, id = "bob@acme.example", "b-bob"
	dir := newPhoneBook()
	dir.bind("bob", id, "sip:bob@192.0.2.20:5060", "192.0.2.20:5060", "n2") // rung nowhere: 480 once accepted
	b, _ := recorderB2BUA(t, challengeAll{}, dir)
	first := newRequest(t, sip.INVITE, "sip:bob@192.0.2.20:5060", withHop(testHopKey, aor, id))
	answeredOnce(t, serve(t, b.OnInvite, first), 480, "")
	replay := first.Clone() // the same INVITE, signature and all
	answeredOnce(t, serve(t, b.OnInvite, replay), 403, "Forbidden")
}

// TestMaxForwardsExhausted: a B2BUA passes the caller's Max-Forwards on,
// decremented, and refuses a request that has none left with 483 (RFC
// 7332, RFC 3261 §16.3): otherwise two nodes, or a node and a phone
// forwarding to it, can loop a call forever.
func TestMaxForwardsExhausted(t *testing.T) {
	b, _ := recorderB2BUA(t, acceptAll{}, newPhoneBook())
	req := newRequest(t, sip.INVITE, "sip:1002@acme.example", func(r *sip.Request) { *r.MaxForwards() = 0 })
	answeredOnce(t, serve(t, b.OnInvite, req), 483, "")
}

// --- phones and nodes on loopback ------------------------------------------------

// simNode is a B2BUA served on a loopback UDP socket, as appliance/node
// serves it.
type simNode struct {
	b       *B2BUA
	addr    string
	journal *recordJournal

	mu    sync.Mutex
	acked map[string]bool // Call-IDs of the ACKs the B2BUA has taken
}

func startNode(t *testing.T, id string, dir Directory) *simNode {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	ua, srv, client := newUA(t, "outpost-"+id, "")
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: "127.0.0.1", Port: port}}
	n := &simNode{addr: conn.LocalAddr().String(), journal: &recordJournal{}, acked: map[string]bool{}}
	n.b = NewB2BUA(client, contact, acceptAll{}, dir, n.journal, id, testHopKey, quiet())
	srv.OnInvite(n.b.OnInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		n.b.OnAck(req, tx)
		n.mu.Lock()
		n.acked[req.CallID().Value()] = true
		n.mu.Unlock()
	})
	srv.OnBye(n.b.OnBye)
	srv.OnUpdate(n.b.OnUpdate)
	srv.OnInfo(n.b.OnInfo)
	serveUDP(t, ua, srv, conn)
	return n
}

// tookAck waits until the B2BUA has taken an ACK of call callID ("": of
// any call). sipgo handles each request in a goroutine of its own, so a
// BYE sent right after an ACK may be handled first, and the node then
// races itself and may record the call as failed (status 500) instead of
// answered: tests hang up only once the node has the ACK.
func (n *simNode) tookAck(t *testing.T, callID string) {
	t.Helper()
	eventually(t, "the node to take the ACK", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.acked[callID] || (callID == "" && len(n.acked) > 0)
	})
}

func newUA(t *testing.T, name, connAddr string) (*sipgo.UserAgent, *sipgo.Server, *sipgo.Client) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet())),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet())))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	opts := []sipgo.ClientOption{sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(quiet())}
	if connAddr != "" {
		opts = append(opts, sipgo.WithClientConnectionAddr(connAddr))
	}
	client, err := sipgo.NewClient(ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ua, srv, client
}

// serveUDP serves conn until the test ends, and returns once the
// transport can send from it.
func serveUDP(t *testing.T, ua *sipgo.UserAgent, srv *sipgo.Server, conn net.PacketConn) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		ua.Close()
		conn.Close()
		<-done
	})
	eventually(t, "the UDP listener", func() bool {
		c, err := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String())
		if err != nil {
			return false
		}
		_, _ = c.TryClose() // GetConnection took a reference
		return true
	})
}

// phoneEvent is what a phone saw: a request; or, as "180" and "200", that
// it rang and that it answered (body: its SDP); or, as "CANCEL", that a
// call ringing it was cancelled.
type phoneEvent struct {
	method string
	req    *sip.Request
	body   []byte
}

// script is how a phone takes a new call; it returns once the call is
// answered or over.
type script func(p *simPhone, ds *sipgo.DialogServerSession)

// simPhone is a phone: a sipgo user agent on its own loopback port, which
// sends from that port as phones do. It takes calls with its script,
// answers in-dialog INVITE, UPDATE and INFO, and reports everything it
// sees on events.
type simPhone struct {
	name       string
	addr       string
	contactURI string
	uas        *sipgo.DialogServerCache // calls it took
	uac        *sipgo.DialogClientCache // calls it placed
	client     *sipgo.Client
	script     script
	events     chan phoneEvent
	answered   chan *sipgo.DialogServerSession
	cue        chan struct{}
	stop       chan struct{}

	refuseInDialog atomic.Int32 // its status for re-INVITE, UPDATE and INFO; 0: 200 (with its SDP answer)

	mu      sync.Mutex
	version int // of its SDP origin
}

func startPhone(t *testing.T, name string, s script) *simPhone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()
	ua, srv, client := newUA(t, name, addr)
	p := &simPhone{name: name, addr: addr, contactURI: "sip:" + name + "@" + addr, client: client, script: s,
		events: make(chan phoneEvent, 64), answered: make(chan *sipgo.DialogServerSession, 4),
		cue: make(chan struct{}), stop: make(chan struct{})}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: name, Host: "127.0.0.1",
		Port: conn.LocalAddr().(*net.UDPAddr).Port}}
	p.uas = sipgo.NewDialogServerCache(client, contact)
	p.uac = sipgo.NewDialogClientCache(client, contact)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		p.emit("ACK", req)
		_ = p.uas.ReadAck(req, tx)
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.emit("BYE", req)
		if p.uas.ReadBye(req, tx) == nil || p.uac.ReadBye(req, tx) == nil {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	srv.OnUpdate(p.answerInDialog)
	srv.OnInfo(p.answerInDialog)
	serveUDP(t, ua, srv, conn)
	t.Cleanup(func() { close(p.stop) })
	return p
}

func (p *simPhone) emit(method string, req *sip.Request) {
	var body []byte
	if req != nil {
		body = req.Body()
	}
	p.emitBody(method, req, body)
}

func (p *simPhone) emitBody(method string, req *sip.Request, body []byte) {
	select {
	case p.events <- phoneEvent{method, req, body}:
	case <-p.stop:
	}
}

func (p *simPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if _, ok := req.To().Params.Get("tag"); ok {
		p.answerInDialog(req, tx)
		return
	}
	ds, err := p.uas.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	p.emit("INVITE", req)
	p.script(p, ds)
}

// answerInDialog answers a re-INVITE or UPDATE with the SDP answer to
// its offer, an INFO with a bare 200.
func (p *simPhone) answerInDialog(req *sip.Request, tx sip.ServerTransaction) {
	p.emit(req.Method.String(), req)
	if code := int(p.refuseInDialog.Load()); code != 0 {
		p.emitBody(strconv.Itoa(code), nil, nil)
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Not Acceptable Here", nil))
		return
	}
	if req.Method == sip.INFO {
		p.emitBody("200", nil, nil)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	sdp := p.sdp(answerDirection(req.Body()))
	p.emitBody("200", nil, sdp)
	res := sip.NewResponseFromRequest(req, 200, "OK", sdp)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Contact", "<"+p.contactURI+">"))
	_ = tx.Respond(res)
}

// sdp is the phone's next session description: same origin, one version
// up (RFC 3264 §8), media on a port of its own.
func (p *simPhone) sdp(direction string) []byte {
	p.mu.Lock()
	p.version++
	v := p.version
	p.mu.Unlock()
	_, port, _ := net.SplitHostPort(p.addr)
	return []byte(fmt.Sprintf("v=0\r\no=%s 4242 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %s RTP/AVP 0\r\na=%s\r\n", p.name, v, port, direction))
}

func answerDirection(offer []byte) string {
	switch {
	case bytes.Contains(offer, []byte("a=sendonly")):
		return "recvonly"
	case bytes.Contains(offer, []byte("a=recvonly")):
		return "sendonly"
	case bytes.Contains(offer, []byte("a=inactive")):
		return "inactive"
	}
	return "sendrecv"
}

// expect waits for the phone's next events, in order, and returns the last.
func (p *simPhone) expect(t *testing.T, methods ...string) phoneEvent {
	t.Helper()
	var last phoneEvent
	for _, m := range methods {
		select {
		case last = <-p.events:
			if last.method != m {
				t.Fatalf("%s saw %s, want %s", p.name, last.method, m)
			}
		case <-time.After(waitFor):
			t.Fatalf("%s: no %s", p.name, m)
		}
	}
	return last
}

// session is the dialog of the call the phone answered last.
func (p *simPhone) session(t *testing.T) *sipgo.DialogServerSession {
	t.Helper()
	select {
	case ds := <-p.answered:
		return ds
	case <-time.After(waitFor):
		t.Fatalf("%s answered no call", p.name)
		return nil
	}
}

// idle checks that the phone saw nothing it was not expected to.
func (p *simPhone) idle(t *testing.T) {
	t.Helper()
	select {
	case ev := <-p.events:
		t.Errorf("%s saw an unexpected %s", p.name, ev.method)
	default:
	}
}

// onCue rings, then answers with the phone's SDP when picked up. Tests
// pick up once the caller has seen the 180: sipgo's transaction layer
// handles each response in a goroutine of its own, and a 180 followed at
// once by a 200 may be taken after the 200 and dropped.
func onCue(p *simPhone, ds *sipgo.DialogServerSession) {
	_ = ds.Respond(180, "Ringing", nil)
	p.emit("180", nil)
	select {
	case <-p.cue:
	case <-ds.Context().Done():
		p.emit("CANCEL", nil)
		return
	case <-p.stop:
		return
	}
	sdp := p.sdp("sendrecv")
	p.emitBody("200", nil, sdp)
	if ds.RespondSDP(sdp) == nil {
		p.answered <- ds
	}
}

// pickUp lets the phone answer the call ringing it.
func (p *simPhone) pickUp(t *testing.T) {
	t.Helper()
	select {
	case p.cue <- struct{}{}:
	case <-time.After(waitFor):
		t.Fatalf("%s has no call to pick up", p.name)
	}
}

// refusing answers every call with code.
func refusing(code int, reason string) script {
	return func(_ *simPhone, ds *sipgo.DialogServerSession) { _ = ds.Respond(code, reason, nil) }
}

// inviteCSeq is the CSeq of every INVITE a test phone places.
const inviteCSeq = 1000

// outgoing is a call a phone placed, its answer awaited in the background.
type outgoing struct {
	node      *simNode
	sess      *sipgo.DialogClientSession
	offer     []byte
	callID    string
	responses chan *sip.Response
	seen      []*sip.Response // the responses the test read so far
	done      chan error
	cancel    context.CancelFunc
}

// dial calls dial through node with an SDP offer (none when offer is nil),
// as a phone configured with the node's address as its server.
func (p *simPhone) dial(t *testing.T, node *simNode, dial string, offer []byte) *outgoing {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	host, port, err := sip.ParseAddr(node.addr)
	if err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: dial, Host: host, Port: port})
	req.SetTransport("UDP")
	from := &sip.FromHeader{DisplayName: "Alice", Address: sip.Uri{Scheme: "sip", User: "alice", Host: "acme.example"},
		Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: dial, Host: "acme.example"}, Params: sip.NewParams()})
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inviteCSeq, MethodName: sip.INVITE})
	if offer != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(offer)
	}
	sess, err := p.uac.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	o := &outgoing{node: node, sess: sess, offer: offer, callID: req.CallID().Value(), responses: make(chan *sip.Response, 32),
		done: make(chan error, 1), cancel: cancel}
	go func() {
		o.done <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			o.responses <- res
			return nil
		}})
	}()
	return o
}

// progress waits until the caller has seen a response with code.
func (o *outgoing) progress(t *testing.T, code int) {
	t.Helper()
	for {
		select {
		case r := <-o.responses:
			o.seen = append(o.seen, r)
			if r.StatusCode == code {
				return
			}
		case <-time.After(waitFor):
			t.Fatalf("the caller saw no %d", code)
		}
	}
}

// result waits for the call's answer and returns it with every response
// the caller saw (provisional and final).
func (o *outgoing) result(t *testing.T) ([]*sip.Response, error) {
	t.Helper()
	var err error
	select {
	case err = <-o.done:
	case <-time.After(waitFor):
		t.Fatal("the caller got no final response")
	}
	for {
		select {
		case r := <-o.responses:
			o.seen = append(o.seen, r)
		default:
			return o.seen, err
		}
	}
}

// answered waits for a 200, checks what came before it and acknowledges
// it; it returns once the node has the ACK.
func (o *outgoing) answered(t *testing.T, wantSDP []byte) {
	t.Helper()
	o.answer200(t, wantSDP)
	if err := o.sess.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.node.tookAck(t, o.callID)
}

// answer200 waits for a 200 carrying wantSDP and checks what came before.
func (o *outgoing) answer200(t *testing.T, wantSDP []byte) {
	t.Helper()
	seen, err := o.result(t)
	if err != nil {
		t.Fatalf("call not answered: %v", err)
	}
	checkProgress(t, seen, 1, 200)
	ok := seen[len(seen)-1]
	if !bytes.Equal(ok.Body(), wantSDP) {
		t.Errorf("200 OK body:\n%s\nwant the callee's:\n%s", ok.Body(), wantSDP)
	}
	if ct := ok.GetHeader("Content-Type"); ct == nil || ct.Value() != "application/sdp" {
		t.Errorf("200 OK Content-Type %v, want application/sdp", ct)
	}
	if ok.Contact() == nil {
		t.Error("200 OK without Contact")
	}
}

// byeIn sends a BYE with CSeq seq in the caller's dialog of call o, as
// its phone would outside the dialog state sipgo keeps (a BYE after the
// call is over, one out of order), and returns the node's answer: 0 when
// none came. The dialog is the one the node's 180 began (a 487 comes from
// sipgo's transaction layer, with a tag of its own), else its final
// response's.
func (o *outgoing) byeIn(t *testing.T, caller *simPhone, seq uint32) int {
	t.Helper()
	inv, last := o.sess.InviteRequest, o.sess.InviteResponse
	for _, r := range o.seen {
		if r.StatusCode == 180 {
			last = r
		}
	}
	bye := sip.NewRequest(sip.BYE, inv.Recipient)
	bye.SetTransport("UDP")
	bye.AppendHeader(sip.HeaderClone(inv.From()))
	bye.AppendHeader(sip.HeaderClone(last.To()))
	bye.AppendHeader(sip.HeaderClone(inv.CallID()))
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.BYE})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := caller.client.Do(ctx, bye)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

// checkProgress checks the responses a caller saw: rings 180 Ringing and
// the final response, code, last; and at most a 100 Trying besides (sipgo
// hands responses up concurrently: the 100 may come after the 180).
func checkProgress(t *testing.T, seen []*sip.Response, rings, code int) {
	t.Helper()
	var codes []int
	count := map[int]int{}
	for _, r := range seen {
		codes = append(codes, r.StatusCode)
		count[r.StatusCode]++
	}
	if len(codes) == 0 || codes[len(codes)-1] != code || count[180] != rings || count[100] > 1 ||
		len(codes) != 1+count[180]+count[100] {
		t.Fatalf("caller saw %v, want 100, %d×180, then %d", codes, rings, code)
	}
}

// cluster is one node and the phones of alice (who calls) and, for each
// script, one of bob's contacts, registered on the node.
func cluster(t *testing.T, bobs ...script) (*simNode, *phoneBook, *simPhone, []*simPhone) {
	t.Helper()
	dir := newPhoneBook()
	node := startNode(t, "n1", dir)
	alice := startPhone(t, "alice", onCue)
	var phones []*simPhone
	for i, s := range bobs {
		p := startPhone(t, fmt.Sprintf("bob%d", i+1), s)
		dir.bind("bob", "b-"+p.name, p.contactURI, p.addr, "n1")
		phones = append(phones, p)
	}
	return node, dir, alice, phones
}

// connect places a call from alice to callee's only phone (bob's: 1002,
// carol's: 1003) and returns it answered and acknowledged on both sides,
// with the callee's dialog.
func connect(t *testing.T, node *simNode, alice *simPhone, dial string, callee *simPhone) (*outgoing, *sipgo.DialogServerSession) {
	t.Helper()
	before := node.b.Active()
	call := alice.dial(t, node, dial, alice.sdp("sendrecv"))
	callee.expect(t, "INVITE", "180")
	call.progress(t, 180)
	callee.pickUp(t)
	answer := callee.expect(t, "200").body
	call.answered(t, answer)
	callee.expect(t, "ACK")
	ds := callee.session(t)
	// The node passes in-dialog requests on once it holds the call.
	eventually(t, "the call to be connected", func() bool { return node.b.Active() > before })
	return call, ds
}

func TestCallAnsweredCallerHangsUp(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	inv := bob.expect(t, "INVITE").req
	if !bytes.Equal(inv.Body(), call.offer) {
		t.Errorf("callee's INVITE body:\n%s\nwant the caller's offer:\n%s", inv.Body(), call.offer)
	}
	if ct := inv.GetHeader("Content-Type"); ct == nil || ct.Value() != "application/sdp" {
		t.Errorf("callee's INVITE Content-Type %v", ct)
	}
	if from := inv.From(); from.Address.User != "1001" || from.DisplayName != "Alice" {
		t.Errorf("callee sees the call from %q <%s>, want Alice <1001>", from.DisplayName, from.Address.User)
	}
	if to := inv.To(); to.Address.User != "bob" {
		t.Errorf("callee's INVITE To %s, want bob", to.Address.User)
	}
	if inv.GetHeader("X-Outpost-Hop-Auth") != nil || inv.GetHeader("X-Outpost-Binding") != nil {
		t.Error("a phone was sent the node-to-node headers")
	}
	bob.expect(t, "180")
	call.progress(t, 180)
	bob.pickUp(t)
	answer := bob.expect(t, "200").body
	call.answered(t, answer)
	bob.expect(t, "ACK")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })
	if recs := node.journal.all(); len(recs) != 0 {
		t.Fatalf("recorded %+v before the call ended", recs)
	}

	if err := call.sess.Bye(context.Background()); err != nil {
		t.Fatalf("caller's BYE: %v", err)
	}
	bob.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

func TestCallAnsweredCalleeHangsUp(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call, ds := connect(t, node, alice, "1002", bob)
	if err := ds.Bye(context.Background()); err != nil {
		t.Fatalf("callee's BYE: %v", err)
	}
	alice.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

// TestCallForked rings both of bob's phones: the caller hears one 180,
// the first to answer gets the call and the other is cancelled.
func TestCallForked(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue, onCue)
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	for _, bob := range bobs {
		if inv := bob.expect(t, "INVITE").req; !bytes.Equal(inv.Body(), call.offer) {
			t.Errorf("%s's INVITE body:\n%s\nwant the caller's offer", bob.name, inv.Body())
		}
		bob.expect(t, "180")
	}
	call.progress(t, 180)
	bobs[1].pickUp(t)
	answer := bobs[1].expect(t, "200").body
	bobs[0].expect(t, "CANCEL")
	call.answered(t, answer) // one 180 though both rang
	bobs[1].expect(t, "ACK")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })

	if err := call.sess.Bye(context.Background()); err != nil {
		t.Fatalf("caller's BYE: %v", err)
	}
	bobs[1].expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	for _, bob := range bobs {
		bob.idle(t)
	}
}

// TestCallUnanswered covers calls no phone answers: busy when one was
// busy, else no answer.
func TestCallUnanswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		phones []script
		code   int
		disp   string
	}{
		{"the only phone busy", []script{refusing(486, "Busy Here")}, 486, DispBusy},
		{"every phone busy", []script{refusing(486, "Busy Here"), refusing(486, "Busy Here")}, 486, DispBusy},
		{"one busy, one declining", []script{refusing(603, "Decline"), refusing(486, "Busy Here")}, 486, DispBusy},
		{"the only phone declining", []script{refusing(603, "Decline")}, 480, DispNoAnswer},
		{"every phone failing", []script{refusing(480, "Temporarily Unavailable"), refusing(500, "Server Internal Error")},
			480, DispNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, tc.phones...)
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			for _, bob := range bobs {
				bob.expect(t, "INVITE")
			}
			seen, err := call.result(t)
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != tc.code {
				t.Fatalf("caller got %v, want %d", err, tc.code)
			}
			checkProgress(t, seen, 0, tc.code)
			recs := node.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{tc.disp, tc.code, "bob", "1002", DestUser})
			settled(t, node)
		})
	}
}

// TestCallCancelled: the caller hangs up while bob's phones ring; they
// are cancelled and the caller gets 487.
func TestCallCancelled(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue, onCue)
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	for _, bob := range bobs {
		bob.expect(t, "INVITE", "180")
	}
	call.progress(t, 180)
	call.cancel()
	if _, err := call.result(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller's cancelled INVITE ended with %v", err)
	}
	if got := call.sess.InviteResponse.StatusCode; got != 487 {
		t.Errorf("cancelled INVITE answered %d, want 487", got)
	}
	for _, bob := range bobs {
		bob.expect(t, "CANCEL")
	}
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispCancelled, 487, "bob", "1002", DestUser})
	settled(t, node)
	for _, bob := range bobs {
		bob.idle(t)
	}
}

// inDialog is either side's dialog, as a test phone drives it.
type inDialog interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
}

// TestInDialogPassed: re-INVITE and UPDATE (hold: an offer with
// a=sendonly) and INFO (DTMF) from either party reach the other with
// their body, and the other's answer comes back, refusals included.
func TestInDialogPassed(t *testing.T) {
	t.Parallel()
	const dtmf = "Signal=5\r\nDuration=160\r\n"
	for _, tc := range []struct {
		name       string
		method     sip.RequestMethod
		fromCallee bool
		refuse     int // the other party's answer, when not 200
	}{
		{name: "re-INVITE from the caller", method: sip.INVITE},
		{name: "re-INVITE from the callee", method: sip.INVITE, fromCallee: true},
		{name: "UPDATE from the caller", method: sip.UPDATE},
		{name: "UPDATE from the callee", method: sip.UPDATE, fromCallee: true},
		{name: "INFO from the caller", method: sip.INFO},
		{name: "INFO from the callee", method: sip.INFO, fromCallee: true},
		{name: "re-INVITE the callee refuses", method: sip.INVITE, refuse: 488},
		{name: "UPDATE the caller refuses", method: sip.UPDATE, fromCallee: true, refuse: 488},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, onCue)
			bob := bobs[0]
			call, ds := connect(t, node, alice, "1002", bob)
			var sender inDialog = call.sess
			target := call.sess.InviteResponse.Contact().Address
			from, to := alice, bob
			if tc.fromCallee {
				sender, target = ds, ds.InviteRequest.Contact().Address
				from, to = bob, alice
			}
			to.refuseInDialog.Store(int32(tc.refuse))

			body, ctype := []byte(dtmf), "application/dtmf-relay"
			if tc.method != sip.INFO {
				body, ctype = from.sdp("sendonly"), "application/sdp"
			}
			req := sip.NewRequest(tc.method, target)
			req.AppendHeader(sip.NewHeader("Content-Type", ctype))
			req.SetBody(body)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			res, err := sender.Do(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}

			got := to.expect(t, tc.method.String()).req
			if !bytes.Equal(got.Body(), body) {
				t.Errorf("%s reached %s with body:\n%s\nwant:\n%s", tc.method, to.name, got.Body(), body)
			}
			if ct := got.GetHeader("Content-Type"); ct == nil || ct.Value() != ctype {
				t.Errorf("%s reached %s with Content-Type %v, want %s", tc.method, to.name, ct, ctype)
			}
			if tc.refuse != 0 {
				to.expect(t, strconv.Itoa(tc.refuse))
				if res.StatusCode != tc.refuse {
					t.Fatalf("%s answered %s, want %d", tc.method, res.StartLine(), tc.refuse)
				}
			} else {
				answer := to.expect(t, "200").body
				if tc.method == sip.INVITE {
					to.expect(t, "ACK") // the node acknowledges the answer on the far leg
				}
				if res.StatusCode != 200 || !bytes.Equal(res.Body(), answer) {
					t.Fatalf("%s answered %s with body:\n%s\nwant 200 with:\n%s", tc.method, res.StartLine(), res.Body(), answer)
				}
				if ct := res.GetHeader("Content-Type"); answer != nil && (ct == nil || ct.Value() != "application/sdp") {
					t.Errorf("answer's Content-Type %v", ct)
				}
				if tc.method == sip.INVITE {
					if err := sender.WriteRequest(sip.NewRequest(sip.ACK, target)); err != nil {
						t.Fatal(err)
					}
				}
			}

			if err := call.sess.Bye(context.Background()); err != nil {
				t.Fatalf("caller's BYE: %v", err)
			}
			bob.expect(t, "BYE")
			recs := node.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
			settled(t, node)
			alice.idle(t)
			bob.idle(t)
		})
	}
}

// TestActiveCountsConnectedCalls: two calls at once, hung up one by one.
func TestActiveCountsConnectedCalls(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	carol := startPhone(t, "carol1", onCue)
	dir.bind("carol", "b-carol1", carol.contactURI, carol.addr, "n1")
	if node.b.Active() != 0 {
		t.Fatalf("Active() = %d before any call", node.b.Active())
	}
	toBob, _ := connect(t, node, alice, "1002", bobs[0])
	if got := node.b.Active(); got != 1 {
		t.Fatalf("Active() = %d with one call", got)
	}
	toCarol, carolDS := connect(t, node, alice, "1003", carol)
	if got := node.b.Active(); got != 2 {
		t.Fatalf("Active() = %d with two calls", got)
	}

	if err := toBob.sess.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	bobs[0].expect(t, "BYE")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })
	if err := carolDS.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "BYE")
	settled(t, node)
	recs := node.journal.wait(t, 2)
	checkRecord(t, recs[0], toBob.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	checkRecord(t, recs[1], toCarol.callID, wantRecord{DispAnswered, 200, "carol", "1003", DestUser})
}

// TestCallThroughAnotherNode: bob's phone is registered on node n2; alice
// calls through n1, which hands the call to n2 (a signed hop INVITE) and
// n2 rings the phone. Only the caller's node records the call.
func TestCallThroughAnotherNode(t *testing.T) {
	t.Parallel()
	for _, hangUp := range []string{"caller", "callee"} {
		t.Run(hangUp+" hangs up", func(t *testing.T) {
			t.Parallel()
			dir := newPhoneBook()
			n1, n2 := startNode(t, "n1", dir), startNode(t, "n2", dir)
			dir.member("n1", n1.addr)
			dir.member("n2", n2.addr)
			alice, bob := startPhone(t, "alice", onCue), startPhone(t, "bob1", onCue)
			dir.bind("bob", "b-bob1", bob.contactURI, bob.addr, "n2")

			call := alice.dial(t, n1, "1002", alice.sdp("sendrecv"))
			inv := bob.expect(t, "INVITE").req
			if !bytes.Equal(inv.Body(), call.offer) {
				t.Errorf("callee's INVITE body:\n%s\nwant the caller's offer:\n%s", inv.Body(), call.offer)
			}
			if from := inv.From(); from.Address.User != "1001" || from.DisplayName != "Alice" {
				t.Errorf("callee sees the call from %q <%s>, want Alice <1001>", from.DisplayName, from.Address.User)
			}
			if inv.GetHeader("X-Outpost-Hop-Auth") != nil || inv.GetHeader("X-Outpost-Binding") != nil {
				t.Error("the phone was sent the node-to-node headers")
			}
			bob.expect(t, "180")
			call.progress(t, 180)
			bob.pickUp(t)
			call.answered(t, bob.expect(t, "200").body)
			bob.expect(t, "ACK")
			ds := bob.session(t)
			n2.tookAck(t, "") // n1's, for its leg to n2
			eventually(t, "both nodes to carry the call", func() bool { return n1.b.Active() == 1 && n2.b.Active() == 1 })

			if hangUp == "caller" {
				if err := call.sess.Bye(context.Background()); err != nil {
					t.Fatalf("caller's BYE: %v", err)
				}
				bob.expect(t, "BYE")
			} else {
				if err := ds.Bye(context.Background()); err != nil {
					t.Fatalf("callee's BYE: %v", err)
				}
				alice.expect(t, "BYE")
			}
			recs := n1.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
			settled(t, n1)
			settled(t, n2)
			if recs := n2.journal.all(); len(recs) != 0 {
				t.Errorf("the callee's node recorded %+v", recs)
			}
			alice.idle(t)
			bob.idle(t)
		})
	}
}

// TestCalleeHangsUpBeforeCallerAcks: bob hangs up as soon as he has the
// node's ACK, before the caller has acknowledged the 200 it was sent. The
// node answers bob's BYE, so it must hang the caller up too. (Until
// 7d730e8 the node held the call only from the caller's ACK on, and the
// caller was left connected to nobody.)
func TestCalleeHangsUpBeforeCallerAcks(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	bob.expect(t, "INVITE", "180")
	call.progress(t, 180)
	bob.pickUp(t)
	call.answer200(t, bob.expect(t, "200").body)
	bob.expect(t, "ACK")
	if err := bob.session(t).Bye(context.Background()); err != nil {
		t.Fatalf("callee's BYE: %v", err)
	}
	if err := call.sess.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

// TestEndedDialogsForgotten: however a call ends, the node then holds
// none of its dialogs, and a late BYE in the caller's dialog gets 481.
// (Until 7d730e8 sipgo's DialogServerCache kept the caller's dialog of
// every call not answered or hung up by the callee.)
func TestEndedDialogsForgotten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		phone script
		end   func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing
	}{
		{name: "caller hung up", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call, _ := connect(t, node, alice, "1002", bob)
			if err := call.sess.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			bob.expect(t, "BYE")
			return call
		}},
		{name: "callee hung up", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call, ds := connect(t, node, alice, "1002", bob)
			if err := ds.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			alice.expect(t, "BYE")
			return call
		}},
		{name: "busy", phone: refusing(486, "Busy Here"), end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			if _, err := call.result(t); err == nil {
				t.Fatal("busy call answered")
			}
			return call
		}},
		{name: "cancelled", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			bob.expect(t, "INVITE", "180")
			call.progress(t, 180)
			call.cancel()
			call.result(t)
			return call
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, tc.phone)
			call := tc.end(t, node, alice, bobs[0])
			node.journal.wait(t, 1)
			settled(t, node)
			if got := call.byeIn(t, alice, inviteCSeq+10); got != 481 {
				t.Fatalf("BYE in the dialog of a call that is over answered %d, want 481", got)
			}
		})
	}
}

// --- known bugs -------------------------------------------------------------------

// TestByeOutOfOrder: a BYE with a CSeq below the INVITE's is out of order;
// the node answers it 500 and the call goes on (RFC 3261 §12.2.2).
func TestByeOutOfOrder(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	call, _ := connect(t, node, alice, "1002", bobs[0])
	if got := call.byeIn(t, alice, inviteCSeq-1); got != 500 {
		t.Errorf("out-of-order BYE answered %d (0: not at all), want 500", got)
	}
	if got := node.b.Active(); got != 1 {
		t.Errorf("Active() = %d after an out-of-order BYE, want the call still up", got)
	}
	bobs[0].idle(t)
}

// TestReinviteAnswerHasContact: a 2xx to an INVITE, re-INVITEs included,
// carries a Contact (RFC 3261 §12.1.1 and Table 3).
func TestReinviteAnswerHasContact(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	call, _ := connect(t, node, alice, "1002", bobs[0])
	target := call.sess.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(alice.sdp("sendonly"))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := call.sess.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_ = call.sess.WriteRequest(sip.NewRequest(sip.ACK, target))
	if res.StatusCode != 200 || res.Contact() == nil {
		t.Fatalf("re-INVITE answered %s with Contact %v, want 200 with a Contact", res.StartLine(), res.Contact())
	}
}

// TestLateOffer: a caller may send its INVITE without SDP; the callee's
// 200 then carries the offer and the caller's ACK the answer, which the
// callee must get in its ACK (RFC 3261 §13.2.1, RFC 3264).
func TestLateOffer(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", nil)
	if inv := bob.expect(t, "INVITE").req; len(inv.Body()) != 0 {
		t.Fatalf("callee's INVITE has a body: %s", inv.Body())
	}
	bob.expect(t, "180")
	call.progress(t, 180)
	bob.pickUp(t)
	call.answer200(t, bob.expect(t, "200").body)
	answer := alice.sdp("sendrecv")
	ack := sip.NewRequest(sip.ACK, call.sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(answer)
	if err := call.sess.WriteAck(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	if got := bob.expect(t, "ACK").body; !bytes.Equal(got, answer) {
		t.Fatalf("callee's ACK body:\n%s\nwant the caller's answer:\n%s", got, answer)
	}
}

// rawPhone is a phone written by hand on a UDP socket, for behaviour a
// sipgo user agent cannot be made to show.
type rawPhone struct {
	conn net.PacketConn
	addr string
	in   chan rawPacket
}

type rawPacket struct {
	msg  sip.Message
	from net.Addr
}

func startRawPhone(t *testing.T) *rawPhone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPhone{conn: conn, addr: conn.LocalAddr().String(), in: make(chan rawPacket, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			select {
			case r.in <- rawPacket{msg, from}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return r
}

// request waits for a request of method, skipping anything else.
func (r *rawPhone) request(t *testing.T, method sip.RequestMethod) (*sip.Request, net.Addr) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case p := <-r.in:
			if req, ok := p.msg.(*sip.Request); ok && req.Method == method {
				return req, p.from
			}
		case <-deadline:
			t.Fatalf("raw phone: no %s", method)
		}
	}
}

func (r *rawPhone) send(t *testing.T, msg sip.Message, to net.Addr) {
	t.Helper()
	if _, err := r.conn.WriteTo([]byte(msg.String()), to); err != nil {
		t.Fatal(err)
	}
}

// TestForkAnswerCrossesCancel: bob's second phone answers just as the node
// cancels it (its 200 crosses the CANCEL). The node must acknowledge that
// 200 and hang the phone up with a BYE (RFC 3261 §9.1, §15), or the phone
// stays off-hook in a call nobody is in.
func TestForkAnswerCrossesCancel(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	raw := startRawPhone(t)
	dir.bind("bob", "b-raw", "sip:bob@"+raw.addr, raw.addr, "n1")

	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	inv, from := raw.request(t, sip.INVITE)
	inv.To().Params.Add("tag", "raw-tag")
	raw.send(t, sip.NewResponseFromRequest(inv, 180, "Ringing", nil), from)
	bobs[0].expect(t, "INVITE", "180")
	call.progress(t, 180)
	bobs[0].pickUp(t)
	answer := bobs[0].expect(t, "200").body

	cancelReq, cancelFrom := raw.request(t, sip.CANCEL)
	raw.send(t, sip.NewResponseFromRequest(cancelReq, 200, "OK", nil), cancelFrom)
	ok := sip.NewResponseFromRequest(inv, 200, "OK", []byte("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"+
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"))
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:bob@"+raw.addr+">"))
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	raw.send(t, ok, from)

	call.answered(t, answer)
	bobs[0].expect(t, "ACK")
	raw.request(t, sip.ACK)
	bye, byeFrom := raw.request(t, sip.BYE)
	raw.send(t, sip.NewResponseFromRequest(bye, 200, "OK", nil), byeFrom)
}

// TestForkStaleContact: one of bob's two contacts is stale (the phone is
// gone and answers nothing). When the other answers, the caller must be
// connected at once, not when the stale contact's INVITE times out.
func TestForkStaleContact(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	stale := startRawPhone(t)
	dir.bind("bob", "b-stale", "sip:bob@"+stale.addr, stale.addr, "n1")

	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	stale.request(t, sip.INVITE)
	bobs[0].expect(t, "INVITE", "180")
	call.progress(t, 180)
	bobs[0].pickUp(t)
	call.answered(t, bobs[0].expect(t, "200").body)
	bobs[0].expect(t, "ACK")
}
