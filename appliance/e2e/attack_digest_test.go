package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawPhone speaks SIP over UDP from a loopback address of its own, one
// hand-written request at a time, so a test can send exactly what an
// attacker would.
type rawPhone struct {
	t      testing.TB
	conn   *net.UDPConn
	target *net.UDPAddr
	seq    int
}

// newRawPhone binds src (an address, or address:port) and sends to target.
func newRawPhone(t testing.TB, src, target string) *rawPhone {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	laddr := &net.UDPAddr{IP: net.ParseIP(src)}
	if a, err := net.ResolveUDPAddr("udp4", src); err == nil && strings.Contains(src, ":") {
		laddr = a // an address with a port
	}
	conn, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		t.Fatalf("bind %s: %v", src, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPhone{t: t, conn: conn, target: raddr}
}

func (p *rawPhone) local() string { return p.conn.LocalAddr().String() }

// sipAnswer is a final response: its status and header lines.
type sipAnswer struct {
	status int
	line   string
	raw    string
}

// header returns every value of a header (by its full name, any case).
func (a sipAnswer) header(name string) []string {
	var out []string
	head, _, _ := strings.Cut(a.raw, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n")[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

var statusRE = regexp.MustCompile(`^SIP/2\.0 (\d{3})[^\r\n]*`)

// send sends msg (with CRLF line ends) and waits up to 3 s for its final
// answer (by Call-ID); status 0 when none came.
func (p *rawPhone) send(msg string) sipAnswer {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP([]byte(msg), p.target); err != nil {
		p.t.Fatal(err)
	}
	ids := callIDs([]byte(msg))
	buf := make([]byte, 65535)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_ = p.conn.SetReadDeadline(deadline)
		n, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return sipAnswer{}
		}
		data := string(buf[:n])
		m := statusRE.FindStringSubmatch(data)
		if m == nil {
			continue
		}
		got := callIDs(buf[:n])
		if len(got) == 0 || len(ids) == 0 || got[0] != ids[0] {
			continue
		}
		code, _ := strconv.Atoi(m[1])
		if code < 200 {
			continue
		}
		return sipAnswer{status: code, line: m[0], raw: data}
	}
}

// registerMsg is a REGISTER for aor's user (to, at the realm) with contact,
// expires and extra header lines (e.g. an Authorization).
func (p *rawPhone) registerMsg(callID string, cseq int, toUser, contact string, expires int, extra ...string) string {
	p.seq++
	lines := []string{
		"REGISTER sip:acme.example SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-atk%d-%d;rport", p.local(), time.Now().UnixNano(), p.seq),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:%s@acme.example>;tag=atk%d", toUser, p.seq),
		fmt.Sprintf("To: <sip:%s@acme.example>", toUser),
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d REGISTER", cseq),
		"Contact: " + contact,
		fmt.Sprintf("Expires: %d", expires),
	}
	lines = append(lines, extra...)
	return strings.Join(append(lines, "Content-Length: 0", "", ""), "\r\n")
}

// challenge is a parsed WWW-Authenticate/Proxy-Authenticate.
type challenge struct {
	realm, nonce string
	stale        bool
}

var (
	nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)
	realmRE = regexp.MustCompile(`realm="([^"]+)"`)
)

func (a sipAnswer) challenge(t testing.TB, header string) challenge {
	t.Helper()
	hs := a.header(header)
	if len(hs) == 0 {
		t.Fatalf("%q carries no %s:\n%s", a.line, header, a.raw)
	}
	h := hs[0]
	c := challenge{stale: strings.Contains(strings.ToLower(h), "stale=true")}
	if m := nonceRE.FindStringSubmatch(h); m != nil {
		c.nonce = m[1]
	}
	if m := realmRE.FindStringSubmatch(h); m != nil {
		c.realm = m[1]
	}
	return c
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// digestAuth is an Authorization header line with qop=auth (RFC 2617 /
// RFC 3261 §22.4), MD5, for user with password.
func digestAuth(header, user, password, realm, nonce, method, uri, nc string) string {
	cnonce := "c0ffee" + nc
	ha1 := md5hex(user + ":" + realm + ":" + password)
	resp := md5hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + md5hex(method+":"+uri))
	return fmt.Sprintf(`%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s"`,
		header, user, realm, nonce, uri, resp, nc, cnonce)
}

