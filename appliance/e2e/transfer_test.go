package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// writeTransferCSV writes caller;[authentication ...];domain;dialled;transfer-to rows.
func writeTransferCSV(t testing.TB, caller, password, dialled, to string) string {
	t.Helper()
	return writeFile(t, "transfer.csv", fmt.Appendf(nil, "SEQUENTIAL\n%s;[authentication username=%s password=%s];acme.example;%s;%s\n",
		caller, caller, password, dialled, to))
}

// Blind transfer: alice calls bob and REFERs him to carol (1003). Outpost
// rings carol as a call from bob, re-INVITEs bob with carol's session,
// tells alice with NOTIFYs, and bob and carol talk until carol hangs up.
func TestBlindTransfer(t *testing.T) {
	n := startNode(t, "xfer", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-transferee.xml"))
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", scenarioPath(t, "uas-hangup.xml"))
	callers := writeTransferCSV(t, "alice", "pw-alice", "1002", "1003")
	if res := runSIPp(t, "uac-blind-transfer.xml", n.sipUDP, 1, 30*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("alice's SIPp exited %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	if code := carolDone(); code != 0 {
		t.Fatalf("carol's SIPp exited %d\n%s", code, n.log())
	}
	if code := bobDone(); code != 0 {
		t.Fatalf("bob's SIPp exited %d (was he left on hold?)\n%s", code, n.log())
	}
	eventually(t, 10*time.Second, "transfer journalled", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		var first, second bool
		for _, r := range recs {
			first = first || r.Caller == "alice" && r.Callee == "bob" && r.Disposition == "transferred"
			second = second || r.Caller == "bob" && r.Callee == "carol" && r.Dialled == "1003" &&
				r.Disposition == "answered" && !r.Answer.IsZero() &&
				r.CallID != "" && !strings.Contains(r.CallID, "__") // a SIP Call-ID, not a dialog ID
		}
		if !first || !second {
			return fmt.Errorf("want alice->bob transferred and bob->carol answered, have %+v", recs)
		}
		return nil
	})
	if st, err := n.status(context.Background()); err != nil || st.ActiveCalls != 0 {
		t.Errorf("after the calls: %d active calls (%v)", st.ActiveCalls, err)
	}
}

// goPhone is a softphone written with sipgo, for what SIPp cannot script:
// two calls at once. It sends from and listens on one UDP port.
type goPhone struct {
	user, password string
	node           *node
	contact        sip.ContactHeader
	dialogs        *sipgo.DialogClientCache
	client         *sipgo.Client
	notifies       chan string // the body of each NOTIFY received (a sipfrag, a message summary)
	// media is where the phone's SDP says it receives RTP (an rtpPhone's
	// socket); nil: a port nobody listens on.
	media *rtpPhone
}

func newGoPhone(t *testing.T, n *node, user, password string) *goPhone {
	t.Helper()
	return newGoPhoneAt(t, n, user, password, "127.0.0.1:0", false)
}

// newGoPhoneAt is a goPhone on bind; as an SBC it also answers OPTIONS
// and re-INVITEs (in the direction that answers the offer, pointing its
// media where the offer says).
func newGoPhoneAt(t *testing.T, n *node, user, password, bind string, asSBC bool) *goPhone {
	t.Helper()
	conn, err := net.ListenPacket("udp", bind)
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	addr := conn.LocalAddr().String()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(user))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	opts := []sipgo.ClientOption{sipgo.WithClientAddr(addr)}
	if asSBC { // an SBC is known by its source address: send from the port it listens on
		opts = append(opts, sipgo.WithClientConnectionAddr(addr))
	}
	client, err := sipgo.NewClient(ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &goPhone{user: user, password: password, node: n, notifies: make(chan string, 16),
		contact: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: port}}}
	p.dialogs = sipgo.NewDialogClientCache(client, p.contact)
	p.client = client
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		p.notifies <- string(req.Body())
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	if asSBC {
		srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
		version := 10
		srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			if to := req.To(); to == nil || !to.Params.Has("tag") {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 603, "Decline", nil))
				return
			}
			dir := answerDirection(directionOf(req.Body()))
			if p.media != nil {
				p.media.pointAt(req.Body(), dir)
			}
			version++
			res := sip.NewResponseFromRequest(req, 200, "OK", p.sdp(version, dir))
			res.AppendHeader(&p.contact)
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			_ = tx.Respond(res)
		})
		srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	}
	go func() { _ = srv.ServeUDP(conn) }()
	// Closing the UA does not close the socket ServeUDP was given: an SBC
	// left listening on its fixed address would take the next trunk
	// test's SBC's place.
	t.Cleanup(func() { ua.Close(); conn.Close() })
	return p
}

// sdp is a minimal audio offer from the phone, with a direction attribute.
func (p *goPhone) sdp(version int, direction string) []byte {
	port := "40000"
	if p.media != nil {
		port = p.media.port()
	}
	return fmt.Appendf(nil, "v=0\r\no=%s 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %s RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=%s\r\n",
		p.user, version, port, direction)
}

