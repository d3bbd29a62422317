package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The fault suite (issue 11, `make chaos`; docs/reliability.md, "Faults"):
// three nodes in three network namespaces (netns_test.go), phones written
// with sipgo in the same namespaces, and the faults: partitions, kill -9,
// SIGSTOP, a full disk, a torn write. Each test records what the cluster
// acknowledged (revisions, registrations, call records) and checks that
// none of it is lost or doubled afterwards.
//
// The slow ones run only with OUTPOST_CHAOS=1 (make chaos sets it), so
// `make e2e` keeps its time; chaosSlow says which.

// chaosSlow skips a slow fault test unless OUTPOST_CHAOS=1.
func chaosSlow(t *testing.T) {
	t.Helper()
	if os.Getenv("OUTPOST_CHAOS") != "1" {
		t.Skip("a slow fault test: runs with OUTPOST_CHAOS=1 (make chaos)")
	}
}

// chaosCluster is three nodes, each in a namespace of its own: n1 (hq,
// bootstrapped with the account), n2 (hq) and n3 (branch), joined
// through n1.
type chaosCluster struct {
	t     *testing.T
	lab   *netLab
	nodes []*node
}

// newChaosCluster forms the cluster with doc as revision 1 (or the
// document's revision); each(id, &opts) may change a node's options.
func newChaosCluster(t *testing.T, doc []byte, each func(id string, o *nodeOpts)) *chaosCluster {
	t.Helper()
	lab := newNetLab(t, "n1", "n2", "n3")
	c := &chaosCluster{t: t, lab: lab}
	boot := writeFile(t, "account.json", doc)
	sites := map[string]string{"n1": "hq", "n2": "hq", "n3": "branch"}
	for _, h := range lab.hosts {
		// Registrations last an hour in every mode (the defaults grant a
		// minute in normal, two in survivability): a registration
		// acknowledged early in a test is still live when it checks.
		o := nodeOpts{site: sites[h.name], netns: h.ns, host: h.ip, logLevel: os.Getenv("OUTPOST_CHAOS_LOG"),
			env: []string{"OUTPOST_SIP_FAILBACK_EXPIRES=1h", "OUTPOST_SIP_SURVIVABILITY_EXPIRES=1h"}}
		if h.name == "n1" {
			o.bootstrapSnapshot = boot
		} else {
			o.join = []string{c.nodes[0].httpAddr}
		}
		if each != nil {
			each(h.name, &o)
		}
		n := startNode(t, h.name, o)
		c.nodes = append(c.nodes, n)
		if h.name == "n1" {
			eventually(t, 60*time.Second, "n1 ready", func(ctx context.Context) error {
				st, err := n.status(ctx)
				if err == nil && !st.Ready {
					err = errors.New(st.NotReadyReason)
				}
				return err
			})
		}
	}
	faultDumpLogs(t, c.nodes)
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if strings.Contains(n.log(), "WARNING: DATA RACE") {
				t.Errorf("%s reported a data race (its log is above if the test failed otherwise)", n.id)
			}
		}
	})
	waitHealthyMembers(t, c.nodes, 90*time.Second)
	snap, err := account.DecodeBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	waitRevision(t, c.nodes, snap.Revision)
	return c
}

