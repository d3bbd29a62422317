package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

const (
	fraudSBC   = "127.0.0.61" // the HQ trunk's SBC
	fraudPhone = "127.0.0.62" // alice's legitimate calls
)

// inviteMsg is an INVITE to ruri with an SDP offer, from fromURI, with
// extra header lines; via, if set, replaces the phone's own Via (an
// attacker claiming to be someone else).
func (p *rawPhone) inviteMsg(callID, ruri, fromURI, via string, cseq int, extra ...string) string {
	p.seq++
	if via == "" {
		via = fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK-inv%d-%d;rport", p.local(), time.Now().UnixNano(), p.seq)
	}
	host, _, _ := net.SplitHostPort(p.local())
	sdp := strings.Join([]string{"v=0", "o=- 1 1 IN IP4 " + host, "s=-", "c=IN IP4 " + host, "t=0 0",
		"m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", ""}, "\r\n")
	lines := []string{
		"INVITE " + ruri + " SIP/2.0",
		"Via: " + via,
		"Max-Forwards: 70",
		fmt.Sprintf("From: <%s>;tag=inv%d", fromURI, p.seq),
		"To: <" + ruri + ">",
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d INVITE", cseq),
		"Contact: <sip:x@" + p.local() + ">",
		"Content-Type: application/sdp",
	}
	lines = append(lines, extra...)
	return strings.Join(append(lines, fmt.Sprintf("Content-Length: %d", len(sdp)), "", sdp), "\r\n")
}

