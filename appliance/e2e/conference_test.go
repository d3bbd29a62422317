package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/appliance/media/dtmf"
	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Conferences end to end (issue 8): invitations through the REST API
// while SIPp agents do the signalling. SIPp cannot decode RTP, so the SDP
// each agent sends names a UDP socket of the test's (an rtpPhone) that
// sends the party's tone, hears the mix and its RFC 4733 events, and
// presses keys. The scenarios are templates: MEDIA_PORT and the like are
// filled in per run (sippTemplate).

const (
	// toneAmp is the amplitude of every party's tone; a party hears another
	// at over half of it, and itself at under a twentieth.
	toneAmp = 6000
	// toneWindow is what one Goertzel measurement covers: 200 ms. Every
	// frequency used (the parties' and the bridge's join and leave tones,
	// 660 and 990 Hz) is a multiple of 5 Hz, so each reads as its
	// amplitude and the others as nothing.
	toneWindow = 1600
	// frameLen is the samples (and G.711 bytes) of a 20 ms frame.
	frameLen = 160
	// eventPT is the telephone-event payload type every agent offers.
	eventPT = 101
	// calloutCallerID is the snapshot's dedicated US caller ID for
	// call-outs.
	calloutCallerID = "+16465550188"
)

// needSIPp skips a test on a machine without SIPp.
func needSIPp(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skipf("sipp is not installed (make deps installs it): %v", err)
	}
}

// sippTemplate writes testdata/sipp/name with each key of vars replaced
// by its value and returns the file's path.
func sippTemplate(t testing.TB, name string, vars map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		if !bytes.Contains(data, []byte(k)) {
			t.Fatalf("%s has no %s to fill in", name, k)
		}
		data = bytes.ReplaceAll(data, []byte(k), []byte(v))
	}
	return writeFile(t, name, data)
}

// rtpPhone is the media of a SIPp agent: a UDP socket whose address the
// agent's SDP names. Every 20 ms it sends a G.711 frame of its tone, or a
// packet of a key press, to whoever last sent it RTP: the bridge's
// participant socket and the relay are connected to the address in the
// SDP, so the phone answers from that same socket. It keeps the audio it
// hears and the keys it receives.
type rtpPhone struct {
	t     testing.TB
	name  string
	conn  *net.UDPConn
	codec g711.Codec
	freq  float64

	mu       sync.Mutex
	peer     netip.AddrPort // the last source of RTP: where the phone sends
	audio    []int16        // decoded, in the order it arrived
	others   int            // packets of neither the codec nor telephone-event
	rx       *dtmf.Receiver
	keys     []byte    // the keys received, in order
	firstKey time.Time // when the first telephone-event packet arrived
	press    []dtmf.Packet
	sources  map[netip.AddrPort]int // packets received, by source

	done chan struct{}
	wg   sync.WaitGroup
}

// newRTPPhone opens a phone's socket on ip and starts it.
func newRTPPhone(t testing.TB, name, ip string, codec g711.Codec, freq float64) *rtpPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	ph := &rtpPhone{t: t, name: name, conn: conn, codec: codec, freq: freq, done: make(chan struct{}),
		rx: dtmf.NewReceiver(dtmf.ReceiverConfig{PayloadType: eventPT})}
	ph.wg.Add(2)
	go ph.receive()
	go ph.send()
	t.Cleanup(func() {
		close(ph.done)
		conn.Close()
		ph.wg.Wait()
	})
	return ph
}

func (ph *rtpPhone) port() string {
	return strconv.Itoa(ph.conn.LocalAddr().(*net.UDPAddr).Port)
}

func (ph *rtpPhone) receive() {
	defer ph.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, src, err := ph.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(slices.Clone(buf[:n])) != nil {
			continue
		}
		now := time.Now()
		ph.mu.Lock()
		ph.peer = src
		if ph.sources == nil {
			ph.sources = map[netip.AddrPort]int{}
		}
		ph.sources[src]++
		switch {
		case p.PayloadType == ph.codec.PayloadType() && len(p.Payload) == frameLen:
			var pcm [frameLen]int16
			ph.codec.Decode(pcm[:], p.Payload)
			ph.audio = append(ph.audio, pcm[:]...)
		case p.PayloadType == eventPT:
			if ph.firstKey.IsZero() {
				ph.firstKey = now
			}
		default:
			ph.others++
		}
		for _, d := range ph.rx.Feed(nil, &p, now) {
			ph.keys = append(ph.keys, d.Key)
		}
		ph.mu.Unlock()
	}
}