// poll is eventually without failing: it returns cond's last error if
// cond never returned nil within the time.
func poll(within time.Duration, cond func(ctx context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// host is the namespace node n runs in.
func (c *chaosCluster) host(n *node) *labHost { return c.lab.host(n.id) }

// leader waits until the nodes among which agree on one leader among them.
func (c *chaosCluster) leader(among []*node, within time.Duration) *node {
	c.t.Helper()
	return faultWaitLeader(c.t, among, within)
}

// waitLeaderChange measures how long after since the nodes among agree on
// a leader other than old.
func (c *chaosCluster) waitLeaderChange(among []*node, old *node, since time.Time, within time.Duration) (*node, time.Duration) {
	c.t.Helper()
	var l *node
	eventually(c.t, within, "a new leader other than "+old.id, func(ctx context.Context) error {
		var err error
		if l, err = leaderOf(ctx, among); err != nil {
			return err
		}
		if l == old {
			return fmt.Errorf("%s still leads", old.id)
		}
		for _, n := range among {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Leader != l.id || !st.Quorum {
				return fmt.Errorf("%s sees leader %q quorum=%v", n.id, st.Leader, st.Quorum)
			}
		}
		return nil
	})
	return l, time.Since(since)
}

// chaosPhone is a desk phone written with sipgo, in a node's namespace: it
// registers from the UDP port it listens on, answers every call (200 with
// SDP) and hangs up its own calls.
type chaosPhone struct {
	t        *testing.T
	user     string
	password string
	node     *node // where it registers and calls
	client   *sipgo.Client
	ip       string
	port     int
	calls    *sipgo.DialogClientCache
	answers  *sipgo.DialogServerCache
	mu       sync.Mutex
	answered int
}

func newChaosPhone(t *testing.T, h *labHost, n *node, user string) *chaosPhone {
	t.Helper()
	conn, err := h.listenPacket(0)
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("chaos-" + user))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	// Every request leaves through the socket made in the namespace (a
	// socket sipgo made itself would be in the test's own).
	client, err := sipgo.NewClient(ua, sipgo.WithClientAddr(addr.String()), sipgo.WithClientConnectionAddr(addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosPhone{t: t, user: user, password: account.GeneratedPassword(user), node: n, client: client,
		ip: addr.IP.String(), port: addr.Port}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.ip, Port: p.port}}
	p.calls = sipgo.NewDialogClientCache(client, contact)
	p.answers = sipgo.NewDialogServerCache(client, contact)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		ds, err := p.answers.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		if ds.RespondSDP(p.sdp()) == nil {
			p.mu.Lock()
			p.answered++
			p.mu.Unlock()
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.answers.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.answers.ReadBye(req, tx) == nil || p.calls.ReadBye(req, tx) == nil {
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { ua.Close(); conn.Close() })
	// Requests may go only once the socket is in sipgo's pool: until then
	// sipgo would open a socket of its own, in the test's namespace, where
	// the phone's address does not exist.
	for deadline := time.Now().Add(10 * time.Second); ua.TransportLayer().Pool("udp").Size() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("phone %s: sipgo does not serve its socket", user)
		}
		time.Sleep(time.Millisecond)
	}
	return p
}

func (p *chaosPhone) sdp() []byte {
	return fmt.Appendf(nil, "v=0\r\no=%s 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", p.user, p.ip, p.ip, p.port+1)
}

// registerAs registers user's AOR from this phone's socket with the
// contact sip:user@ip:port (so one socket can stand for many phones),
// answering the challenge, and returns the final status.
func (p *chaosPhone) registerAs(ctx context.Context, user string, expires int) (int, error) {
	aor := sip.Uri{Scheme: "sip", User: user, Host: "acme.example"}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "acme.example"})
	req.SetDestination(p.node.sipUDP)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.ip, Port: p.port}})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res, err := p.client.Do(ctx, req)
	if err == nil && res.StatusCode == 401 {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: account.GeneratedPassword(user)})
	}
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// register registers the phone's own user, retrying while the socket is
// not served yet or the node answers otherwise, and fails the test if
// it never succeeds.
func (p *chaosPhone) register(within time.Duration) {
	p.t.Helper()
	eventually(p.t, within, p.user+" registers on "+p.node.id, func(ctx context.Context) error {
		code, err := p.registerAs(ctx, p.user, 3600)
		if err == nil && code != 200 {
			err = fmt.Errorf("REGISTER answered %d", code)
		}
		return err
	})
}

// contact is the contact URI the phone registers for its user.
func (p *chaosPhone) contact() string {
	return fmt.Sprintf("sip:%s@%s:%d", p.user, p.ip, p.port)
}

