package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Addresses of the trunk tests: the phones on one loopback address, the
// two SBCs on others, so a trace can show whose addresses crossed.
const (
	phoneIP     = "127.0.0.2"
	sbcPrimary  = "127.0.0.5"
	sbcBackup   = "127.0.0.6"
	sbcSIPPort  = 5060
	pstnDialled = "6035550123" // 10 digits: +1 603 555 0123 at the HQ site
	pstnE164    = "+16035550123"
)

// trunkSnapshot is the demo account with its HQ trunks pointing at the two
// SBCs, OPTIONS every second.
func trunkSnapshot(t *testing.T) []byte {
	return withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		for i, tr := range m["trunks"].([]any) {
			tr := tr.(map[string]any)
			tr["host"] = []string{sbcPrimary, sbcBackup}[i]
			tr["port"] = sbcSIPPort
			tr["options_interval_s"] = 1
		}
	})
}

// sbc is a SIPp playing an SBC on its own loopback address; it answers
// OPTIONS itself (-aa) and traces every message. It runs until the test
// ends: SIPp counts each OPTIONS as a call, so -m would stop it early.
type sbc struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	messages string
	errors   string
}

func startSBC(t *testing.T, ip, scenario string) *sbc {
	t.Helper()
	return startSBCOn(t, ip, sbcSIPPort, scenario)
}

// startSBCOn is startSBC on another port.
func startSBCOn(t *testing.T, ip string, port int, scenario string) *sbc {
	t.Helper()
	dir := t.TempDir()
	s := &sbc{messages: filepath.Join(dir, "messages.log"), errors: filepath.Join(dir, "errors.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	s.cmd = exec.CommandContext(ctx, "sipp", "-sf", scenarioPath(t, scenario), "-i", ip, "-mi", ip,
		"-p", strconv.Itoa(port), "-aa", "-nostdin", "-trace_msg",
		"-message_file", s.messages, "-trace_err", "-error_file", s.errors)
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { cancel(); <-s.exited })
	waitBoundOn(t, ip, port)
	return s
}

// stop ends the SBC (its address stops answering) and waits for it.
func (s *sbc) stop() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitFor waits until the SBC has traced what at least count times (a
// scenario's last message: the 200 to the BYE, the ACK of a refusal),
// and fails the test if SIPp aborted a call.
func (s *sbc) waitFor(t *testing.T, what string, count int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%q %d times at the SBC", what, count), func(context.Context) error {
		b, _ := os.ReadFile(s.messages)
		if got := strings.Count(string(b), what); got < count {
			return fmt.Errorf("seen %d times", got)
		}
		return nil
	})
	if b, _ := os.ReadFile(s.errors); strings.Contains(string(b), "Aborting call") {
		t.Errorf("the SBC's SIPp aborted a call:\n%s", b)
	}
}

// trace is what the SBC saw.
func (s *sbc) trace(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.messages)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// refuseDone is the last message of sbc-refuse.xml.
const refuseDone = "ACK sip:"

// waitBoundOn is waitBound for another loopback address.
func waitBoundOn(t testing.TB, ip string, port int) {
	t.Helper()
	var hex string
	for _, part := range strings.Split(ip, ".") {
		n, _ := strconv.Atoi(part)
		hex = fmt.Sprintf("%02X", n) + hex
	}
	local := fmt.Sprintf(" %s:%04X ", hex, port)
	eventually(t, 10*time.Second, fmt.Sprintf("UDP %s:%d bound", ip, port), func(context.Context) error {
		table, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return err
		}
		if !strings.Contains(string(table), local) {
			return fmt.Errorf("nothing listens yet")
		}
		return nil
	})
}

// callPSTN has a phone (SIPp on phoneIP) authenticate as user and dial.
func callPSTN(t *testing.T, n *node, user, dialled string) sippResult {
	t.Helper()
	return callPSTNWith(t, n, "uac-pstn.xml", user, dialled)
}