// send sends frame n at the start plus n times 20 ms, once the phone has a
// peer: a packet of a key press being sent, else the tone.
func (ph *rtpPhone) send() {
	defer ph.wg.Done()
	const frame = 20 * time.Millisecond
	ssrc := 0x0C0F0000 | uint32(ph.conn.LocalAddr().(*net.UDPAddr).Port)
	var seq uint16 = 4000
	var keyTS uint32
	pkt := make([]byte, 12+frameLen)
	var pcm [frameLen]int16
	start := time.Now()
	for n := 0; ; n++ {
		select {
		case <-ph.done:
			return
		case <-time.After(time.Until(start.Add(time.Duration(n) * frame))):
		}
		ts := uint32(n) * frameLen
		ph.mu.Lock()
		peer := ph.peer
		var key *dtmf.Packet
		if len(ph.press) > 0 && peer.IsValid() {
			key = &ph.press[0]
			ph.press = ph.press[1:]
		}
		ph.mu.Unlock()
		if !peer.IsValid() {
			continue
		}
		h := rtp.Header{Version: 2, PayloadType: ph.codec.PayloadType(), SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
		b := pkt
		if key != nil {
			if key.Marker {
				keyTS = ts
			}
			h.PayloadType, h.Marker, h.Timestamp = eventPT, key.Marker, keyTS
			b = key.Event.AppendTo(pkt[:12])
		} else {
			for i := range pcm {
				s := float64(n*frameLen + i)
				pcm[i] = int16(toneAmp * math.Sin(2*math.Pi*ph.freq*s/g711.SampleRate))
			}
			ph.codec.Encode(pkt[12:], pcm[:])
		}
		if _, err := h.MarshalTo(b[:12]); err != nil {
			panic(err)
		}
		seq++
		_, _ = ph.conn.WriteToUDPAddrPort(b, peer)
	}
}

// pressKey sends key as RFC 4733 events in place of the tone.
func (ph *rtpPhone) pressKey(key byte) {
	ph.t.Helper()
	pkts, err := dtmf.Sender{Interval: 20 * time.Millisecond}.Packets(key)
	if err != nil {
		ph.t.Fatal(err)
	}
	ph.mu.Lock()
	ph.press = append(ph.press, pkts...)
	ph.mu.Unlock()
}

// received is how many samples the phone has heard.
func (ph *rtpPhone) received() int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return len(ph.audio)
}