// call dials, answers the 407, waits for the answer, acknowledges it,
// talks for hold and hangs up. It returns the call's Call-ID (the journal
// record's call_id) once the BYE is answered.
func (p *chaosPhone) call(ctx context.Context, dial string, hold time.Duration) (string, error) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: dial, Host: "acme.example"})
	req.SetDestination(p.node.sipUDP)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp())
	s, err := p.calls.WriteInvite(ctx, req)
	if err != nil {
		return "", fmt.Errorf("%s calls %s: %w", p.user, dial, err)
	}
	defer s.Close()
	callID := s.InviteRequest.CallID().Value()
	if err := s.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.user, Password: p.password}); err != nil {
		return callID, fmt.Errorf("%s calls %s: %w", p.user, dial, err)
	}
	if err := s.Ack(ctx); err != nil {
		return callID, fmt.Errorf("%s acks %s: %w", p.user, dial, err)
	}
	time.Sleep(hold)
	if err := s.Bye(ctx); err != nil {
		return callID, fmt.Errorf("%s hangs up on %s: %w", p.user, dial, err)
	}
	return callID, nil
}

func (p *chaosPhone) answeredCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answered
}

// chaosBindings is GET /api/v1/bindings of n: every live binding.
func chaosBindings(ctx context.Context, n *node) ([]webBinding, error) {
	var body struct {
		Bindings []webBinding `json:"bindings"`
	}
	if err := chaosGet(ctx, n, "/api/v1/bindings", &body); err != nil {
		return nil, err
	}
	return body.Bindings, nil
}

// chaosGet GETs path from n's API, with the token, into v.
func chaosGet(ctx context.Context, n *node, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.httpAddr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on %s: HTTP %d: %s", path, n.id, res.StatusCode, data)
	}
	return json.Unmarshal(data, v)
}

// webBinding is what the checks read of a binding.
type webBinding struct {
	ID       string `json:"id"`
	AOR      string `json:"aor"`
	Username string `json:"username"`
	Contact  string `json:"contact"`
	Node     string `json:"node"`
}

// chaosJournal is every call record n holds (GET /api/v1/journal, all
// pages).
func chaosJournal(ctx context.Context, n *node) ([]store.CallRecord, error) {
	recs, err := n.client().Journal(ctx, 1000)
	if err != nil {
		return nil, err
	}
	if len(recs) >= 1000 {
		return nil, errors.New("more than 1,000 call records: the checks read one page")
	}
	return recs, nil
}

// checkBindings checks that n holds, for each AOR user@acme.example in
// want, exactly one live binding, with that contact: nothing lost, nothing
// doubled.
func checkBindings(ctx context.Context, n *node, want map[string]string) error {
	bs, err := chaosBindings(ctx, n)
	if err != nil {
		return err
	}
	got := map[string][]string{}
	for _, b := range bs {
		got[b.Username] = append(got[b.Username], b.Contact)
	}
	var problems []string
	for user, contact := range want {
		switch cs := got[user]; {
		case len(cs) == 0:
			problems = append(problems, user+": no binding")
		case len(cs) > 1:
			problems = append(problems, fmt.Sprintf("%s: %d bindings %q", user, len(cs), cs))
		case cs[0] != contact:
			problems = append(problems, fmt.Sprintf("%s: contact %s, want %s", user, cs[0], contact))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", n.id, strings.Join(problems, "; "))
	}
	return nil
}

// checkRecords checks that n holds exactly one call record for each
// Call-ID in callIDs, answered.
func checkRecords(ctx context.Context, n *node, callIDs []string) error {
	recs, err := chaosJournal(ctx, n)
	if err != nil {
		return err
	}
	count := map[string]int{}
	ids := map[string]int{}
	for _, r := range recs {
		count[r.CallID]++
		ids[r.ID]++
	}
	var problems []string
	for _, id := range callIDs {
		if count[id] != 1 {
			problems = append(problems, fmt.Sprintf("call %s: %d records", id, count[id]))
		}
	}
	for id, k := range ids {
		if k > 1 {
			problems = append(problems, fmt.Sprintf("record id %s listed %d times", id, k))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", n.id, strings.Join(problems, "; "))
	}
	return nil
}
