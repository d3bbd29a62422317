package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// The fault tests of the cloud sync (issue 4): the leader killed -9 in the
// middle of the journal upload and in the middle of a sync. After recovery
// the cloud holds every record exactly once and every node sits at the
// cloud's revision.

// faultTap is an HTTP proxy between the WAN and the cloud that lets a
// test act at a chosen step of the protocol: when a request (before the
// cloud sees it) or an answer (after the cloud has acted, before the
// appliance sees it) matches, it fires, and holds the exchange until
// released if asked (the held exchange is then dropped: the appliance
// never gets the answer, or the cloud never gets the request). It counts
// the journal batches the cloud answered by replaying its first answer.
type faultTap struct {
	addr string

	mu       sync.Mutex
	hook     *faultHook // armed, not fired yet
	armed    []*faultHook
	replayed int
}

// faultEvent is what a hook sees: a request on its way to the cloud
// (Answer false), or the cloud's answer to it.
type faultEvent struct {
	Answer       bool
	Method, Path string
	Body         []byte // the request's
	Status       int    // the answer's
	Header       http.Header
}

type faultHook struct {
	match    func(faultEvent) bool
	hold     bool
	fired    chan struct{}
	released chan struct{}
	once     sync.Once
}

// release lets a held exchange go (to be dropped), and disarms the hook.
func (h *faultHook) release() { h.once.Do(func() { close(h.released) }) }

type faultBodyKey struct{}

var errFaultDropped = errors.New("dropped by the fault tap")

func startFaultTap(t *testing.T, upstream string) *faultTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &faultTap{addr: ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	proxy.ModifyResponse = func(res *http.Response) error {
		body, _ := res.Request.Context().Value(faultBodyKey{}).([]byte)
		if res.Request.URL.Path == "/v1/sync/journal" && res.Header.Get("Idempotent-Replayed") == "true" {
			tap.mu.Lock()
			tap.replayed++
			tap.mu.Unlock()
		}
		return tap.act(faultEvent{Answer: true, Method: res.Request.Method, Path: res.Request.URL.Path,
			Body: body, Status: res.StatusCode, Header: res.Header})
	}
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, errFaultDropped) {
			panic(http.ErrAbortHandler) // the appliance never gets the answer
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if tap.act(faultEvent{Method: r.Method, Path: r.URL.Path, Body: body, Header: r.Header}) != nil {
				panic(http.ErrAbortHandler) // the cloud never gets the request
			}
			proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), faultBodyKey{}, body)))
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		tap.mu.Lock()
		armed := tap.armed
		tap.hook, tap.armed = nil, nil
		tap.mu.Unlock()
		for _, h := range armed {
			h.release()
		}
		_ = srv.Close()
	})
	return tap
}

// on arms a hook firing at the first event matching (once): fired is
// closed then; with hold, the exchange waits until release is called, and
// is dropped.
func (tap *faultTap) on(hold bool, match func(faultEvent) bool) (fired <-chan struct{}, release func()) {
	h := &faultHook{match: match, hold: hold, fired: make(chan struct{}), released: make(chan struct{})}
	tap.mu.Lock()
	tap.hook = h
	tap.armed = append(tap.armed, h)
	tap.mu.Unlock()
	return h.fired, func() {
		tap.mu.Lock()
		if tap.hook == h {
			tap.hook = nil
		}
		tap.mu.Unlock()
		h.release()
	}
}

// act fires the armed hook if e matches, and holds e if asked.
func (tap *faultTap) act(e faultEvent) error {
	tap.mu.Lock()
	h := tap.hook
	if h == nil || !h.match(e) {
		tap.mu.Unlock()
		return nil
	}
	tap.hook = nil
	tap.mu.Unlock()
	close(h.fired)
	if !h.hold {
		return nil
	}
	<-h.released
	return errFaultDropped
}

// journalReplays is how many journal batches the cloud answered with its
// first answer again (the batch was sent before under the same key).
func (tap *faultTap) journalReplays() int {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return tap.replayed
}

// waitFired waits for a hook to fire.
func waitFired(t *testing.T, fired <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(within):
		t.Fatalf("%s: not within %v", what, within)
	}
}