// window is the audio heard from sample from on, n samples, waiting for
// them until deadline (nil then).
func (ph *rtpPhone) window(from, n int, deadline time.Time) []int16 {
	for {
		ph.mu.Lock()
		if len(ph.audio) >= from+n {
			x := slices.Clone(ph.audio[from : from+n])
			ph.mu.Unlock()
			return x
		}
		ph.mu.Unlock()
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSound waits until the phone hears a frame louder than silence.
func (ph *rtpPhone) waitSound(within time.Duration) error {
	deadline := time.Now().Add(within)
	for from := 0; ; {
		x := ph.window(from, frameLen, deadline)
		if x == nil {
			return fmt.Errorf("%s heard no sound within %s (%d samples of silence)", ph.name, within, from)
		}
		from += frameLen
		if slices.ContainsFunc(x, func(v int16) bool { return v > 1000 || v < -1000 }) {
			return nil
		}
	}
}

// receivedKeys is the keys the phone received, and when the first
// telephone-event packet arrived.
func (ph *rtpPhone) receivedKeys() (string, time.Time) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return string(ph.keys), ph.firstKey
}

// amplitude is the amplitude of the freq Hz component of x (Goertzel).
// With len(x)*freq a multiple of 8000, a tone there reads as its
// amplitude and tones at other such frequencies read as 0.
func amplitude(x []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / g711.SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+coeff*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(max(power, 0)) / float64(len(x))
}

// levels describes the amplitude of each of freqs in x.
func levels(x []int16, freqs ...float64) string {
	var parts []string
	for _, f := range freqs {
		parts = append(parts, fmt.Sprintf("%v Hz: %.0f", f, amplitude(x, f)))
	}
	return strings.Join(parts, ", ")
}

// hears checks what ph hears: within 10 s, a 200 ms window holds each of
// want at over half toneAmp; then each of the next five windows (a
// second) does, and holds none of not above a twentieth of it. It
// returns the levels of the last window.
func (ph *rtpPhone) hears(want, not []float64) (string, error) {
	all := append(slices.Clone(want), not...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pos := ph.received()
		if pos >= toneWindow {
			x := ph.window(pos-toneWindow, toneWindow, deadline)
			if !slices.ContainsFunc(want, func(f float64) bool { return amplitude(x, f) < toneAmp/2 }) {
				break
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("%s never heard %v Hz at over %d within 10 s; the last 200 ms: %s",
					ph.name, want, toneAmp/2, levels(x, all...))
			}
		} else if time.Now().After(deadline) {
			return "", fmt.Errorf("%s heard %d samples within 10 s, want %d at least", ph.name, pos, toneWindow)
		}
		time.Sleep(100 * time.Millisecond)
	}
	from := ph.received()
	var errs []error
	var x []int16
	for i := range 5 {
		x = ph.window(from, toneWindow, time.Now().Add(3*time.Second))
		if x == nil {
			return "", fmt.Errorf("%s: the audio stopped after %d samples", ph.name, ph.received())
		}
		from += toneWindow
		for _, f := range want {
			if a := amplitude(x, f); a < toneAmp/2 {
				errs = append(errs, fmt.Errorf("%s, window %d: hears %v Hz at %.0f, want over %d (%s)",
					ph.name, i, f, a, toneAmp/2, levels(x, all...)))
			}
		}
		for _, f := range not {
			if a := amplitude(x, f); a > toneAmp/20 {
				errs = append(errs, fmt.Errorf("%s, window %d: hears %v Hz at %.0f, want under %d (%s)",
					ph.name, i, f, a, toneAmp/20, levels(x, all...)))
			}
		}
	}
	return fmt.Sprintf("%s hears %s", ph.name, levels(x, all...)), errors.Join(errs...)
}

// checkHearing runs hears for several phones at once.
func checkHearing(t *testing.T, checks map[*rtpPhone][2][]float64) {
	t.Helper()
	var wg sync.WaitGroup
	type result struct {
		levels string
		err    error
	}
	results := make(chan result, len(checks))
	for ph, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			levels, err := ph.hears(c[0], c[1])
			results <- result{levels, err}
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
		} else {
			t.Log(r.levels)
		}
	}
}

// apiCall is a call of GET /api/v1/calls, as much of it as the tests read.
type apiCall struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Owner        string `json:"owner"`
	Slot         int    `json:"slot"`      // a parked call's
	ParkedBy     string `json:"parked_by"` // a parked call's
	Participants []struct {
		ID     string `json:"id"`
		User   string `json:"user"`
		Name   string `json:"name"`
		Number string `json:"number"`
	} `json:"participants"`
	Invitations []apiInvitation `json:"invitations"`
}

// apiInvitation is an invitation as the API shows it.
type apiInvitation struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	User   string `json:"user"`
	Name   string `json:"name"`
	Number string `json:"number"`
	DTMF   string `json:"dtmf"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Joined string `json:"joined"`
}

// users is the user IDs of the call's participants, in order; a
// participant from outside shows as its name.
func (c apiCall) users() []string {
	var out []string
	for _, p := range c.Participants {
		if p.User != "" {
			out = append(out, p.User)
		} else {
			out = append(out, p.Name+" "+p.Number)
		}
	}
	return out
}

// invitation finds one of the call's invitations.
func (c apiCall) invitation(id string) (apiInvitation, bool) {
	for _, inv := range c.Invitations {
		if inv.ID == id {
			return inv, true
		}
	}
	return apiInvitation{}, false
}

// liveCalls reads GET /api/v1/calls.
func liveCalls(ctx context.Context, n *node) ([]apiCall, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.httpAddr+"/api/v1/calls", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/calls: %s", res.Status)
	}
	var body struct {
		Calls []apiCall `json:"calls"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /api/v1/calls: %w", err)
	}
	return body.Calls, nil
}

