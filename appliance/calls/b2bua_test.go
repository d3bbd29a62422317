package calls

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
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
	failGroups   bool
}

// SDGs is the front desk (1900): bob and carol at once, nothing after.
func (d *phoneBook) SDGs(context.Context) ([]account.SDG, error) {
	if d.failGroups {
		return nil, errUnreadable
	}
	return []account.SDG{{ID: "sdg-frontdesk", Site: "hq", Name: "Front Desk", Extension: "1900",
		Route: &account.Route{Type: account.RouteGroup, Members: []string{"u-bob", "u-carol"},
			Strategy: account.StrategySimultaneous, RingTimeoutS: 5}}}, nil
}

// Numbers is +16505550199, which rings carol.
func (d *phoneBook) Numbers(context.Context) ([]account.Number, error) {
	return []account.Number{{Number: "+16505550199", Site: "hq", Route: &account.Route{Type: account.RouteUser, ID: "u-carol"}}}, nil
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
		{name: "SDG with no member registered", ruri: "sip:1900@acme.example", code: 480,
			reason: "Temporarily Unavailable",
			rec:    &wantRecord{DispNoAnswer, 480, "", "1900", DestSDG}},
		{name: "account number to a user with no phone", ruri: "sip:+16505550199@acme.example", code: 480,
			reason: "Temporarily Unavailable",
			rec:    &wantRecord{DispUnavailable, 480, "", "+16505550199", DestNumber}},
		{name: "SDG unreadable", setup: func(d *phoneBook) { d.failGroups = true }, ruri: "sip:1900@acme.example",
			code: 500, rec: &wantRecord{DispFailed, 500, "", "1900", DestSDG}},
		{name: "external number", ruri: "sip:4155550123@acme.example", code: 503,
			reason: "Service Unavailable: no trunk to the PSTN",
			rec:    &wantRecord{DispFailed, 503, "", "4155550123", DestExternal}},
		{name: "emergency number", ruri: "sip:911@acme.example", code: 503,
			reason: "Service Unavailable: no trunk to the PSTN",
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
