package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// deskPhone is a registered phone written with sipgo that answers calls
// and every re-INVITE with its rtpPhone's port, in the direction that
// answers the offer (RFC 3264 §6.1), and points its rtpPhone where the
// offer says, as a real phone does.
type deskPhone struct {
	user    string
	media   *rtpPhone
	version atomic.Int32                    // of the o= line, one more each description
	calls   chan *sipgo.DialogServerSession // calls answered
	reinv   chan string                     // the direction of each re-INVITE's offer
}

func newDeskPhone(t *testing.T, n *node, user string, media *rtpPhone) *deskPhone {
	t.Helper()
	port := freeUDPPort(t)
	reg := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
		"-inf", writeUsersCSV(t, [][3]string{{user, "pw-" + user, "acme.example"}}), "-p", fmt.Sprint(port))
	if reg.exit != 0 {
		t.Fatalf("register %s: exit %d\n%s", user, reg.exit, reg.stdout)
	}
	conn, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(user))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	client, _ := sipgo.NewClient(ua, sipgo.WithClientAddr(conn.LocalAddr().String()))
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: port}}
	dialogs := sipgo.NewDialogServerCache(client, contact)
	p := &deskPhone{user: user, media: media, calls: make(chan *sipgo.DialogServerSession, 4), reinv: make(chan string, 16)}
	answer := func(offer []byte) []byte {
		dir := answerDirection(directionOf(offer))
		media.pointAt(offer, dir)
		return p.sdp(dir)
	}
	ctype := sip.NewHeader("Content-Type", "application/sdp")
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if to := req.To(); to != nil && to.Params.Has("tag") {
			p.reinv <- directionOf(req.Body())
			res := sip.NewResponseFromRequest(req, 200, "OK", answer(req.Body()))
			res.AppendHeader(&contact)
			res.AppendHeader(ctype)
			_ = tx.Respond(res)
			return
		}
		ds, err := dialogs.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			return
		}
		if err := ds.Respond(200, "OK", answer(req.Body()), ctype); err == nil {
			p.calls <- ds
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { ua.Close(); conn.Close() }) // the UA does not close conn
	return p
}

// sdp is the phone's next description, in direction dir.
func (p *deskPhone) sdp(dir string) []byte {
	return fmt.Appendf(nil, "v=0\r\no=%s 7 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %s RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=%s\r\n",
		p.user, p.version.Add(1), p.media.port(), dir)
}

// reinvite re-INVITEs a call the phone answered with its description in
// direction dir (a hold: sendonly; a resume: sendrecv) and points its
// media where the answer says; it returns the answer.
func (p *deskPhone) reinvite(ctx context.Context, t *testing.T, ds *sipgo.DialogServerSession, dir string) []byte {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, ds.InviteRequest.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp(dir))
	res, err := ds.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%s re-INVITEs %s: %v %v", p.user, dir, res, err)
	}
	if err := ds.WriteRequest(sip.NewRequest(sip.ACK, ds.InviteRequest.Contact().Address)); err != nil {
		t.Fatal(err)
	}
	p.media.pointAt(res.Body(), answerDirection(directionOf(res.Body())))
	return res.Body()
}

// answerDirection is the direction that answers an offer's (RFC 3264
// §6.1); given an answer's, it is the offerer's own.
func answerDirection(offer string) string {
	switch offer {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	}
	return offer
}

// pointAt points the phone's media where sdp says, when dir (the phone's
// own direction) lets it send; else nowhere.
func (ph *rtpPhone) pointAt(sdp []byte, dir string) {
	if addr, ok := sdpAudioAddr(sdp); ok && dir != "inactive" && dir != "recvonly" {
		ph.setPeer(addr)
	} else {
		ph.setPeer(netip.AddrPort{})
	}
}

// sdpAudioAddr is where a description says it receives audio.
func sdpAudioAddr(sdp []byte) (netip.AddrPort, bool) {
	var ip, port string
	for _, l := range strings.Split(string(sdp), "\n") {
		l = strings.TrimSpace(l)
		if f := strings.Fields(l); strings.HasPrefix(l, "c=IN IP4 ") && len(f) == 3 {
			ip = f[2]
		}
		if f := strings.Fields(l); strings.HasPrefix(l, "m=audio ") && len(f) > 1 {
			port = f[1]
		}
	}
	a, err := netip.ParseAddrPort(ip + ":" + port)
	return a, err == nil && a.Port() != 0
}

