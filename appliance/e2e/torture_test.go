package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The RFC 4475 torture messages, as shipped in sipgo's sip/testdata/torture
// (see testdata/torture/README.md). sipgo files them in two folders: valid/
// holds §3.1.1, invalid/ holds §3.1.2 together with the transaction- and
// application-layer cases of §3.2–§3.4 (and test.dat, which is not from the
// RFC). Each file is classified here by its RFC section, not its folder.
//
// The files are sent byte for byte, as sipgo's own TestTorture reads them:
// they already have CRLF line endings and hold no placeholders.
//
// None is skipped for needing stream framing: RFC 4475 writes every message
// as if it arrived in one UDP datagram, and the cases that hinge on framing
// (dblreq's trailing octets, clerr's and ncl's Content-Length, mcl01, and
// inv2543 without Content-Length) only make sense over UDP. The TCP, TLS and
// SCTP in some Via headers are text for the parser, not a delivery channel.
type tortureKind int

const (
	tortureValid    tortureKind = iota // §3.1.1: well formed; a request must get an answer
	tortureInvalid                     // §3.1.2: malformed; no answer or a 4xx, never a 2xx
	tortureSemantic                    // §3.2–§3.4: well formed but odd; only must not hurt the node
)

func (k tortureKind) String() string {
	return [...]string{"valid", "invalid", "semantic"}[k]
}

type tortureMsg struct {
	file    string // under testdata/torture
	section string // RFC 4475 section
	title   string
	kind    tortureKind
}