// waitCall polls GET /api/v1/calls until a call passes check (id "": any
// call) and returns it.
func waitCall(t *testing.T, n *node, within time.Duration, what, id string, check func(apiCall) error) apiCall {
	t.Helper()
	var found apiCall
	eventually(t, within, what, func(ctx context.Context) error {
		cs, err := liveCalls(ctx, n)
		if err != nil {
			return err
		}
		var errs []error
		for _, c := range cs {
			if id != "" && c.ID != id {
				continue
			}
			if err := check(c); err != nil {
				errs = append(errs, fmt.Errorf("call %s: %w", c.ID, err))
				continue
			}
			found = c
			return nil
		}
		if len(errs) == 0 {
			return fmt.Errorf("no such call among %d: %+v", len(cs), cs)
		}
		return errors.Join(errs...)
	})
	return found
}

// invite POSTs an invitation to call id and returns the status and body.
func invite(t *testing.T, n *node, id, body string) (int, []byte) {
	t.Helper()
	return post(t, "http://"+n.httpAddr+"/api/v1/calls/"+id+"/invitations", testToken, []byte(body))
}

// invited POSTs an invitation that must be created (201) and returns it.
func invited(t *testing.T, n *node, id, body string) apiInvitation {
	t.Helper()
	code, data := invite(t, n, id, body)
	if code != http.StatusCreated {
		t.Fatalf("POST invitation %s: %d %s, want 201\n%s", body, code, data, conferenceLog(n))
	}
	var inv apiInvitation
	if err := json.Unmarshal(data, &inv); err != nil {
		t.Fatalf("POST invitation: %v: %s", err, data)
	}
	if inv.ID == "" || inv.State != "pending" {
		t.Fatalf("POST invitation %s: %s, want a pending invitation with an id", body, data)
	}
	return inv
}