func directionOf(sdp []byte) string {
	for _, l := range strings.Split(string(sdp), "\n") {
		switch l = strings.TrimSpace(l); l {
		case "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv":
			return l[2:]
		}
	}
	return "sendrecv"
}

// reinvite re-INVITEs the call with the phone's description in direction
// dir and points its media where the answer says (nowhere when the
// answer is inactive); it returns the answer.
func (p *goPhone) reinvite(ctx context.Context, t *testing.T, s *sipgo.DialogClientSession, version int, dir string) []byte {
	t.Helper()
	req := sip.NewRequest(sip.INVITE, s.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp(version, dir))
	res, err := s.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE %s: %v %v", dir, res, err)
	}
	if err := s.WriteRequest(sip.NewRequest(sip.ACK, s.InviteResponse.Contact().Address)); err != nil {
		t.Fatal(err)
	}
	if p.media != nil {
		p.media.pointAt(res.Body(), answerDirection(directionOf(res.Body())))
	}
	return res.Body()
}

// waitMusic waits until the phone hears music: a second of loud audio,
// paced at 20 ms, that is not the tone at freq (the party that held).
func (ph *rtpPhone) waitMusic(t *testing.T, n *node, freq float64) {
	t.Helper()
	eventually(t, 5*time.Second, ph.name+" hears music", func(context.Context) error {
		x := ph.window(max(0, ph.received()-toneWindow), toneWindow, time.Now())
		if x == nil {
			return fmt.Errorf("nothing heard yet")
		}
		if a := amplitude(x, freq); a > toneAmp/20 {
			return fmt.Errorf("still the %v Hz tone (%.0f)", freq, a)
		}
		return nil
	})
	from := ph.received()
	start := time.Now()
	rms := ph.musicOf(t, from)
	took := time.Since(start)
	if rms < 1000 {
		t.Fatalf("%s hears RMS %.0f on hold, want music (over 1000)\n%s", ph.name, rms, n.log())
	}
	if took > 1500*time.Millisecond {
		t.Errorf("a second of music took %v to reach %s: not paced at 20 ms", took, ph.name)
	}
}

// musicOf measures the RMS of a second of what ph hears from sample from
// on.
func (ph *rtpPhone) musicOf(t *testing.T, from int) float64 {
	t.Helper()
	x := ph.window(from, 8000, time.Now().Add(5*time.Second))
	if x == nil {
		t.Fatalf("%s heard %d samples, want a second more from %d", ph.name, ph.received(), from)
	}
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(x)))
}

// setPeer points the phone's media at addr (zero: it sends nothing until
// RTP arrives).
func (ph *rtpPhone) setPeer(addr netip.AddrPort) {
	ph.mu.Lock()
	ph.peer = addr
	ph.mu.Unlock()
}

func (ph *rtpPhone) addr() netip.AddrPort { return ph.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// sourcesExcept counts the packets received from anywhere but not.
func (ph *rtpPhone) sourcesExcept(not netip.AddrPort) int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	n := 0
	for src, c := range ph.sources {
		if src != not {
			n += c
		}
	}
	return n
}