var tortureMessages = []tortureMsg{
	{"valid/wsinv.dat", "3.1.1.1", "A Short Tortuous INVITE", tortureValid},
	{"valid/intmeth.dat", "3.1.1.2", "Wide Range of Valid Characters", tortureValid},
	{"valid/esc01.dat", "3.1.1.3", "Valid Use of the % Escaping Mechanism", tortureValid},
	{"valid/escnull.dat", "3.1.1.4", "Escaped Nulls in URIs", tortureValid},
	{"valid/esc02.dat", "3.1.1.5", "Use of % When It Is Not an Escape", tortureValid},
	{"valid/lwsdisp.dat", "3.1.1.6", "Message with No LWS between Display Name and <", tortureValid},
	{"valid/longreq.dat", "3.1.1.7", "Long Values in Header Fields", tortureValid},
	{"valid/dblreq.dat", "3.1.1.8", "Extra Trailing Octets in a UDP Datagram", tortureValid},
	{"valid/semiuri.dat", "3.1.1.9", "Semicolon-Separated Parameters in URI User Part", tortureValid},
	{"valid/transports.dat", "3.1.1.10", "Varied and Unknown Transport Types", tortureValid},
	{"valid/mpart01.dat", "3.1.1.11", "Multipart MIME Message", tortureValid},
	{"valid/unreason.dat", "3.1.1.12", "Unusual Reason Phrase (a response)", tortureValid},
	{"valid/noreason.dat", "3.1.1.13", "Empty Reason Phrase (a response)", tortureValid},

	{"invalid/badinv01.dat", "3.1.2.1", "Extraneous Header Field Separators", tortureInvalid},
	{"invalid/clerr.dat", "3.1.2.2", "Content Length Larger Than Message", tortureInvalid},
	{"invalid/ncl.dat", "3.1.2.3", "Negative Content-Length", tortureInvalid},
	{"invalid/scalar02.dat", "3.1.2.4", "Request Scalar Fields with Overlarge Values", tortureInvalid},
	{"invalid/scalarlg.dat", "3.1.2.5", "Response Scalar Fields with Overlarge Values", tortureInvalid},
	{"invalid/quotbal.dat", "3.1.2.6", "Unterminated Quoted String in Display Name", tortureInvalid},
	{"invalid/ltgtruri.dat", "3.1.2.7", "<> Enclosing Request-URI", tortureInvalid},
	{"invalid/lwsruri.dat", "3.1.2.8", "Malformed SIP Request-URI (embedded LWS)", tortureInvalid},
	{"invalid/lwsstart.dat", "3.1.2.9", "Multiple SP Separating Request-Line Elements", tortureInvalid},
	{"invalid/trws.dat", "3.1.2.10", "SP Characters at End of Request-Line", tortureInvalid},
	{"invalid/escruri.dat", "3.1.2.11", "Escaped Headers in SIP Request-URI", tortureInvalid},
	{"invalid/baddate.dat", "3.1.2.12", "Invalid Time Zone in Date Header Field", tortureInvalid},
	{"invalid/regbadct.dat", "3.1.2.13", "Failure to Enclose name-addr URI in <>", tortureInvalid},
	{"invalid/badaspec.dat", "3.1.2.14", "Spaces within addr-spec", tortureInvalid},
	{"invalid/baddn.dat", "3.1.2.15", "Non-token Characters in Display Name", tortureInvalid},
	{"invalid/badvers.dat", "3.1.2.16", "Unknown Protocol Version", tortureInvalid},
	{"invalid/mismatch01.dat", "3.1.2.17", "Start Line and CSeq Method Mismatch", tortureInvalid},
	{"invalid/mismatch02.dat", "3.1.2.18", "Unknown Method with CSeq Method Mismatch", tortureInvalid},
	{"invalid/bigcode.dat", "3.1.2.19", "Overlarge Response Code", tortureInvalid},
	// Not from RFC 4475: sipgo's own malformed INVITE (no SIP-Version).
	{"invalid/test.dat", "-", "Request-Line without SIP-Version (sipgo)", tortureInvalid},

	{"invalid/badbranch.dat", "3.2.1", "Missing Transaction Identifier", tortureSemantic},
	{"invalid/insuf.dat", "3.3.1", "Missing Required Header Fields", tortureSemantic},
	{"invalid/unkscm.dat", "3.3.2", "Request-URI with Unknown Scheme", tortureSemantic},
	{"invalid/novelsc.dat", "3.3.3", "Request-URI with Known but Atypical Scheme", tortureSemantic},
	{"invalid/unksm2.dat", "3.3.4", "Unknown URI Schemes in Header Fields", tortureSemantic},
	{"invalid/bext01.dat", "3.3.5", "Proxy-Require and Require", tortureSemantic},
	{"invalid/invut.dat", "3.3.6", "Unknown Content-Type", tortureSemantic},
	{"invalid/regaut01.dat", "3.3.7", "Unknown Authorization Scheme", tortureSemantic},
	{"invalid/multi01.dat", "3.3.8", "Multiple Values in Single Value Required Fields", tortureSemantic},
	{"invalid/mcl01.dat", "3.3.9", "Multiple Content-Length Values", tortureSemantic},
	{"invalid/bcast.dat", "3.3.10", "200 OK Response with Broadcast Via Header Field Value", tortureSemantic},
	{"invalid/zeromf.dat", "3.3.11", "Max-Forwards of Zero", tortureSemantic},
	{"invalid/cparam01.dat", "3.3.12", "REGISTER with a Contact Header Parameter", tortureSemantic},
	{"invalid/cparam02.dat", "3.3.13", "REGISTER with a url-parameter", tortureSemantic},
	{"invalid/regescrt.dat", "3.3.14", "REGISTER with a URL Escaped Header", tortureSemantic},
	{"invalid/sdp01.dat", "3.3.15", "Unacceptable Accept Offering", tortureSemantic},
	{"invalid/inv2543.dat", "3.4.1", "INVITE with RFC 2543 Syntax", tortureSemantic},
}