// faultCloudConfig is the cloud: section of the fault tests: probes every
// 200 ms, an outage after 1 s, a recovery after 1 s.
// faultCluster pairs a 3-node cluster with cloud, its link through link,
// dumps the nodes' logs if the test fails, and waits until every node
// serves the cloud's revision rev (within within, which took) and is in
// mode normal.
func faultCluster(ctx context.Context, t *testing.T, cloud *cloudServer, link *wan, within time.Duration) (nodes []*node, rev int64, took time.Duration) {
	t.Helper()
	creds := pairCluster(t, cloud, "acme-hq")
	nodes = formClusterWith(t, nodeOpts{cloudCredentials: creds, cloud: faultCloudConfig(link)})
	faultDumpLogs(t, nodes)
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took = waitAllAt(t, nodes, rev, within)
	waitAllMode(t, nodes, "normal", 10*time.Second)
	return nodes, rev, took
}

func faultCloudConfig(link *wan) string {
	return fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n", link.url())
}

// faultJournalRecords is how many call records the upload test journals:
// three batches of protocol.MaxJournalBatch, so the leader can be killed in
// the middle of the upload, with a batch after it. (Measured on 2 cores
// with -race: 20,000 records take 10 to 25 s to journal through Raft and
// 10 to 28 s to upload; 40,000 made the test last over a minute.)
// faultRecordsPerCommand is how many a Raft entry carries.
const (
	faultJournalRecords    = 3 * protocol.MaxJournalBatch
	faultRecordsPerCommand = 1000
)

// faultCallRecords makes n distinct call records, each ending 1 ms after
// the last, so the upload order (oldest end first) is the same on every node.
func faultCallRecords(n int) []store.CallRecord {
	base := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	rs := make([]store.CallRecord, n)
	for i := range rs {
		start := base.Add(time.Duration(i) * time.Millisecond)
		rs[i] = store.CallRecord{
			ID:          fmt.Sprintf("%08x-fa17-4000-8000-%012x", i, i),
			CallID:      fmt.Sprintf("fault-%d@127.0.0.1", i),
			Caller:      "alice",
			Callee:      "bob",
			Dialled:     "1002",
			Destination: "user",
			Start:       start,
			Answer:      start.Add(time.Second),
			End:         start.Add(time.Minute),
			Disposition: "answered",
			Status:      200,
			Node:        "n1",
			Site:        "hq",
		}
	}
	return rs
}