// conferenceLog is the lines of the node's log about invitations and
// conferences.
func conferenceLog(n *node) string {
	var out []string
	for _, line := range strings.Split(n.log(), "\n") {
		if strings.Contains(line, "invitation") || strings.Contains(line, "conference") || strings.Contains(line, "call-out") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// twoPartyCall waits for alice's call to bob to show, connected, owned by
// alice, and returns its id.
func twoPartyCall(t *testing.T, n *node) string {
	t.Helper()
	c := waitCall(t, n, 15*time.Second, "alice's call to bob", "", func(c apiCall) error {
		if c.State != "connected" || c.Owner != "u-alice" || !slices.Equal(c.users(), []string{"u-alice", "u-bob"}) {
			return fmt.Errorf("state %q, owner %q, participants %v; want connected, u-alice, [u-alice u-bob]", c.State, c.Owner, c.users())
		}
		return nil
	})
	if c.ID == "" {
		t.Fatalf("alice's call has no id: %+v", c)
	}
	return c.ID
}

// TestConferenceThreeParties: alice calls bob; an invitation of the admin
// (acting as alice, the owner) brings carol in. A second invitation of
// carol while she rings is refused. Once carol answers, the call is a
// conference of three owned by alice, and each party, sending a tone of
// its own (alice 400 Hz and bob 700 Hz in PCMU, carol 1100 Hz in PCMA),
// hears the other two and not itself. alice and carol hang up; Outpost
// hangs up bob, the last one left.
func TestConferenceThreeParties(t *testing.T) {
	needSIPp(t)
	n := startNode(t, "conf", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	alice := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 400)
	bob := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 700)
	carol := newRTPPhone(t, "carol", "127.0.0.1", g711.PCMA, 1100)
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf",
		sippTemplate(t, "uas-conference.xml", map[string]string{"MEDIA_PORT": bob.port()}))
	// carol rings 2 s: the second invitation is sent meanwhile.
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", sippTemplate(t, "uas-conference-invitee.xml",
		map[string]string{"MEDIA_PORT": carol.port(), "RING_MS": "2000", "HOLD_MS": "9000"}))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	aliceRun := startSIPp(t, sippTemplate(t, "uac-conference.xml", map[string]string{"MEDIA_PORT": alice.port(), "HOLD_MS": "8000"}),
		n.sipUDP, 1, 45*time.Second, "-inf", callers)

	id := twoPartyCall(t, n)
	inv := invited(t, n, id, `{"type":"user","user":"u-carol"}`)
	if inv.Type != "user" || inv.User != "u-carol" {
		t.Errorf("the invitation: %+v, want type user, user u-carol", inv)
	}

	t.Run("second invitation refused", func(t *testing.T) {
		code, data := invite(t, n, id, `{"type":"user","user":"u-carol"}`)
		var body struct {
			Error   string            `json:"error"`
			Details []json.RawMessage `json:"details"`
		}
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("the second invitation: %d %s: %v", code, data, err)
		}
		if code != http.StatusConflict || !strings.Contains(body.Error, "already has an active invitation") || body.Details == nil {
			t.Errorf("the second invitation of carol while she rings: %d %s; want 409 with an error saying she has one, and details[]", code, data)
		}
		cs, err := liveCalls(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.ID == id && len(c.Invitations) != 1 {
				t.Errorf("the call's invitations after the refusal: %+v, want the first only", c.Invitations)
			}
		}
	})

	if !t.Run("conference of three", func(t *testing.T) {
		waitCall(t, n, 15*time.Second, "carol in the conference", id, func(c apiCall) error {
			got, ok := c.invitation(inv.ID)
			switch {
			case c.State != "conference" || c.Owner != "u-alice":
				return fmt.Errorf("state %q, owner %q; want conference, u-alice", c.State, c.Owner)
			case !slices.Equal(c.users(), []string{"u-alice", "u-bob", "u-carol"}):
				return fmt.Errorf("participants %v, want [u-alice u-bob u-carol]", c.users())
			case !ok || got.State != "accepted" || got.Joined != "u-carol":
				return fmt.Errorf("invitation %+v, want accepted, joined by u-carol", c.Invitations)
			}
			return nil
		})
	}) {
		t.Fatalf("no conference, so no audio to check; the node's conference lines:\n%s", conferenceLog(n))
	}

	t.Run("each hears the others, not itself", func(t *testing.T) {
		checkHearing(t, map[*rtpPhone][2][]float64{
			alice: {{700, 1100}, {400}},
			bob:   {{400, 1100}, {700}},
			carol: {{400, 700}, {1100}},
		})
	})

	res, err := aliceRun.wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.exit != 0 {
		t.Errorf("alice's SIPp exited %d\n%s\n%s", res.exit, res.stdout, conferenceLog(n))
	}
	if code := carolDone(); code != 0 {
		t.Errorf("carol's SIPp exited %d", code)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's SIPp exited %d (not hung up once alone?)", code)
	}
	eventually(t, 10*time.Second, "the conference gone", func(ctx context.Context) error {
		cs, err := liveCalls(ctx, n)
		if err == nil && len(cs) != 0 {
			err = fmt.Errorf("calls %+v", cs)
		}
		return err
	})
}

// startCalloutSBC starts a SIPp SBC on ip:5060 answering every call-out
// with scenario (an absolute path; see startSBCOn), the media port of each
// looked up by the dialled number in ports.
func startCalloutSBC(t *testing.T, ip, scenario string, ports map[string]string) *sbc {
	t.Helper()
	dir := t.TempDir()
	rows := "SEQUENTIAL\n"
	for number, port := range ports {
		rows += number + ";" + port + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "ports.csv"), []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sbc{messages: filepath.Join(dir, "messages.log"), errors: filepath.Join(dir, "errors.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	s.cmd = exec.CommandContext(ctx, "sipp", "-sf", scenario, "-i", ip, "-mi", ip, "-p", strconv.Itoa(sbcSIPPort),
		"-inf", "ports.csv", "-infindex", "ports.csv", "0", "-aa", "-nostdin", "-trace_msg", "-message_file", s.messages,
		"-trace_err", "-error_file", s.errors)
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { cancel(); <-s.exited })
	waitBoundOn(t, ip, sbcSIPPort)
	return s
}