// knownUnanswered lists the valid (§3.1.1) requests Outpost leaves
// unanswered because sipgo drops them, or drops the answer, outside
// Outpost's handlers. Each entry was traced in sipgo v1.7.2 and the node's
// log, with the reason; an unanswered valid request not listed here fails
// the test, and a listed one that gets answered is reported for removal.
// (sipgo's parser accepts all eleven valid requests, although its own
// TestTorture still skips esc01, semiuri and wsinv.)
var knownUnanswered = map[string]string{
	// Empty: longreq (§3.1.1.7), whose 2.8 kB answer sipgo's UDP transport
	// used to drop above 1,300 bytes, is answered since the node raised
	// sip.UDPMTUSize (appliance/node/sip.go).
}

const (
	tortureAnswerWait = 2 * time.Second        // a valid request's answer, and a probe's 200
	tortureGrace      = 400 * time.Millisecond // other messages: after the barrier probe's 200
	defaultSIPPort    = 5060
)

// A stress test of the SIP listener with the RFC 4475 torture messages: the
// valid requests are answered, the invalid ones are never accepted, and the
// node keeps serving after every one of them.
func TestTortureMessages(t *testing.T) {
	data := readTortureMessages(t)
	demo := writeFile(t, "demo.json", demoSnapshot(t))
	begin := time.Now()

	// Several messages share a server transaction key (RFC 3261 §17.2.3:
	// branch, sent-by, CSeq method), e.g. baddate and mismatch01, escnull and
	// regescrt, cparam01 and cparam02. Within the 32 s a transaction lingers
	// the node would take the second for a retransmission of the first and
	// replay the first's answer, so the second is sent to another node.
	var targets []*tortureTarget
	targetFor := func(key string) *tortureTarget {
		t.Helper()
		for _, tg := range targets {
			if _, used := tg.keys[key]; key == "" || !used {
				return tg
			}
		}
		id := "torture"
		if len(targets) > 0 {
			id = fmt.Sprintf("torture-%d", len(targets)+1)
		}
		n := startNode(t, id, nodeOpts{bootstrapSnapshot: demo})
		waitRevision(t, []*node{n}, 1)
		addr, err := net.ResolveUDPAddr("udp4", n.sipUDP)
		if err != nil {
			t.Fatalf("%s: sip udp address %q: %v", id, n.sipUDP, err)
		}
		tg := &tortureTarget{n: n, addr: addr, keys: make(map[string]string)}
		targets = append(targets, tg)
		tg.serving(t, "before the first torture message")
		return tg
	}
	targetFor("")

	var report, unanswered []string
	for _, m := range tortureMessages {
		msg := data[m.file]
		name := strings.TrimSuffix(filepath.Base(m.file), ".dat")
		isResponse := bytes.HasPrefix(msg, []byte("SIP/"))
		parsed, parseErr := sip.NewParser().ParseSIP(msg)
		var req *sip.Request
		if parseErr == nil {
			req, _ = parsed.(*sip.Request)
		}

		// Without rport, an answer goes to the packet's source address and
		// the top Via's port (RFC 3261 §18.2.2), 5060 when it names none. So
		// the fresh socket binds that port, on some loopback address, and
		// the message is sent unaltered.
		port, key := defaultSIPPort, ""
		if req != nil {
			if via := req.Via(); via != nil && via.Port > 0 {
				port = via.Port
			}
			key, _ = sip.ServerTxKeyMake(req)
		}
		tg := targetFor(key)
		if key != "" {
			if len(targets) > 1 && tg != targets[0] {
				t.Logf("%s shares its transaction key with %s: sent to %s", name, targets[0].keys[key], tg.n.id)
			}
			tg.keys[key] = name
		}
		conn, err := listenLoopbackUDP(port)
		if err != nil {
			t.Fatalf("%s: bind a socket for the answer on port %d: %v", m.file, port, err)
		}
		sent := time.Now()
		if _, err := conn.WriteToUDP(msg, tg.addr); err != nil {
			conn.Close()
			t.Fatalf("%s: send: %v", m.file, err)
		}
		// The listener parses datagrams in arrival order, so once this probe
		// is answered the torture message has been parsed and handed on.
		tg.serving(t, m.file+" (barrier)")
		deadline := time.Now().Add(tortureGrace)
		if m.kind == tortureValid && !isResponse {
			deadline = sent.Add(tortureAnswerWait)
		}
		ans := readAnswer(conn, callIDs(msg), deadline)
		conn.Close()

		got := ans.String()
		switch {
		case isResponse && ans.final == 0:
			got += " (a response: nothing to answer)"
		case m.kind == tortureValid && ans.final == 0:
			why := "sipgo parses it, but no answer came back"
			if parseErr != nil {
				why = "sipgo's parser rejects it: " + parseErr.Error()
			}
			reason, known := knownUnanswered[name]
			if known {
				why = reason
				got += " (known)"
			}
			unanswered = append(unanswered, fmt.Sprintf("%s (§%s): %s", name, m.section, why))
			if !known {
				t.Errorf("valid %s (RFC 4475 §%s %s) got no answer within %s: %s",
					m.file, m.section, m.title, tortureAnswerWait, why)
			}
		case m.kind == tortureValid:
			if _, ok := knownUnanswered[name]; ok {
				t.Logf("knownUnanswered lists %s, but it was answered %s: remove it", name, got)
			}
		case m.kind == tortureInvalid && ans.final/100 == 2:
			t.Errorf("invalid %s (RFC 4475 §%s %s) was accepted: %s", m.file, m.section, m.title, ans.line)
		case m.kind == tortureInvalid && ans.final == 505 && name == "badvers":
			// RFC 4475 §3.1.2.16 asks for 505 Version Not Supported here.
		case m.kind == tortureInvalid && ans.final != 0 && ans.final/100 != 4:
			got += " (tolerated: expected no answer or a 4xx)"
		}
		report = append(report, fmt.Sprintf("%-8s %-22s §%-8s %s", m.kind, m.file, m.section, got))

		tg.serving(t, "after "+m.file)
	}

	for _, tg := range targets {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := tg.n.status(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s: /api/v1/status after the torture messages: %v", tg.n.id, err)
		}
		select {
		case <-tg.n.done:
			t.Errorf("%s exited: %v\n%s", tg.n.id, tg.n.err, tail(tg.n.log(), 40))
		default:
		}
	}

	t.Logf("%d torture messages on %d node(s) in %s; answers:\n%s", len(tortureMessages), len(targets),
		time.Since(begin).Round(10*time.Millisecond), strings.Join(report, "\n"))
	if len(unanswered) > 0 {
		t.Logf("valid requests left unanswered:\n  %s", strings.Join(unanswered, "\n  "))
	}
}