// faultCloudJournalIDs lists the ids of the records the cloud holds for
// appliance, in the order it holds them, following the listing's pages.
func faultCloudJournalIDs(ctx context.Context, cloud *cloudServer, appliance string) ([]string, error) {
	ids := []string{}
	after := ""
	for pages := 1; ; pages++ {
		q := url.Values{"appliance": {appliance}, "limit": {"10000"}}
		if after != "" {
			q.Set("after", after)
		}
		body, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/journal?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Records []struct {
				ID string `json:"id"`
			} `json:"records"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Records {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids, nil
		}
		if pages > 1000 {
			return nil, fmt.Errorf("the journal listing of %s goes on past %d pages (next %q)", appliance, pages, page.Next)
		}
		after = page.Next
	}
}

// faultDumpLogs writes the nodes' logs to the test's output if it
// fails.
func faultDumpLogs(t *testing.T, nodes []*node) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			t.Logf("log of %s:\n%s", n.id, n.log())
		}
	})
}

// faultCheckNoErrors is checkNoErrors but for Raft's complaints that it
// cannot reach the peer the test killed.
func faultCheckNoErrors(nodes []*node) error {
	var errs []error
	for _, n := range nodes {
		for _, line := range strings.Split(n.log(), "\n") {
			if strings.Contains(line, "level=ERROR") && !strings.Contains(line, " component=raft ") {
				errs = append(errs, fmt.Errorf("%s logged an error: %s", n.id, line))
			}
		}
	}
	return errors.Join(errs...)
}

// faultWaitLeader waits until the nodes agree on a leader among them and
// returns it.
func faultWaitLeader(t *testing.T, nodes []*node, within time.Duration) *node {
	t.Helper()
	var leader *node
	eventually(t, within, "a leader among the survivors", func(ctx context.Context) error {
		var err error
		leader, err = leaderOf(ctx, nodes)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Leader != leader.id {
				return fmt.Errorf("%s sees leader %q, %s sees %q", n.id, st.Leader, nodes[0].id, leader.id)
			}
		}
		return nil
	})
	return leader
}

var faultUploadedRE = regexp.MustCompile(`msg="journal batch uploaded" .*records=(\d+) accepted=(\d+) duplicates=(\d+)`)

// faultUploadedBatches sums the journal batches a node's log says the cloud
// took: the records sent, and those the cloud said it already had (a
// replayed batch repeats the first answer: its records count as accepted).
func faultUploadedBatches(logs string) (batches, records, duplicates int) {
	for _, m := range faultUploadedRE.FindAllStringSubmatch(logs, -1) {
		r, _ := strconv.Atoi(m[1])
		d, _ := strconv.Atoi(m[3])
		batches, records, duplicates = batches+1, records+r, duplicates+d
	}
	return batches, records, duplicates
}

// The leader is killed -9 in the middle of the upload of a large outage
// journal (three batches): the cloud has stored the second batch, and the
// tap holds its answer, so the leader never marks it. The two others elect
// a leader, which sends that batch again (the cloud answers it from its
// first answer) and the rest; the killed node comes back. The cloud then
// holds every record exactly once, no node has anything pending, and every
// node is back in mode normal.
func TestCloudJournalUploadLeaderKilled(t *testing.T) {
	began := time.Now()
	cloud := startCloud(t, demoSnapshot(t))
	tap := startFaultTap(t, cloud.addr)
	link := startWAN(t, tap.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, rev, _ := faultCluster(ctx, t, cloud, link, 30*time.Second)

	// The WAN is cut; meanwhile the cluster journals many calls, through
	// the path nodes share their call records by.
	link.cut()
	waitAllMode(t, nodes, "survivability", 20*time.Second)
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	records := faultCallRecords(faultJournalRecords)
	loadStart := time.Now()
	for i := 0; i < len(records); i += faultRecordsPerCommand {
		cmd, err := cluster.EncodeCallRecords(records[i:min(i+faultRecordsPerCommand, len(records))])
		if err != nil {
			t.Fatal(err)
		}
		// Under load the leadership may move: propose to the leader of
		// the moment, again if need be (a record stored twice is stored
		// once).
		eventually(t, 30*time.Second, fmt.Sprintf("call records %d.. journalled", i), func(context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			l, err := faultLeader(ctx, nodes, leader)
			if err != nil {
				return err
			}
			leader = l
			return leader.client().ApplyShared(ctx, cmd)
		})
	}
	for _, n := range nodes {
		eventually(t, 30*time.Second, n.id+" holds the whole journal, pending", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err == nil && st.JournalPending != len(records) {
				err = fmt.Errorf("journal_pending %d, want %d", st.JournalPending, len(records))
			}
			return err
		})
	}
	t.Logf("%d call records journalled in %v", len(records), time.Since(loadStart).Round(time.Millisecond))

	// The WAN heals: the leader uploads. Once the cloud has stored the
	// second batch, its answer is held and the leader killed.
	batches := 0
	fired, release := tap.on(true, func(e faultEvent) bool {
		if e.Answer && e.Path == "/v1/sync/journal" && e.Status == http.StatusOK {
			batches++
		}
		return batches == 2
	})
	defer release()
	link.heal()
	uploadStart := time.Now()
	waitFired(t, fired, 60*time.Second, "the cloud's answer to the second journal batch")
	if leader, err = faultLeader(ctx, nodes, leader); err != nil {
		t.Fatal(err)
	}
	st, err := leader.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := leader
	killed.kill()
	release()
	killedLog := killed.log()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s until it was killed:\n%s", killed.id, killedLog)
		}
	})
	// Two batches in the cloud, one marked (unless the leadership moved
	// on its own meanwhile, under load).
	stored, err := faultCloudJournalIDs(ctx, cloud, "acme-hq")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader %s %v after the heal; the cloud held %d of %d records, %d marked uploaded", killed.id,
		time.Since(uploadStart).Round(time.Millisecond), len(stored), len(records), len(records)-st.JournalPending)

	// The two others elect a leader, which carries on; the killed node
	// comes back.
	next := faultWaitLeader(t, others(nodes, killed), 30*time.Second)
	killed.restart()
	for _, n := range nodes {
		eventually(t, 60*time.Second, n.id+" has nothing pending", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err == nil && st.JournalPending != 0 {
				err = fmt.Errorf("journal_pending %d", st.JournalPending)
			}
			return err
		})
	}
	t.Logf("new leader %s; the journal drained %v after the heal", next.id, time.Since(uploadStart).Round(time.Millisecond))
	waitAllMode(t, nodes, "normal", 30*time.Second)
	waitAllAt(t, nodes, rev, 10*time.Second)

	// The cloud holds every record exactly once.
	ids, err := faultCloudJournalIDs(ctx, cloud, "acme-hq")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int, len(ids))
	for _, id := range ids {
		seen[id]++
	}
	var missing, twice []string
	for _, r := range records {
		if seen[r.ID] == 0 {
			missing = append(missing, r.ID)
		}
	}
	for id, k := range seen {
		if k > 1 {
			twice = append(twice, id)
		}
	}
	if len(ids) != len(records) || len(missing) > 0 || len(twice) > 0 {
		t.Errorf("the cloud holds %d records, want %d: %d missing (%.3q), %d more than once (%.3q)",
			len(ids), len(records), len(missing), missing, len(twice), twice)
	}
	// The batch whose answer was lost was sent again under the same key,
	// and the cloud answered it from its first answer.
	if n := tap.journalReplays(); n < 1 {
		t.Errorf("the cloud replayed %d journal batches, want the one whose answer was lost", n)
	} else {
		t.Logf("the cloud answered %d journal batch(es) sent again from its first answer", n)
	}
	for _, n := range nodes {
		logs := n.log()
		if n == killed {
			logs = killedLog + logs
		}
		if b, r, d := faultUploadedBatches(logs); b > 0 {
			t.Logf("%s: %d batches uploaded, %d records, %d duplicates", n.id, b, r, d)
		}
	}
	if err := faultCheckNoErrors(nodes); err != nil {
		t.Error(err)
	}
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// faultAck is an appliance's last ack as GET /v1/admin/appliances shows it.
type faultAck struct {
	Revision int64  `json:"revision"`
	Status   string `json:"status"`
	NodeID   string `json:"node_id"`
}

func faultLastAck(ctx context.Context, cloud *cloudServer, appliance string) (*faultAck, error) {
	body, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/appliances", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Appliances []struct {
			Name    string    `json:"name"`
			LastAck *faultAck `json:"last_ack"`
		} `json:"appliances"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	for _, a := range list.Appliances {
		if a.Name == appliance {
			return a.LastAck, nil
		}
	}
	return nil, fmt.Errorf("the cloud knows no appliance %q", appliance)
}

// faultPutSnapshot PUTs doc as the cloud's snapshot and returns the new
// revision.
func faultPutSnapshot(t *testing.T, ctx context.Context, cloud *cloudServer, doc []byte) int64 {
	t.Helper()
	out, err := cloud.admin(ctx, http.MethodPut, "/v1/admin/snapshot", doc)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.Revision
}

// faultLeader is the leader as the node last thought leader sees it (the
// leadership may move on its own under load).
func faultLeader(ctx context.Context, nodes []*node, last *node) (*node, error) {
	st, err := last.status(ctx)
	if err == nil {
		for _, n := range nodes {
			if n.id == st.Leader {
				return n, nil
			}
		}
	}
	return leaderOf(ctx, nodes)
}

// The leader is killed -9 in the middle of a sync of a large account
// (10,000 users, applying a revision takes seconds under -race), twice: as
// soon as the cloud's changes have reached it (it is applying them), and
// once it has applied the revision through Raft but before the cloud has
// its ack (the tap holds the ack, which is lost). Each time the two others
// elect a leader, which syncs, and the killed node comes back. Every node
// then serves the cloud's revision, the same document, and the cloud's
// last ack is that revision, applied.
func TestCloudSyncLeaderKilled(t *testing.T) {
	began := time.Now()
	snap := account.Generate(account.GenerateOptions{Users: 10000, Seed: 1})
	seed, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cloud := startCloud(t, seed)
	tap := startFaultTap(t, cloud.addr)
	link := startWAN(t, tap.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, rev, took := faultCluster(ctx, t, cloud, link, 60*time.Second)
	t.Logf("the 10k-user seed (%d KiB) reached every node in %v", len(seed)>>10, took.Round(time.Millisecond))
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}

	for round, when := range []string{"as it applies the changes", "after it applied them, its ack held"} {
		// A whole new snapshot in the cloud: every tenth user renamed.
		for i := 0; i < len(snap.Users); i += 10 {
			snap.Users[i].Name = fmt.Sprintf("User %d, round %d", i, round+1)
		}
		doc, err := snap.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var fired <-chan struct{}
		var release func()
		var acker string // who sent the held ack
		if round == 0 {
			// The changes are on their way to the leader.
			fired, release = tap.on(false, func(e faultEvent) bool {
				return e.Answer && e.Path == "/v1/sync/changes" && e.Status == http.StatusOK
			})
		} else {
			// The leader acks the new revision: it has applied it.
			prev := rev
			fired, release = tap.on(true, func(e faultEvent) bool {
				var a protocol.Ack
				if e.Answer || e.Path != "/v1/sync/ack" || json.Unmarshal(e.Body, &a) != nil || a.Revision <= prev {
					return false
				}
				acker = a.NodeID
				return true
			})
		}
		put := time.Now()
		next := faultPutSnapshot(t, ctx, cloud, doc)
		if next <= rev {
			t.Fatalf("the cloud answered revision %d to the PUT, want past %d", next, rev)
		}
		rev = next
		waitFired(t, fired, 60*time.Second, fmt.Sprintf("round %d: the leader syncing revision %d", round+1, rev))
		if acker != "" {
			for _, n := range nodes {
				if n.id == acker {
					leader = n
				}
			}
		} else if leader, err = faultLeader(ctx, nodes, leader); err != nil {
			t.Fatal(err)
		}
		leader.kill()
		release()
		ack, err := faultLastAck(ctx, cloud, "acme-hq")
		if err != nil {
			t.Fatal(err)
		}
		if ack != nil && ack.Revision == rev {
			t.Errorf("round %d: the cloud has the ack of revision %d before the kill: %+v", round+1, rev, ack)
		}
		t.Logf("round %d: killed leader %s %s, %v after the PUT of revision %d (the cloud's last ack: %+v)",
			round+1, leader.id, when, time.Since(put).Round(time.Millisecond), rev, ack)

		next2 := faultWaitLeader(t, others(nodes, leader), 30*time.Second)
		leader.restart()
		took := waitAllAt(t, nodes, rev, 60*time.Second)
		t.Logf("round %d: new leader %s; every node at revision %d %v after the restart", round+1, next2.id, rev, took.Round(time.Millisecond))
		var want []byte
		for _, n := range nodes {
			got, err := n.client().Snapshot(ctx)
			if err != nil {
				t.Fatalf("%s: %v", n.id, err)
			}
			if want == nil {
				want = got
			} else if !bytes.Equal(want, got) {
				t.Errorf("round %d: %s serves a document different from %s's", round+1, n.id, nodes[0].id)
			}
		}
		if served, err := account.DecodeBytes(want); err != nil {
			t.Errorf("the served document: %v", err)
		} else if served.Revision != rev || served.Users[0].Name != snap.Users[0].Name {
			t.Errorf("round %d: the served document is revision %d, first user %q: want revision %d, %q",
				round+1, served.Revision, served.Users[0].Name, rev, snap.Users[0].Name)
		}
		eventually(t, 30*time.Second, fmt.Sprintf("the cloud's last ack: revision %d applied", rev), func(ctx context.Context) error {
			a, err := faultLastAck(ctx, cloud, "acme-hq")
			switch {
			case err != nil:
				return err
			case a == nil:
				return errors.New("no ack")
			case a.Revision != rev || a.Status != "applied":
				return fmt.Errorf("last ack: revision %d %s by %s", a.Revision, a.Status, a.NodeID)
			}
			return nil
		})
		leader = next2
	}
	waitAllMode(t, nodes, "normal", 30*time.Second)
	if err := faultCheckNoErrors(nodes); err != nil {
		t.Error(err)
	}
	t.Logf("test took %v", time.Since(began).Round(time.Millisecond))
}

// Recovering turns to normal only once the outage journal is in the cloud.
// The uploader looks for records every 30 s or when kicked (in recovering):
// its "drained" was as old as its last look, before the records of the
// outage, so a syncer caught up at once (here by an edit made in the cloud
// during the outage) turned the mode to normal with the journal pending.
func TestCloudRecoveringUploadsTheJournalFirst(t *testing.T) {
	cloud := startCloud(t, demoSnapshot(t))
	link := startWAN(t, cloud.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes, _, _ := faultCluster(ctx, t, cloud, link, 30*time.Second)

	link.cut()
	waitAllMode(t, nodes, "survivability", 20*time.Second)
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	records := faultCallRecords(1000)
	cmd, err := cluster.EncodeCallRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.client().ApplyShared(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	doc, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/snapshot", nil)
	if err != nil {
		t.Fatal(err)
	}
	doc = withRevision(t, doc, 0, func(m map[string]any) { m["account"].(map[string]any)["name"] = "Acme Renamed" })
	rev := faultPutSnapshot(t, ctx, cloud, doc)

	link.heal()
	waitAllAt(t, nodes, rev, 30*time.Second)
	waitAllMode(t, nodes, "normal", 30*time.Second)
	for _, n := range nodes {
		if st, err := n.status(ctx); err != nil || st.JournalPending != 0 {
			t.Errorf("%s in mode normal with %d records pending (%v)", n.id, st.JournalPending, err)
		}
	}
	ids, err := faultCloudJournalIDs(ctx, cloud, "acme-hq")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(records) {
		t.Errorf("the cloud holds %d records once the mode is normal, want %d", len(ids), len(records))
	}
	if err := faultCheckNoErrors(nodes); err != nil {
		t.Error(err)
	}
}