// A held call receives music: alice calls bob (their media flows
// directly), puts him on hold; bob is re-INVITEd toward the node and
// hears music (loud, not alice's tone, packets every 20 ms from the
// node); alice resumes and bob hears alice again, the music stopped.
func TestMusicOnHoldInternal(t *testing.T) {
	needSIPp(t)
	n := startNode(t, "moh", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	aliceRTP := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 1000)
	bobRTP := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 1400)
	bob := newDeskPhone(t, n, "bob", bobRTP)
	alice := newGoPhone(t, n, "alice", "pw-alice")
	alice.media = aliceRTP
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	s := alice.call(ctx, t, "1002")
	if addr, ok := sdpAudioAddr(s.InviteResponse.Body()); ok {
		aliceRTP.setPeer(addr)
	}
	checkHearing(t, map[*rtpPhone][2][]float64{aliceRTP: {{1400}, nil}, bobRTP: {{1000}, nil}})

	alice.reinvite(ctx, t, s, 2, "sendonly")
	if dir := <-bob.reinv; dir != "sendonly" {
		t.Fatalf("bob was re-INVITEd %s, want sendonly (the node sends him music)", dir)
	}
	// Music: a second of loud audio that is not alice's tone, from a
	// source that is neither alice nor bob.
	bobRTP.waitMusic(t, n, 1000)
	music := bobRTP.sourcesExcept(aliceRTP.addr())
	if music == 0 {
		t.Fatal("no packet from a source other than alice")
	}

	alice.reinvite(ctx, t, s, 3, "sendrecv")
	if dir := <-bob.reinv; dir != "sendrecv" {
		t.Fatalf("bob was re-INVITEd %s on resume, want sendrecv", dir)
	}
	checkHearing(t, map[*rtpPhone][2][]float64{bobRTP: {{1000}, {1400}}, aliceRTP: {{1400}, nil}})
	stopped := bobRTP.sourcesExcept(aliceRTP.addr())
	eventually(t, 3*time.Second, "the music stops", func(context.Context) error {
		now := bobRTP.sourcesExcept(aliceRTP.addr())
		if now != stopped {
			stopped = now
			return fmt.Errorf("still music packets (%d)", now)
		}
		return nil
	})
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

// Music on hold on a trunk call: an SBC calls bob's number, bob's desk
// phone answers and holds; the SBC (anchored in the relay) hears music in
// place of bob's tone; bob resumes and the SBC hears bob's tone alone
// again, the music stopped.
func TestMusicOnHoldTrunk(t *testing.T) {
	needSIPp(t)
	n := startNode(t, "moh-trunk", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	const sbcHz, bobHz = 1000, 1400
	sbcRTP := newRTPPhone(t, "the SBC", sbcPrimary, g711.PCMU, sbcHz)
	pstn := newGoPhoneAt(t, n, "+14155550000", "", fmt.Sprintf("%s:%d", sbcPrimary, sbcSIPPort), true)
	pstn.media = sbcRTP
	bobRTP := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, bobHz)
	bob := newDeskPhone(t, n, "bob", bobRTP)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	waitTrunk(t, n, "sbc-hq-1", "up") // a call from a trunk the node does not know yet is a phone's
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(n.log())
		}
	})
	call := pstn.call(ctx, t, "+16505550102")
	sbcRTP.pointAt(call.InviteResponse.Body(), "sendrecv")
	var ds *sipgo.DialogServerSession
	select {
	case ds = <-bob.calls:
	case <-ctx.Done():
		t.Fatalf("bob's phone was not rung\n%s", n.log())
	}
	checkHearing(t, map[*rtpPhone][2][]float64{sbcRTP: {{bobHz}, nil}, bobRTP: {{sbcHz}, nil}})

	bob.reinvite(ctx, t, ds, "sendonly")
	sbcRTP.waitMusic(t, n, bobHz)

	bob.reinvite(ctx, t, ds, "sendrecv")
	checkHearing(t, map[*rtpPhone][2][]float64{sbcRTP: {{bobHz}, nil}, bobRTP: {{sbcHz}, nil}})
	// Nothing but bob's tone: what is left once it is taken out is
	// quantization noise, where music interleaved would be loud.
	x := sbcRTP.window(sbcRTP.received(), 8000, time.Now().Add(5*time.Second))
	if x == nil {
		t.Fatal("the SBC stopped hearing anything")
	}
	r := residual(x, bobHz)
	if r > 500 {
		t.Errorf("after the resume the SBC hears %.0f RMS besides bob's tone: the music did not stop", r)
	}
	t.Logf("after the resume: %.0f RMS besides bob's tone", r)
	if err := call.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

// residual is the RMS of x once its freq component is taken out.
func residual(x []int16, freq float64) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	a := amplitude(x, freq)
	return math.Sqrt(max(0, e/float64(len(x))-a*a/2))
}