// tortureTarget is a node under torture and the server transaction keys
// already sent to it.
type tortureTarget struct {
	n      *node
	addr   *net.UDPAddr
	keys   map[string]string // key -> message that used it
	probes int
}

// serving fails the test at once unless the node answers an OPTIONS with 200.
func (tg *tortureTarget) serving(t *testing.T, when string) {
	t.Helper()
	tg.probes++
	err := probeOptions(tg.addr, tg.probes)
	if err == nil {
		return
	}
	select {
	case <-tg.n.done:
		t.Fatalf("%s: %s exited (%v)\n%s", when, tg.n.id, tg.n.err, tail(tg.n.log(), 40))
	default:
	}
	t.Fatalf("%s: %s stopped serving SIP: %v\n%s", when, tg.n.id, err, tail(tg.n.log(), 40))
}

// readTortureMessages reads every file of testdata/torture and checks the
// table classifies each of them.
func readTortureMessages(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "torture", "*", "*.dat"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture messages in testdata/torture (%v)", err)
	}
	data := make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data[filepath.ToSlash(strings.TrimPrefix(f, filepath.Join("testdata", "torture")+string(filepath.Separator)))] = b
	}
	listed := make(map[string]bool)
	for _, m := range tortureMessages {
		if _, ok := data[m.file]; !ok {
			t.Fatalf("torture message %s is missing from testdata/torture", m.file)
		}
		if listed[m.file] {
			t.Fatalf("torture message %s is listed twice", m.file)
		}
		listed[m.file] = true
	}
	for f := range data {
		if !listed[f] {
			t.Fatalf("testdata/torture/%s is not classified in tortureMessages", f)
		}
	}
	for name := range knownUnanswered {
		if !slices.ContainsFunc(tortureMessages, func(m tortureMsg) bool {
			return m.kind == tortureValid && m.file == "valid/"+name+".dat"
		}) {
			t.Fatalf("knownUnanswered names %s, which is not a valid torture message", name)
		}
	}
	return data
}

