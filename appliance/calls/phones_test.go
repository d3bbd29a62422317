package calls

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

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