// ack acknowledges a final non-2xx answer to invite (same branch, the
// answer's To), so the node stops retransmitting it.
func (p *rawPhone) ack(invite string, a sipAnswer) {
	head, _, _ := strings.Cut(invite, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	ruri := strings.Fields(lines[0])[1]
	var out []string
	out = append(out, "ACK "+ruri+" SIP/2.0")
	for _, l := range lines[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(name) {
		case "via", "from", "call-id", "max-forwards":
			out = append(out, l)
		case "cseq":
			out = append(out, strings.Replace(l, "INVITE", "ACK", 1))
		}
	}
	if to := a.header("To"); len(to) > 0 {
		out = append(out, "To: "+to[0])
	}
	_, _ = p.conn.WriteToUDP([]byte(strings.Join(append(out, "Content-Length: 0", "", ""), "\r\n")), p.target)
}

// call sends an INVITE and ACKs its final answer.
func (p *rawPhone) call(msg string) sipAnswer {
	p.t.Helper()
	a := p.send(msg)
	if a.status >= 300 {
		p.ack(msg, a)
	}
	return a
}

// Toll fraud at a running node with an SBC trunk (a SIPp on 127.0.0.61):
//   - INVITEs without credentials to an external number, however the
//     number and host are written, are challenged (407) and never reach the
//     SBC;
//   - an INVITE from an address that is not the trunk's, dressed as the
//     SBC (its Via, From and P-Asserted-Identity), or from the SBC's own
//     address but another port (UDP: SBCs send from the port they listen
//     on), is challenged like a phone's (407), whether it calls a DID or an
//     external number, and nobody rings;
//   - a user past the site's concurrency limit (2 outbound calls at once
//     by default) is refused: 403 for the third call while two are up;
//   - the SBC saw exactly the two legitimate calls.
func TestAttackTollFraud(t *testing.T) {
	snap := withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		for i, tr := range m["trunks"].([]any) {
			tr := tr.(map[string]any)
			tr["host"] = []string{fraudSBC, "127.0.0.60"}[i]
			tr["port"] = sbcSIPPort
			tr["options_interval_s"] = 1
		}
	})
	n := startNode(t, "fraud", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", snap), logLevel: "info"})
	waitRevision(t, []*node{n}, 1)
	sbc := startSBC(t, fraudSBC, "sbc-answer.xml")
	waitTrunk(t, n, "sbc-hq-1", "up")
	var report []string
	expect := func(what string, a sipAnswer, status int) {
		t.Helper()
		got := a.line
		if a.status == 0 {
			got = "no answer"
		}
		if a.status != status {
			t.Errorf("%s: %s, want %d", what, got, status)
		}
		report = append(report, fmt.Sprintf("%s: %s", what, got))
	}

	// Unauthenticated calls out.
	stranger := newRawPhone(t, "127.0.0.63", n.sipUDP)
	for _, ruri := range []string{"sip:6035550123@acme.example", "sip:+16035550123@acme.example",
		"sip:011442079460000@acme.example", "sip:+16035550123@" + fraudSBC + ":5060;user=phone"} {
		expect("no credentials, INVITE "+ruri,
			stranger.call(stranger.inviteMsg(fmt.Sprintf("noauth-%d", time.Now().UnixNano()), ruri, "sip:alice@acme.example", "", 1)), 407)
	}

	// Pretending to be the SBC. The node answers to the packet's source
	// address and the Via's port (RFC 3261 §18.2.2): the impostor listens
	// on 5060 to hear it.
	impostor := newRawPhone(t, fmt.Sprintf("127.0.0.65:%d", sbcSIPPort), n.sipUDP)
	sbcVia := func() string {
		return fmt.Sprintf("SIP/2.0/UDP %s:%d;branch=z9hG4bK-fake%d", fraudSBC, sbcSIPPort, time.Now().UnixNano())
	}
	pai := "P-Asserted-Identity: <sip:+14155550000@" + fraudSBC + ">"
	for _, tc := range []struct{ what, ruri string }{
		{"a DID (bob's)", "sip:+16505550102@acme.example"},
		{"an external number (back out to the PSTN)", "sip:+16035550123@acme.example"},
	} {
		expect("from 127.0.0.65 dressed as the SBC, to "+tc.what,
			impostor.call(impostor.inviteMsg(fmt.Sprintf("fake-%d", time.Now().UnixNano()), tc.ruri, "sip:+14155550000@"+fraudSBC, sbcVia(), 1, pai)), 407)
	}
	samehost := newRawPhone(t, fraudSBC, n.sipUDP) // the SBC's address, another port
	expect("from the SBC's address but another UDP port, to bob's DID",
		samehost.call(samehost.inviteMsg(fmt.Sprintf("port-%d", time.Now().UnixNano()), "sip:+16505550102@acme.example", "sip:+14155550000@"+fraudSBC, "", 1, pai)), 407)

	// Concurrency: alice's two calls are up, her third is refused.
	calls := make([]*sippRun, 2)
	for i := range calls {
		callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "6035550123"}})
		calls[i] = startSIPp(t, "uac-pstn.xml", n.sipUDP, 1, 40*time.Second, "-inf", callers, "-i", fraudPhone, "-mi", fraudPhone)
	}
	eventually(t, 20*time.Second, "alice's two calls up", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.ActiveCalls != 2 {
			err = fmt.Errorf("%d active calls", st.ActiveCalls)
		}
		return err
	})
	third := newRawPhone(t, "127.0.0.64", n.sipUDP)
	callID := fmt.Sprintf("third-%d", time.Now().UnixNano())
	ruri := "sip:6035550123@acme.example"
	ch := third.call(third.inviteMsg(callID, ruri, "sip:alice@acme.example", "", 1))
	if ch.status != 407 {
		t.Fatalf("alice's third INVITE without credentials: %q, want 407", ch.line)
	}
	c := ch.challenge(t, "Proxy-Authenticate")
	authz := digestAuth("Proxy-Authorization", "alice", "pw-alice", c.realm, c.nonce, "INVITE", ruri, "00000001")
	expect("alice's third call out while two are up (limit 2)", third.call(third.inviteMsg(callID, ruri, "sip:alice@acme.example", "", 2, authz)), 403)
	for i, r := range calls {
		res, err := r.wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.exit != 0 {
			t.Errorf("alice's legitimate call %d: SIPp exit %d\n%s", i+1, res.exit, tail(res.stdout, 20))
		}
	}
	sbc.waitFor(t, "BYE sip:", 2)
	if got := strings.Count(sbc.trace(t), "INVITE sip:"); got != 2 {
		t.Errorf("the SBC got %d INVITEs, want alice's 2:\n%s", got, sbc.trace(t))
	}
	report = append(report, fmt.Sprintf("the SBC got %d INVITEs: alice's two legitimate calls", strings.Count(sbc.trace(t), "INVITE sip:")))
	t.Logf("toll fraud against %s:\n  %s", n.id, strings.Join(report, "\n  "))
}