// callPSTNWith is callPSTN with another phone scenario.
func callPSTNWith(t *testing.T, n *node, scenario, user, dialled string) sippResult {
	t.Helper()
	callers := writeCallersCSV(t, [][4]string{{user, "pw-" + user, "acme.example", dialled}})
	return runSIPp(t, scenario, n.sipUDP, 1, 40*time.Second, "-inf", callers, "-i", phoneIP, "-mi", phoneIP)
}

// metric reads one sample of the node's /metrics.
func metric(t *testing.T, n *node, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + n.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return 0
}

func TestTrunkOutboundCall(t *testing.T) {
	n := startNode(t, "trunk", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-answer.xml")

	res := callPSTN(t, n, "alice", pstnDialled)
	if res.exit != 0 {
		t.Fatalf("alice's call: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	trace := primary.trace(t)
	invite := firstMessage(trace, "INVITE ")
	for _, want := range []string{"INVITE sip:" + pstnE164 + "@", "From: \"Alice", "<sip:+16505550101@", "P-Asserted-Identity:",
		"m=audio ", "c=IN IP4 127.0.0.1"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the INVITE at the SBC lacks %q:\n%s", want, invite)
		}
	}
	// Topology hiding: nothing of the phone's side reached the SBC.
	for _, leak := range []string{phoneIP, "SIPpTag0", "User-Agent: SIPp"} {
		if strings.Contains(trace, leak) {
			t.Errorf("the SBC saw %q of the phone's side:\n%s", leak, trace)
		}
	}
	// Media crossed the relay both ways (236 packets in the pcap).
	for _, dir := range []string{"a_to_b", "b_to_a"} {
		name := `outpost_media_rtp_packets_total{direction="` + dir + `"}`
		if got := metric(t, n, name); got < 200 {
			t.Errorf("%s = %v, want the pcap's packets (236)", name, got)
		}
	}
	eventually(t, 10*time.Second, "the trunk call's record", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == "alice" && r.Callee == pstnE164 && r.Destination == "external" && r.Disposition == "answered" {
				return nil
			}
		}
		return fmt.Errorf("no answered alice -> %s record in %+v", pstnE164, recs)
	})
}