// listenLoopbackUDP binds port on 127.0.0.1, or on the next loopback
// addresses when something else holds it there (Linux answers the whole
// 127/8).
func listenLoopbackUDP(port int) (*net.UDPConn, error) {
	var first error
	for i := 1; i <= 8; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(i)), Port: port})
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// probeOptions sends an OPTIONS, written out by hand, from a fresh socket
// and wants a 200 within tortureAnswerWait.
func probeOptions(target *net.UDPAddr, seq int) error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	id := fmt.Sprintf("%d-%d", seq, time.Now().UnixNano())
	callID := "torture-probe-" + id + "@127.0.0.1"
	msg := "OPTIONS sip:" + target.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-probe-" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=probe-" + id + "\r\n" +
		"To: <sip:" + target.String() + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.WriteToUDP([]byte(msg), target); err != nil {
		return err
	}
	ans := readAnswer(conn, []string{callID}, time.Now().Add(tortureAnswerWait))
	switch {
	case ans.final == 0:
		return fmt.Errorf("OPTIONS %s", ans)
	case ans.final != 200:
		return fmt.Errorf("OPTIONS answered %q", ans.line)
	}
	return nil
}

// tortureAnswer is what came back for one message.
type tortureAnswer struct {
	final       int    // final status; 0: none
	line        string // its status line
	provisional []int
	stray       int // datagrams for other Call-IDs (late retransmissions)
}

func (a tortureAnswer) String() string {
	s := "no answer"
	if a.final != 0 {
		s = a.line
	}
	if len(a.provisional) > 0 {
		s += fmt.Sprintf(" (after %v)", a.provisional)
	}
	return s
}

var (
	statusLineRE = regexp.MustCompile(`^SIP/[^ \r\n]+ ([0-9]{3})(?: [^\r\n]*)?`)
	callIDRE     = regexp.MustCompile(`(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)`)
)

// callIDs are the Call-ID values in a message's header section.
func callIDs(msg []byte) []string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var ids []string
	for _, m := range callIDRE.FindAllSubmatch(head, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// readAnswer collects responses on conn until a final one for one of ids
// arrives or deadline passes. A message without Call-ID matches responses
// without one. Responses for other calls, such as retransmitted answers to
// an earlier INVITE sent from the same port, are skipped.
func readAnswer(conn *net.UDPConn, ids []string, deadline time.Time) tortureAnswer {
	var ans tortureAnswer
	buf := make([]byte, 65535)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return ans
		}
		nr, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return ans // the deadline, or the socket is gone
		}
		data := buf[:nr]
		m := statusLineRE.FindSubmatch(data)
		if m == nil {
			ans.stray++
			continue
		}
		got := callIDs(data)
		if !(len(ids) == 0 && len(got) == 0) && !slices.ContainsFunc(got, func(id string) bool { return slices.Contains(ids, id) }) {
			ans.stray++
			continue
		}
		code, _ := strconv.Atoi(string(m[1]))
		if code < 200 {
			ans.provisional = append(ans.provisional, code)
			continue
		}
		ans.final, ans.line = code, string(m[0])
		return ans
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
