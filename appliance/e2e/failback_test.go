package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/web"
)

// failbackPhone is a desk phone written with sipgo: it registers from the
// UDP port it listens on, answers calls, and, when it honours check-sync,
// goes back to its primary server on a NOTIFY Event: check-sync by
// unregistering here (Expires: 0), as a phone that re-checks its
// configuration does.
type failbackPhone struct {
	t       *testing.T
	user    string
	node    *node
	honour  bool
	client  *sipgo.Client
	contact sip.ContactHeader
	calls   *sipgo.DialogClientCache
	answers *sipgo.DialogServerCache

	mu         sync.Mutex
	checkSyncs int  // NOTIFYs with Event: check-sync received
	left       bool // unregistered here after one
}

func newFailbackPhone(t *testing.T, n *node, user string, honour bool) *failbackPhone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("failback-" + user))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	p := &failbackPhone{t: t, user: user, node: n, honour: honour, client: client,
		contact: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: addr.Port}}}
	p.calls = sipgo.NewDialogClientCache(client, p.contact)
	p.answers = sipgo.NewDialogServerCache(client, p.contact)
	srv.OnNotify(p.onNotify)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		ds, err := p.answers.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		_ = ds.RespondSDP(p.sdp())
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.answers.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.answers.ReadBye(req, tx) == nil || p.calls.ReadBye(req, tx) == nil {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { ua.Close(); conn.Close() }) // the UA does not close conn
	return p
}

func (p *failbackPhone) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if ev := req.GetHeader("Event"); ev == nil || !strings.HasPrefix(ev.Value(), "check-sync") {
		return
	}
	p.mu.Lock()
	p.checkSyncs++
	p.mu.Unlock()
	if !p.honour {
		return
	}
	go func() { // back to the primary server: unregister here
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if res, err := p.register(ctx, 0); err == nil && res.StatusCode == 200 {
			p.mu.Lock()
			p.left = true
			p.mu.Unlock()
		}
	}()
}

func (p *failbackPhone) state() (checkSyncs int, left bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkSyncs, p.left
}

func (p *failbackPhone) sdp() []byte {
	port := p.contact.Address.Port + 1
	return fmt.Appendf(nil, "v=0\r\no=%s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", p.user, port)
}

// register sends a REGISTER for expires seconds (0: unregister), answering
// the challenge, and returns the final answer.
func (p *failbackPhone) register(ctx context.Context, expires int) (*sip.Response, error) {
	aor := sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "acme.example"})
	req.SetDestination(p.node.sipUDP)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	contact := p.contact
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res, err := p.client.Do(ctx, req)
	if err == nil && res.StatusCode == 401 {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: "pw-" + p.user})
	}
	return res, err
}

// mustRegister registers and checks the interval granted.
func (p *failbackPhone) mustRegister(ctx context.Context, expires, granted int) {
	p.t.Helper()
	res, err := p.register(ctx, expires)
	if err != nil || res.StatusCode != 200 {
		p.t.Fatalf("%s registers: %v %v\n%s", p.user, res, err, p.node.log())
	}
	if c := res.Contact(); c == nil || !strings.Contains(res.String(), ";expires="+strconv.Itoa(granted)) {
		p.t.Fatalf("%s registers for %d s: want %d s granted, got\n%s", p.user, expires, granted, res)
	}
}

// call dials through the node, answering the 407, and acknowledges the answer.
func (p *failbackPhone) call(ctx context.Context, dial string) *sipgo.DialogClientSession {
	p.t.Helper()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: dial, Host: "acme.example"})
	req.SetDestination(p.node.sipUDP)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp())
	s, err := p.calls.WriteInvite(ctx, req)
	if err != nil {
		p.t.Fatalf("%s calls %s: %v", p.user, dial, err)
	}
	if err := s.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.user, Password: "pw-" + p.user}); err != nil {
		p.t.Fatalf("%s calls %s: %v\n%s", p.user, dial, err, p.node.log())
	}
	if err := s.Ack(ctx); err != nil {
		p.t.Fatal(err)
	}
	return s
}