// call dials through the phone's node, answering the 407 with its
// credentials, and acknowledges the answer; headers are added to the
// INVITE.
func (p *goPhone) call(ctx context.Context, t *testing.T, dial string, headers ...sip.Header) *sipgo.DialogClientSession {
	t.Helper()
	s, err := p.dial(ctx, t, dial, headers...)
	if err != nil {
		t.Fatalf("%s calls %s: %v", p.user, dial, err)
	}
	if err := s.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// dial sends the INVITE and waits for its final response.
func (p *goPhone) dial(ctx context.Context, t *testing.T, dial string, headers ...sip.Header) (*sipgo.DialogClientSession, error) {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: dial, Host: "acme.example"})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	req.SetDestination(p.node.sipUDP)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp(1, "sendrecv"))
	s, err := p.dialogs.WriteInvite(ctx, req)
	if err != nil {
		t.Fatalf("%s calls %s: %v", p.user, dial, err)
	}
	return s, s.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.user, Password: p.password})
}

// hold re-INVITEs the call with a=sendonly.
func (p *goPhone) hold(ctx context.Context, t *testing.T, s *sipgo.DialogClientSession) {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, s.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp(2, "sendonly"))
	res, err := s.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("hold: %v %v", res, err)
	}
	ack := sip.NewRequest(sip.ACK, s.InviteResponse.Contact().Address)
	if err := s.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
}

// Attended transfer: alice calls bob and puts him on hold, calls carol,
// then REFERs bob to carol with Replaces naming her call with carol.
// Outpost joins bob and carol (bob offers afresh, off hold), hangs up
// alice's call with carol, and tells alice it worked.
func TestAttendedTransfer(t *testing.T) {
	n := startNode(t, "axfer", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-attended-transferee.xml"))
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", scenarioPath(t, "uas-attended-target.xml"))
	alice := newGoPhone(t, n, "alice", "pw-alice")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	toBob := alice.call(ctx, t, "1002")
	alice.hold(ctx, t, toBob)
	toCarol := alice.call(ctx, t, "1003")

	replaces := fmt.Sprintf("%s;to-tag=%s;from-tag=%s", toCarol.InviteRequest.CallID().Value(),
		tag(toCarol.InviteResponse.To()), tag(toCarol.InviteRequest.From()))
	refer := sip.NewRequest(sip.REFER, toBob.InviteResponse.Contact().Address)
	refer.AppendHeader(sip.NewHeader("Refer-To", "<sip:1003@acme.example?Replaces="+url.QueryEscape(replaces)+">"))
	refer.AppendHeader(sip.NewHeader("Referred-By", "<sip:alice@acme.example>"))
	res, err := toBob.Do(ctx, refer)
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("REFER: %v %v", res, err)
	}
	for final := false; !final; {
		select {
		case frag := <-alice.notifies:
			if strings.HasPrefix(frag, "SIP/2.0 2") {
				final = true
			} else if !strings.HasPrefix(frag, "SIP/2.0 1") {
				t.Fatalf("transfer failed: %q\n%s", frag, n.log())
			}
		case <-ctx.Done():
			t.Fatalf("no final NOTIFY\n%s", n.log())
		}
	}
	// Outpost hangs up alice's call with carol; alice hangs up the other.
	eventually(t, 10*time.Second, "alice's call with carol replaced", func(context.Context) error {
		if toCarol.LoadState() != sip.DialogStateEnded {
			return fmt.Errorf("state %v", toCarol.LoadState())
		}
		return nil
	})
	if err := toBob.Bye(ctx); err != nil {
		t.Errorf("alice hangs up: %v", err)
	}
	if code := carolDone(); code != 0 {
		t.Fatalf("carol's SIPp exited %d\n%s", code, n.log())
	}
	if code := bobDone(); code != 0 {
		t.Fatalf("bob's SIPp exited %d (offered on hold?)\n%s", code, n.log())
	}
	eventually(t, 10*time.Second, "transfer journalled", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		want := map[string]bool{"alice>bob transferred": false, "alice>carol transferred": false, "bob>carol answered": false}
		for _, r := range recs {
			k := r.Caller + ">" + r.Callee + " " + r.Disposition
			if _, ok := want[k]; ok {
				want[k] = true
			}
		}
		for k, ok := range want {
			if !ok {
				return fmt.Errorf("no %s record in %+v", k, recs)
			}
		}
		return nil
	})
	if st, err := n.status(context.Background()); err != nil || st.ActiveCalls != 0 {
		t.Errorf("after the calls: %d active calls (%v)", st.ActiveCalls, err)
	}
}

func tag(h interface{ Value() string }) string {
	_, v, _ := strings.Cut(h.Value(), ";tag=")
	v, _, _ = strings.Cut(v, ";")
	return v
}