// tracedMessage is one message of a SIPp trace (-trace_msg) and when SIPp
// traced it.
type tracedMessage struct {
	at  time.Time
	msg string
}

// tracedMessages splits a SIPp trace into its messages.
func tracedMessages(trace string) []tracedMessage {
	var out []tracedMessage
	for _, block := range strings.Split("\n"+trace, "\n----------------------------------------------- ")[1:] {
		stamp, rest, _ := strings.Cut(block, "\n")
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(stamp), time.Local)
		if err != nil {
			continue
		}
		// "UDP message sent (n bytes):" or "UDP message received [n]
		// bytes :", a blank line, the message.
		_, msg, _ := strings.Cut(rest, "\n")
		out = append(out, tracedMessage{at: at, msg: strings.TrimSpace(msg)})
	}
	return out
}

// headerOf is the first header line of msg named name.
func headerOf(msg, name string) string {
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), strings.ToLower(name)+":") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// TestConferenceCallout: alice calls bob and invites two people by phone
// number through the HQ trunk, whose SBC (SIPp) answers for the PSTN
// (183 with early media, then 200 a second later). Each call-out presents
// the snapshot's dedicated US caller ID. Eve's number carries the
// extension -156: she hears 1, 5, 6 as RFC 4733 events after the answer,
// presses 1 and joins the conference (and hears alice and bob, who hear
// her). Frank presses nothing: after the greeting and the wait the
// invitation ends declined, "did not press 1", and his call gets a BYE.
func TestConferenceCallout(t *testing.T) {
	needSIPp(t)
	const eveNumber, frankNumber = "+16505550177", "+16505550178"
	snap := withRevision(t, trunkSnapshot(t), 1, func(m map[string]any) {
		m["callout"] = map[string]any{"greeting_prompt": "callout-greeting", "require_press_1": true,
			"caller_ids": []any{
				map[string]any{"country": "US", "number": calloutCallerID, "dedicated": true},
				map[string]any{"country": "GB", "number": "+442075550100"},
			}}
	})
	n := startNode(t, "callout", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", snap)})
	waitRevision(t, []*node{n}, 1)

	// The PSTN side: the callees' media on the SBC's address.
	eve := newRTPPhone(t, "eve", sbcPrimary, g711.PCMA, 1400)
	frank := newRTPPhone(t, "frank", sbcPrimary, g711.PCMA, 1700)
	pstn := startCalloutSBC(t, sbcPrimary, sippTemplate(t, "sbc-callout.xml", map[string]string{"MEDIA_IP": sbcPrimary}),
		map[string]string{eveNumber: eve.port(), frankNumber: frank.port()})
	waitTrunk(t, n, "sbc-hq-1", "up")

	alice := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 400)
	bob := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 700)
	answerWith(t, n, "bob", freeUDPPort(t), "-sf", sippTemplate(t, "uas-conference.xml", map[string]string{"MEDIA_PORT": bob.port()}))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	// alice stays until the test ends (its cleanup ends her SIPp).
	startSIPp(t, sippTemplate(t, "uac-conference.xml", map[string]string{"MEDIA_PORT": alice.port(), "HOLD_MS": "90000"}),
		n.sipUDP, 1, 100*time.Second, "-inf", callers)

	id := twoPartyCall(t, n)
	eveInv := invited(t, n, id, `{"type":"callout","name":"Eve","number":"`+eveNumber+`-156"}`)
	if eveInv.Number != eveNumber || eveInv.DTMF != "156" || eveInv.Name != "Eve" {
		t.Errorf("eve's invitation: %+v, want number %s, dtmf 156, name Eve", eveInv, eveNumber)
	}
	frankInv := invited(t, n, id, `{"type":"callout","name":"Frank","number":"`+frankNumber+`"}`)

	if !t.Run("extension digits after the answer", func(t *testing.T) {
		var keys string
		var first time.Time
		eventually(t, 15*time.Second, "eve hears 1, 5, 6", func(context.Context) error {
			keys, first = eve.receivedKeys()
			if keys != "156" {
				return fmt.Errorf("eve received the keys %q", keys)
			}
			return nil
		})
		var answered time.Time
		for _, m := range tracedMessages(pstn.trace(t)) {
			if strings.HasPrefix(m.msg, "SIP/2.0 200 OK") && strings.Contains(headerOf(m.msg, "To"), eveNumber+"@") && answered.IsZero() {
				answered = m.at
			}
		}
		switch {
		case answered.IsZero():
			t.Errorf("no 200 OK to eve's INVITE in the SBC's trace:\n%s", pstn.trace(t))
		case first.Before(answered.Add(-100 * time.Millisecond)):
			// (SIPp stamps a message when it traces it, a moment after
			// sending it; a key sent in the early media would come a
			// second before the answer.)
			t.Errorf("eve's first telephone-event arrived at %s, before her 200 OK at %s", first.Format(time.StampMicro), answered.Format(time.StampMicro))
		default:
			t.Logf("eve's 200 OK at %s, her first telephone-event %v later; keys %q", answered.Format(time.StampMicro), first.Sub(answered), keys)
		}
	}) {
		t.Fatalf("eve got no extension digits; the node's conference lines:\n%s", conferenceLog(n))
	}
	// eve presses 1 once the greeting plays.
	if err := eve.waitSound(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	eve.pressKey('1')

	t.Run("press 1 joins", func(t *testing.T) {
		waitCall(t, n, 15*time.Second, "eve in the conference", id, func(c apiCall) error {
			got, ok := c.invitation(eveInv.ID)
			switch {
			case c.State != "conference" || c.Owner != "u-alice":
				return fmt.Errorf("state %q, owner %q; want conference, u-alice", c.State, c.Owner)
			case !slices.Equal(c.users(), []string{"u-alice", "u-bob", "Eve " + eveNumber}):
				return fmt.Errorf("participants %v, want [u-alice u-bob Eve %s]", c.users(), eveNumber)
			case !ok || got.State != "accepted":
				return fmt.Errorf("eve's invitation in %+v, want accepted", c.Invitations)
			}
			return nil
		})
		checkHearing(t, map[*rtpPhone][2][]float64{
			eve:   {{400, 700}, {1400}},
			alice: {{700, 1400}, {400}},
			bob:   {{400, 1400}, {700}},
		})
	})

	t.Run("the dedicated US caller ID", func(t *testing.T) {
		trace := pstn.trace(t)
		for _, number := range []string{eveNumber, frankNumber} {
			msg := firstMessage(trace, "INVITE sip:"+number+"@")
			if msg == "" {
				t.Errorf("the SBC got no INVITE for %s:\n%s", number, trace)
				continue
			}
			if from := headerOf(msg, "From"); !strings.Contains(from, "<sip:"+calloutCallerID+"@") {
				t.Errorf("the call-out to %s came %q, want the dedicated US caller ID %s", number, from, calloutCallerID)
			}
		}
	})

	t.Run("no 1 declines", func(t *testing.T) {
		// The greeting (3.9 s) and 10 s for a key.
		waitCall(t, n, 30*time.Second, "frank's invitation declined", id, func(c apiCall) error {
			got, ok := c.invitation(frankInv.ID)
			if !ok || got.State != "declined" || got.Reason != "did not press 1" {
				return fmt.Errorf("frank's invitation in %+v, want declined, did not press 1", c.Invitations)
			}
			if slices.Contains(c.users(), "Frank "+frankNumber) {
				return fmt.Errorf("frank is a participant: %v", c.users())
			}
			return nil
		})
		pstn.waitFor(t, "BYE sip:", 1)
		if bye := firstMessage(pstn.trace(t), "BYE sip:"); !strings.Contains(headerOf(bye, "To"), frankNumber+"@") {
			t.Errorf("the BYE at the SBC is not for frank's call:\n%s", bye)
		}
		if keys, _ := frank.receivedKeys(); keys != "" {
			t.Errorf("frank received the keys %q, want none (his number has no extension)", keys)
		}
		if err := frank.waitSound(time.Second); err != nil {
			t.Errorf("frank did not hear the greeting: %v", err)
		}
	})
}