// forgeNonce mints a nonce the way the nodes do (registrar/nonce.go, with
// the key node/sip.go derives from the admin token, which the test knows),
// issued at issued, for realm. A nonce the node must tell from its own
// only by its age or its realm.
func forgeNonce(token, realm string, issued time.Time) string {
	secret := sha256.Sum256([]byte("outpost sip digest nonce v1\x00" + token))
	km := hmac.New(sha256.New, secret[:])
	km.Write([]byte("outpost registrar nonce key v1"))
	key := km.Sum(nil)
	var raw [36]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(issued.UnixNano()))
	_, _ = rand.Read(raw[8:20])
	m := hmac.New(sha256.New, key)
	m.Write([]byte("outpost nonce v1"))
	m.Write(raw[:20])
	m.Write([]byte(realm))
	copy(raw[20:], m.Sum(nil)[:16])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Digest attacks at a running node, each crafted by hand over UDP from an
// address of its own:
//   - a captured REGISTER replayed (its Authorization unchanged, in a new
//     transaction, even with another Contact) is refused: 401 stale=true;
//   - a nonce of the node's own making but 6 minutes old, with the right
//     password, is stale (401 stale=true); so is one dated 6 minutes ahead;
//   - a nonce made for another realm, or credentials for another realm,
//     are refused (401, not stale) like a forgery;
//   - alice's right credentials for bob's address: 403;
//   - Contact: * (remove every binding) without credentials: 401, and
//     with bob's credentials for alice's address: 403; alice's binding
//     stays throughout.
func TestAttackDigest(t *testing.T) {
	n := startNode(t, "digest", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)), logLevel: "info"})
	waitRevision(t, []*node{n}, 1)
	alice := newRawPhone(t, "127.0.0.51", n.sipUDP)
	contact := fmt.Sprintf("<sip:alice@%s>", alice.local())
	auth := func(user, password, realm, nonce, nc string) string {
		return digestAuth("Authorization", user, password, realm, nonce, "REGISTER", "sip:acme.example", nc)
	}
	var report []string
	check := func(what string, a sipAnswer, status int, stale bool) {
		t.Helper()
		got := a.line
		if a.status == 0 {
			got = "no answer"
		}
		if a.status != status {
			t.Errorf("%s: %s, want %d", what, got, status)
		} else if status == 401 && alice.staleOf(t, a) != stale {
			t.Errorf("%s: %s with stale=%v, want stale=%v", what, got, !stale, stale)
		}
		if a.status == 401 && alice.staleOf(t, a) {
			got += " (stale=true)"
		}
		report = append(report, fmt.Sprintf("%s: %s", what, got))
	}

	// Alice registers properly; the attacker captures her second REGISTER.
	callID := fmt.Sprintf("reg-%d@127.0.0.51", time.Now().UnixNano())
	first := alice.send(alice.registerMsg(callID, 1, "alice", contact, 300))
	if first.status != 401 {
		t.Fatalf("first REGISTER: %q, want 401", first.line)
	}
	ch := first.challenge(t, "WWW-Authenticate")
	captured := auth("alice", "pw-alice", ch.realm, ch.nonce, "00000001")
	if a := alice.send(alice.registerMsg(callID, 2, "alice", contact, 300, captured)); a.status != 200 {
		t.Fatalf("alice's authenticated REGISTER: %q", a.line)
	}
	bindings := func() int {
		t.Helper()
		st, err := n.status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Registrations
	}
	eventually(t, 10*time.Second, "alice's registration in the status", func(context.Context) error {
		if got := bindings(); got != 1 {
			return fmt.Errorf("%d registrations", got)
		}
		return nil
	})

	attacker := newRawPhone(t, "127.0.0.52", n.sipUDP)
	evil := fmt.Sprintf("<sip:alice@%s>", attacker.local())
	check("replayed Authorization, same Call-ID, next CSeq",
		attacker.send(attacker.registerMsg(callID, 3, "alice", contact, 300, captured)), 401, true)
	check("replayed Authorization, new Call-ID, the attacker's Contact",
		attacker.send(attacker.registerMsg("evil-"+callID, 1, "alice", evil, 300, captured)), 401, true)

	old := forgeNonce(testToken, "acme.example", time.Now().Add(-6*time.Minute))
	check("a node's nonce 6 minutes old, right password",
		attacker.send(attacker.registerMsg("stale-"+callID, 1, "alice", evil, 300, auth("alice", "pw-alice", "acme.example", old, "00000001"))), 401, true)
	ahead := forgeNonce(testToken, "acme.example", time.Now().Add(6*time.Minute))
	check("a node's nonce dated 6 minutes ahead, right password",
		attacker.send(attacker.registerMsg("ahead-"+callID, 1, "alice", evil, 300, auth("alice", "pw-alice", "acme.example", ahead, "00000001"))), 401, true)
	other := forgeNonce(testToken, "other.example", time.Now())
	check("a nonce made for another realm",
		attacker.send(attacker.registerMsg("realm-"+callID, 1, "alice", evil, 300, auth("alice", "pw-alice", "acme.example", other, "00000001"))), 401, false)
	foreign := forgeNonce("another-cluster-token-0123456789", "acme.example", time.Now())
	check("a nonce of another cluster (another admin token)",
		attacker.send(attacker.registerMsg("foreign-"+callID, 1, "alice", evil, 300, auth("alice", "pw-alice", "acme.example", foreign, "00000001"))), 401, false)
	fresh := attacker.send(attacker.registerMsg("fresh-"+callID, 1, "alice", evil, 300)).challenge(t, "WWW-Authenticate")
	check("credentials for another realm",
		attacker.send(attacker.registerMsg("fresh-"+callID, 2, "alice", evil, 300, auth("alice", "pw-alice", "other.example", fresh.nonce, "00000001"))), 401, false)

	// Bob's own credentials, for alice's address.
	bobCall := "bob-" + callID
	bc := attacker.send(attacker.registerMsg(bobCall, 1, "alice", evil, 300)).challenge(t, "WWW-Authenticate")
	check("bob's right credentials for alice's address",
		attacker.send(attacker.registerMsg(bobCall, 2, "alice", evil, 300, auth("bob", "pw-bob", bc.realm, bc.nonce, "00000001"))), 403, false)

	// Contact: * removes every binding of the AOR: only its owner may.
	check("Contact: * without credentials",
		attacker.send(attacker.registerMsg("star-"+callID, 1, "alice", "*", 0)), 401, false)
	sc := attacker.send(attacker.registerMsg("star2-"+callID, 1, "alice", "*", 0)).challenge(t, "WWW-Authenticate")
	check("Contact: * with bob's credentials for alice's address",
		attacker.send(attacker.registerMsg("star2-"+callID, 2, "alice", "*", 0, auth("bob", "pw-bob", sc.realm, sc.nonce, "00000001"))), 403, false)

	if got := bindings(); got != 1 {
		t.Errorf("%d registrations after the attacks, want alice's 1", got)
	}
	if bs := apiGet(t, n, "/api/v1/bindings"); !strings.Contains(bs, alice.local()) || strings.Contains(bs, attacker.local()) {
		t.Errorf("bindings after the attacks: want alice's contact (%s) and not the attacker's (%s):\n%s", alice.local(), attacker.local(), bs)
	}
	t.Logf("digest attacks against %s:\n  %s", n.id, strings.Join(report, "\n  "))
}

// staleOf reports whether a 401's challenge says stale=true.
func (p *rawPhone) staleOf(t testing.TB, a sipAnswer) bool {
	t.Helper()
	return a.challenge(t, "WWW-Authenticate").stale
}

// apiGet GETs an API path with the admin token and returns the body; any
// status but 200 fails the test.
func apiGet(t testing.TB, n *node, path string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}