// bindingsOf is GET /api/v1/bindings by username.
func bindingsOf(ctx context.Context, n *node) (map[string]web.BindingStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.httpAddr+"/api/v1/bindings", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct {
		Bindings []web.BindingStatus `json:"bindings"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET bindings: %d: %w", res.StatusCode, err)
	}
	out := map[string]web.BindingStatus{}
	for _, b := range body.Bindings {
		out[b.Username] = b
	}
	return out, nil
}

// failbackNode starts outpost-cloud behind a WAN link and one node paired
// with it, with sip.failback set by its environment override, and waits
// for it to serve the cloud's revision in mode normal.
func failbackNode(t *testing.T, failback string) (*node, *wan) {
	t.Helper()
	cloud := startCloud(t, demoSnapshot(t))
	link := startWAN(t, cloud.addr)
	creds := pairCluster(t, cloud, "acme-hq")
	n := startNode(t, "fb", nodeOpts{
		cloudCredentials: creds,
		env:              []string{"OUTPOST_SIP_FAILBACK=" + failback},
		cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n",
			link.url()),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, []*node{n}, rev, 30*time.Second)
	waitAllMode(t, []*node{n}, "normal", 10*time.Second)
	return n, link
}

// waitListed waits until the node lists a binding of each user (the
// registrar writes them to the store, where calls find them, within about
// 20 ms of the 200).
func waitListed(t *testing.T, n *node, users ...string) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%v registered", users), func(ctx context.Context) error {
		bs, err := bindingsOf(ctx, n)
		for _, u := range users {
			if _, here := bs[u]; err == nil && !here {
				err = fmt.Errorf("no binding of %s yet", u)
			}
		}
		return err
	})
}

// checkModeStays checks for a while that the node stays in mode.
func checkModeStays(t *testing.T, n *node, mode string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		st, err := n.status(context.Background())
		if err != nil || st.Mode != mode {
			t.Fatalf("mode %q (%v), want it to stay %s", st.Mode, err, mode)
		}
	}
}

// sip.failback notify: phones that registered during the outage get a
// NOTIFY check-sync once the mode is normal again and go back to their
// primary server (here: they unregister); the two in a call are left
// alone until they hang up. A phone that registers while the cloud is up
// is accepted and changes no mode.
func TestFailbackNotify(t *testing.T) {
	n, link := failbackNode(t, "notify")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The cloud is up: a phone registered to both at once (erin, which
	// ignores check-sync) is accepted with normal mode's interval.
	erin := newFailbackPhone(t, n, "erin", false)
	erin.mustRegister(ctx, 600, 60)
	checkModeStays(t, n, "normal", time.Second)

	link.cut()
	waitAllMode(t, []*node{n}, "survivability", 20*time.Second)
	alice := newFailbackPhone(t, n, "alice", true)
	bob := newFailbackPhone(t, n, "bob", true)
	carol := newFailbackPhone(t, n, "carol", true)
	for _, p := range []*failbackPhone{alice, bob, carol} {
		p.mustRegister(ctx, 600, 120) // the outage's cap
	}
	waitListed(t, n, "alice", "bob", "carol")
	call := bob.call(ctx, "1003") // bob and carol are in a call
	eventually(t, 10*time.Second, "the call connected", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.ActiveCalls != 1 {
			err = fmt.Errorf("active_calls %d", st.ActiveCalls)
		}
		return err
	})

	link.heal()
	waitAllMode(t, []*node{n}, "normal", 60*time.Second)
	eventually(t, 15*time.Second, "alice back on her primary server", func(ctx context.Context) error {
		if _, left := alice.state(); !left {
			return fmt.Errorf("alice has not unregistered")
		}
		bs, err := bindingsOf(ctx, n)
		if _, here := bs["alice"]; err == nil && here {
			err = fmt.Errorf("alice's binding is still listed")
		}
		return err
	})
	// Three more scans: bob and carol, in their call, hear nothing.
	time.Sleep(3 * time.Second)
	bs, err := bindingsOf(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*failbackPhone{bob, carol} {
		if syncs, _ := p.state(); syncs != 0 {
			t.Errorf("%s got %d check-sync during a call", p.user, syncs)
		}
		if _, here := bs[p.user]; !here {
			t.Errorf("%s's binding is gone during the call", p.user)
		}
	}
	if syncs, _ := erin.state(); syncs == 0 {
		t.Errorf("erin, registered here and idle, got no check-sync")
	}

	// The call ends: bob and carol go back too.
	if err := call.Bye(ctx); err != nil {
		t.Fatalf("bob hangs up: %v", err)
	}
	eventually(t, 15*time.Second, "bob and carol back on their primary server", func(ctx context.Context) error {
		for _, p := range []*failbackPhone{bob, carol} {
			if syncs, left := p.state(); syncs != 1 || !left {
				return fmt.Errorf("%s: %d check-sync, unregistered %v", p.user, syncs, left)
			}
		}
		bs, err := bindingsOf(ctx, n)
		for _, u := range []string{"bob", "carol"} {
			if _, here := bs[u]; err == nil && here {
				err = fmt.Errorf("%s's binding is still listed", u)
			}
		}
		return err
	})
	if err := checkNoErrors([]*node{n}); err != nil {
		t.Error(err)
	}
}

// sip.failback reject: once the mode is normal again, the re-REGISTER of
// a phone that registered during the outage is answered 503 with
// Retry-After (the phone stops and goes back to its primary server) and
// its binding is left to expire; a phone in a call is still accepted, and
// shows as registered here after the recovery.
func TestFailbackReject(t *testing.T) {
	n, link := failbackNode(t, "reject")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The cloud is up: erin (registered to both) is accepted, mode unchanged.
	erin := newFailbackPhone(t, n, "erin", false)
	erin.mustRegister(ctx, 600, 60)
	checkModeStays(t, n, "normal", time.Second)

	link.cut()
	waitAllMode(t, []*node{n}, "survivability", 20*time.Second)
	alice := newFailbackPhone(t, n, "alice", false)
	bob := newFailbackPhone(t, n, "bob", false)
	carol := newFailbackPhone(t, n, "carol", false)
	for _, p := range []*failbackPhone{alice, bob, carol} {
		p.mustRegister(ctx, 600, 120)
		p.mustRegister(ctx, 600, 120) // refreshes are fine during the outage
	}
	waitListed(t, n, "alice", "bob", "carol")
	call := bob.call(ctx, "1003")

	link.heal()
	waitAllMode(t, []*node{n}, "normal", 60*time.Second)

	res, err := alice.register(ctx, 600)
	if err != nil || res.StatusCode != 503 {
		t.Fatalf("alice's refresh after recovery: %v %v, want 503\n%s", res, err, n.log())
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "30" {
		t.Errorf("Retry-After %v, want 30", h)
	}
	// bob, in a call, is still accepted, with normal mode's interval.
	bob.mustRegister(ctx, 600, 60)
	// The registrar writes bindings to the store within about 20 ms.
	eventually(t, 5*time.Second, "bob shown as registered here after the recovery", func(ctx context.Context) error {
		bs, err := bindingsOf(ctx, n)
		switch {
		case err != nil:
			return err
		case !bs["bob"].AfterRecovery:
			return fmt.Errorf("bob: %+v", bs["bob"])
		}
		return nil
	})
	bs, err := bindingsOf(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if b, here := bs["alice"]; !here || b.AfterRecovery {
		t.Errorf("alice: listed %v, after_recovery %v; want her outage binding left to expire", here, b.AfterRecovery)
	}

	// The call ends: their refreshes are refused too.
	if err := call.Bye(ctx); err != nil {
		t.Fatalf("bob hangs up: %v", err)
	}
	eventually(t, 10*time.Second, "the call ended", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.ActiveCalls != 0 {
			err = fmt.Errorf("active_calls %d", st.ActiveCalls)
		}
		return err
	})
	for _, p := range []*failbackPhone{bob, carol} {
		if res, err := p.register(ctx, 600); err != nil || res.StatusCode != 503 {
			t.Errorf("%s's refresh after the call: %v %v, want 503", p.user, res, err)
		}
	}
	if err := checkNoErrors([]*node{n}); err != nil {
		t.Error(err)
	}
}