func TestTrunkFailover(t *testing.T) {
	n := startNode(t, "failover", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	// A 503 from the primary: the same call completes on the secondary.
	primary := startSBC(t, sbcPrimary, "sbc-refuse.xml")
	backup := startSBC(t, sbcBackup, "sbc-answer.xml")
	waitTrunk(t, n, "sbc-hq-1", "up")
	waitTrunk(t, n, "sbc-hq-2", "up")
	if res := callPSTN(t, n, "alice", pstnDialled); res.exit != 0 {
		t.Fatalf("a call the primary refused: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, refuseDone, 1)
	backup.waitFor(t, "BYE sip:", 1)

	// The primary stops: the next call goes to the secondary, no failure.
	primary.stop()
	if res := callPSTN(t, n, "bob", pstnDialled); res.exit != 0 {
		t.Fatalf("a call with the primary gone: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	backup.waitFor(t, "BYE sip:", 2)
	// The prober saw the primary go down.
	waitTrunk(t, n, "sbc-hq-1", "down")
}

// waitTrunk waits until the node's status shows trunk id in state.
func waitTrunk(t *testing.T, n *node, id, state string) {
	t.Helper()
	eventually(t, 15*time.Second, "trunk "+id+" "+state, func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err != nil {
			return err
		}
		for _, tr := range st.Trunks {
			if tr.ID == id && tr.State == state {
				return nil
			}
		}
		return fmt.Errorf("trunks %+v", st.Trunks)
	})
}

// firstMessage is the first traced message starting with prefix.
func firstMessage(trace, prefix string) string {
	i := strings.Index(trace, "\n"+prefix)
	if i < 0 {
		return ""
	}
	rest := trace[i+1:]
	if j := strings.Index(rest, "\n----"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// callFromPSTN has the SBC at ip call number (E.164) from the PSTN.
func callFromPSTN(t *testing.T, n *node, ip, number string) sippResult {
	t.Helper()
	rows := writeFile(t, "pstn.csv", []byte("SEQUENTIAL\n"+number+";+14155550000\n"))
	return runSIPp(t, "sbc-call.xml", n.sipUDP, 1, 40*time.Second, "-inf", rows, "-i", ip, "-mi", ip,
		"-p", strconv.Itoa(sbcSIPPort), "-aa")
}

func TestTrunkInboundCalls(t *testing.T) {
	n := startNode(t, "inbound", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	// A call to bob's DID from the SBC rings bob.
	before := metric(t, n, `outpost_media_rtp_packets_total{direction="b_to_a"}`)
	bobDone := answerOn(t, n, "bob", freeUDPPort(t))
	if res := callFromPSTN(t, n, sbcPrimary, "+16505550102"); res.exit != 0 {
		t.Fatalf("a PSTN call to bob's DID: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's SIPp exited %d", code)
	}
	if got := metric(t, n, `outpost_media_rtp_packets_total{direction="b_to_a"}`) - before; got < 200 {
		t.Errorf("%v RTP packets from the SBC reached the phone's side, want the pcap's (236)", got)
	}

	// The same INVITE from an address that is no trunk is not a PSTN call:
	// it is challenged like any phone's.
	rows := writeFile(t, "stranger.csv", []byte("SEQUENTIAL\n+16505550102\n"))
	if res := runSIPp(t, "uac-no-credentials.xml", n.sipUDP, 1, 20*time.Second, "-inf", rows,
		"-i", "127.0.0.9", "-p", strconv.Itoa(sbcSIPPort)); res.exit != 0 {
		t.Errorf("an INVITE from a stranger was not challenged: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	// A number the account does not have: 404, and it never goes back out.
	if res := runSIPp(t, "sbc-call-unknown.xml", n.sipUDP, 1, 20*time.Second, "-inf",
		writeFile(t, "unknown.csv", []byte("SEQUENTIAL\n+14155559999\n")), "-i", sbcPrimary, "-p", strconv.Itoa(sbcSIPPort), "-aa"); res.exit != 0 {
		t.Errorf("a call from the PSTN to a number not in the account: SIPp exit %d\n%s", res.exit, res.stdout)
	}
}

func TestTrunkEmergencyCall(t *testing.T) {
	n := startNode(t, "emergency", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-answer.xml")

	// carol has no DID: her 911 call goes out with an ELIN of HQ and the
	// site's address.
	if res := callPSTN(t, n, "carol", "911"); res.exit != 0 {
		t.Fatalf("carol's 911 call: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	invite := firstMessage(primary.trace(t), "INVITE ")
	elin := ""
	for _, e := range []string{"+16505550190", "+16505550191"} {
		if strings.Contains(invite, "<sip:"+e+"@") {
			elin = e
		}
	}
	if elin == "" {
		t.Fatalf("the emergency INVITE has no ELIN of HQ as caller ID:\n%s", invite)
	}
	for _, want := range []string{"INVITE sip:911@", "Geolocation: <cid:", "Geolocation-Routing: yes",
		"multipart/mixed", "application/pidf+xml", "Palo Alto", "94301", "application/sdp"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the emergency INVITE lacks %q:\n%s", want, invite)
		}
	}

	// The PSAP calls the ELIN back: carol's phone rings.
	primary.stop() // its address and port place the call back
	carolDone := answerOn(t, n, "carol", freeUDPPort(t))
	if res := callFromPSTN(t, n, sbcPrimary, elin); res.exit != 0 {
		t.Fatalf("a call back to the ELIN %s: SIPp exit %d\n%s", elin, res.exit, res.stdout)
	}
	if code := carolDone(); code != 0 {
		t.Errorf("carol's SIPp exited %d: the call back did not reach her", code)
	}
}

func TestTrunkCallEndsWhenMediaStops(t *testing.T) {
	n := startNode(t, "silent", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t)),
		extra: "media:\n  timeout: 2s\n"})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-answer-silent.xml")
	// The phone and the SBC answer and send nothing: Outpost hangs both up.
	res := callPSTNWith(t, n, "uac-pstn-silent.xml", "alice", pstnDialled)
	if res.exit != 0 {
		t.Fatalf("the silent call: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	eventually(t, 10*time.Second, "the media_timeout record", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == "alice" && r.Disposition == "media_timeout" {
				return nil
			}
		}
		return fmt.Errorf("no media_timeout record in %+v", recs)
	})
	if got := metric(t, n, "outpost_media_timeouts_total"); got != 1 {
		t.Errorf("outpost_media_timeouts_total = %v, want 1", got)
	}
}

// TestTrunkSitePolicy: a site's outbound policy (the snapshot's
// sites[].outbound) decides where its users may call: the HQ site allows
// the UK, so alice's call to London reaches the SBC, while Germany, not on
// the list, is refused before any trunk is tried.
func TestTrunkSitePolicy(t *testing.T) {
	snap := withRevision(t, trunkSnapshot(t), 1, func(m map[string]any) {
		hq := m["sites"].([]any)[0].(map[string]any)
		hq["outbound"] = map[string]any{"international": "list", "allowed_countries": []string{"GB"}}
	})
	n := startNode(t, "trunk", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", snap)})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-answer.xml")

	if res := callPSTN(t, n, "alice", "01149301234567"); res.exit == 0 {
		t.Errorf("alice's call to Germany went through; the site allows only GB\n%s", res.stdout)
	}
	res := callPSTN(t, n, "alice", "011442079460000")
	if res.exit != 0 {
		t.Fatalf("alice's call to London: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	trace := primary.trace(t)
	if !strings.Contains(firstMessage(trace, "INVITE "), "INVITE sip:+442079460000@") {
		t.Errorf("the SBC did not get the call to London:\n%s", trace)
	}
	if strings.Contains(trace, "+4930") {
		t.Errorf("the call to Germany reached the SBC:\n%s", trace)
	}
}

// TestTrunkSRTP: a trunk with "srtp": "sdes" is offered RTP/SAVP with a key
// of the relay's, and the phone stays on plain RTP; an answer from such a
// trunk without a key fails that attempt (488) and the call moves to the
// next trunk, whose plain RTP offer carries no key.
func TestTrunkSRTP(t *testing.T) {
	snap := withRevision(t, trunkSnapshot(t), 1, func(m map[string]any) {
		m["trunks"].([]any)[0].(map[string]any)["srtp"] = "sdes"
	})
	n := startNode(t, "srtp", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", snap)})
	waitRevision(t, []*node{n}, 1)

	primary := startSBC(t, sbcPrimary, "sbc-answer-srtp.xml")
	backup := startSBC(t, sbcBackup, "sbc-answer.xml")
	waitTrunk(t, n, "sbc-hq-1", "up")
	if res := callPSTN(t, n, "alice", pstnDialled); res.exit != 0 {
		t.Fatalf("alice's call over SRTP: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	invite := firstMessage(primary.trace(t), "INVITE ")
	for _, want := range []string{" RTP/SAVP ", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the INVITE to the SRTP trunk lacks %q:\n%s", want, invite)
		}
	}
	// The phone's audio reached the SBC, encrypted by the relay.
	if got := metric(t, n, `outpost_media_rtp_packets_total{direction="a_to_b"}`); got < 200 {
		t.Errorf("a_to_b RTP packets = %v, want the phone's pcap (236)", got)
	}

	// The primary now answers without a key: the call completes on the
	// secondary, and the primary's answer is hung up.
	primary.stop()
	primary = startSBC(t, sbcPrimary, "sbc-answer.xml")
	waitTrunk(t, n, "sbc-hq-1", "up")
	if res := callPSTN(t, n, "bob", pstnDialled); res.exit != 0 {
		t.Fatalf("bob's call: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	backup.waitFor(t, "BYE sip:", 1)
	if invite := firstMessage(backup.trace(t), "INVITE "); strings.Contains(invite, "a=crypto") || !strings.Contains(invite, " RTP/AVP ") {
		t.Errorf("the plain trunk's INVITE:\n%s", invite)
	}

	// A call from the SRTP trunk to bob's DID: the SBC's offer is answered
	// RTP/SAVP with a key of the relay's (sbc-call-srtp.xml checks it).
	primary.stop()
	bobDone := answerOn(t, n, "bob", freeUDPPort(t))
	rows := writeFile(t, "srtp.csv", []byte("SEQUENTIAL\n+16505550102;+14155550000\n"))
	if res := runSIPp(t, "sbc-call-srtp.xml", n.sipUDP, 1, 40*time.Second, "-inf", rows, "-i", sbcPrimary, "-mi", sbcPrimary,
		"-p", strconv.Itoa(sbcSIPPort), "-aa"); res.exit != 0 {
		t.Fatalf("an SRTP call from the PSTN to bob's DID: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's SIPp exited %d", code)
	}
}

// TestTrunkLateOffer: a phone that sends its INVITE without an offer still
// reaches the SBC with one (Early Offer toward SBCs always); the phone gets
// the offer in the 200 and answers in its ACK, and media flows both ways.
func TestTrunkLateOffer(t *testing.T) {
	n := startNode(t, "late-offer", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-answer.xml")

	res := callPSTNWith(t, n, "uac-pstn-late.xml", "alice", pstnDialled)
	if res.exit != 0 {
		t.Fatalf("alice's call without an offer: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	primary.waitFor(t, "BYE sip:", 1)
	invite := firstMessage(primary.trace(t), "INVITE ")
	for _, want := range []string{"Content-Type: application/sdp", "m=audio ", "telephone-event/8000"} {
		if !strings.Contains(invite, want) {
			t.Errorf("the INVITE at the SBC lacks %q (Early Offer):\n%s", want, invite)
		}
	}
	for _, dir := range []string{"a_to_b", "b_to_a"} {
		name := `outpost_media_rtp_packets_total{direction="` + dir + `"}`
		if got := metric(t, n, name); got < 200 {
			t.Errorf("%s = %v, want the pcap's packets (236)", name, got)
		}
	}
}

// TestTrunkBlindTransfer: alice calls the PSTN and transfers the call to
// carol; carol takes alice's side of the relay, the SBC is re-INVITEd off
// hold with the relay's address again (never carol's), and the call goes
// on until carol hangs up.
func TestTrunkBlindTransfer(t *testing.T) {
	n := startNode(t, "pstn-xfer", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", trunkSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "uas-transferee.xml")
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", scenarioPath(t, "uas-hangup.xml"))
	callers := writeTransferCSV(t, "alice", "pw-alice", pstnDialled, "1003")
	if res := runSIPp(t, "uac-blind-transfer.xml", n.sipUDP, 1, 30*time.Second, "-inf", callers, "-i", phoneIP, "-mi", phoneIP); res.exit != 0 {
		t.Fatalf("alice's SIPp exited %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	if code := carolDone(); code != 0 {
		t.Fatalf("carol's SIPp exited %d\n%s", code, n.log())
	}
	primary.waitFor(t, "BYE sip:", 1)
	trace := primary.trace(t)
	if strings.Count(trace, "INVITE sip:") < 2 {
		t.Errorf("the SBC saw no re-INVITE after the transfer:\n%s", trace)
	}
	for _, leak := range []string{phoneIP, "User-Agent: SIPp"} { // (the SBC's own tags are SIPp's too)
		if strings.Contains(trace, leak) {
			t.Errorf("the SBC saw %q of the phones' side:\n%s", leak, trace)
		}
	}
	eventually(t, 10*time.Second, "the transfer journalled", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		var first, second bool
		for _, r := range recs {
			first = first || r.Caller == "alice" && r.Callee == pstnE164 && r.Disposition == "transferred"
			second = second || r.Callee == "carol" && r.Dialled == "1003" && r.Disposition == "answered"
		}
		if !first || !second {
			return fmt.Errorf("want alice->%s transferred and ->carol answered, have %+v", pstnE164, recs)
		}
		return nil
	})
}
