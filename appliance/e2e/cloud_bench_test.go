package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The cloud sync at the scale (issue 4): a 3-node cluster of real
// outpost processes paired with a real outpost-cloud, on loopback.

// cloudBenchAccount is the large account: 10,000 users, 20,000
// numbers, 1,000 SDGs and 50 trunks (account.Generate, seed 1), checked
// to validate, and its JSON, outpost-cloud's seed.
func cloudBenchAccount(b *testing.B) (*account.Snapshot, []byte) {
	b.Helper()
	snap := account.Generate(account.GenerateOptions{Users: 10000, Numbers: 20000, SDGs: 1000, Trunks: 50, Seed: 1})
	if err := account.Validate(snap, 0); err != nil {
		b.Fatalf("the generated account does not validate: %v", err)
	}
	return snap, encodeSnapshot(b, snap)
}

// wanGate is a WAN link that comes up late: from the start it accepts
// every connection but holds it, so nothing reaches the cloud and nothing
// fails either (the appliance's requests wait, within their timeouts);
// open forwards the held connections and every later one to the cloud.
// The sync loop's first request then goes through at open, with no retry
// backoff to wait out, which a refused connection would have started.
type wanGate struct {
	addr     string
	upstream string
	ln       net.Listener
	opened   chan struct{}
	openOnce sync.Once
	closed   chan struct{}

	mu        sync.Mutex
	conns     []net.Conn
	firstHeld time.Time // when the first connection was held
}

func startWANGate(b *testing.B, upstream string) *wanGate {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := &wanGate{addr: ln.Addr().String(), upstream: upstream, ln: ln,
		opened: make(chan struct{}), closed: make(chan struct{})}
	go g.accept()
	b.Cleanup(g.close)
	return g
}

func (g *wanGate) url() string { return "http://" + g.addr }

func (g *wanGate) accept() {
	for {
		in, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.conns = append(g.conns, in)
		if g.firstHeld.IsZero() {
			select {
			case <-g.opened:
			default:
				g.firstHeld = time.Now()
			}
		}
		g.mu.Unlock()
		go func() {
			select {
			case <-g.opened:
			case <-g.closed:
				return
			}
			out, err := net.Dial("tcp", g.upstream)
			if err != nil {
				in.Close()
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, out)
			g.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}()
	}
}

// open lets the held connections and every later one through, and says
// how long the oldest held one waited.
func (g *wanGate) open() time.Duration {
	g.mu.Lock()
	first := g.firstHeld
	g.mu.Unlock()
	g.openOnce.Do(func() { close(g.opened) })
	if first.IsZero() {
		return 0
	}
	return time.Since(first)
}

func (g *wanGate) close() {
	select {
	case <-g.closed:
		return
	default:
	}
	close(g.closed)
	g.ln.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
}

// waitServing polls the nodes' status (one request at a time, a round every
// interval) until every node serves revision rev or later, or ctx ends.
func waitServing(ctx context.Context, nodes []*node, rev int64, interval time.Duration) error {
	left := slices.Clone(nodes)
	var last error
	for {
		next := left[:0]
		for _, n := range left {
			st, err := n.status(ctx)
			switch {
			case err != nil:
				last = fmt.Errorf("%s: %w", n.id, err)
				next = append(next, n)
			case st.Revision < rev:
				last = fmt.Errorf("%s at revision %d", n.id, st.Revision)
				next = append(next, n)
			}
		}
		if left = next; len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every node at revision %d: %w (%v)", rev, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

// rssFigures keeps the largest peak RSS (VmHWM) seen of the leader, of
// the followers and of outpost-cloud over a benchmark's rounds.
type rssFigures struct{ leader, follower, cloud float64 }

// sample reads the peaks of a round's processes and logs them.
func (f *rssFigures) sample(b *testing.B, nodes []*node, leader *node, cloud *cloudServer) {
	b.Helper()
	for _, n := range nodes {
		rss, err := peakRSS(n.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		role := "follower"
		if n == leader {
			role, f.leader = "leader", max(f.leader, rss)
		} else {
			f.follower = max(f.follower, rss)
		}
		b.Logf("%s (%s): peak RSS %.1f MiB", n.id, role, rss)
	}
	rss, err := peakRSS(cloud.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	f.cloud = max(f.cloud, rss)
	b.Logf("outpost-cloud: peak RSS %.1f MiB", rss)
}

func (f *rssFigures) report(b *testing.B) {
	b.ReportMetric(f.leader, "leader-peak-RSS-MiB")
	b.ReportMetric(f.follower, "follower-peak-RSS-MiB")
	b.ReportMetric(f.cloud, "cloud-peak-RSS-MiB")
}

// stopAll ends a round's processes (their cleanups then have nothing to
// do), so the next round has the machine to itself.
func stopAll(nodes []*node, cloud *cloudServer) {
	for _, n := range nodes {
		n.kill()
	}
	cloud.stop()
}

// BenchmarkCloudFirstSync10k is a freshly paired 3-node cluster's first
// sync of the large account (10,000 users, 20,000 numbers, 1,000
// SDGs, 50 trunks; about 4 MiB of JSON) from outpost-cloud: the nodes
// start with no snapshot, their WAN link held (wanGate), and the cluster
// forms; the clock runs from opening the link, with all three nodes up and
// the leader known, until every node serves the cloud's revision: the
// leader's held GET /v1/sync/snapshot answered, the document decoded and
// validated, proposed through Raft as one entry and applied by all three.
// Each round is a fresh cloud and cluster. It reports the peak RSS of the
// leader, of the larger follower and of outpost-cloud.
func BenchmarkCloudFirstSync10k(b *testing.B) {
	snap, doc := cloudBenchAccount(b)
	b.SetBytes(int64(len(doc)))
	var rss rssFigures
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		cloud := startCloud(b, doc)
		gate := startWANGate(b, cloud.addr)
		creds := pairCluster(b, cloud, "acme-hq")
		nodes := formClusterWith(b, nodeOpts{logLevel: "info", cloudCredentials: creds,
			cloud: fmt.Sprintf("cloud:\n  url: %s\n", gate.url())})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		leader, err := leaderOf(ctx, nodes)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range nodes {
			if st, err := n.status(ctx); err != nil || st.Revision != 0 {
				b.Fatalf("%s at revision %d before the link opened (%v)", n.id, st.Revision, err)
			}
		}

		b.StartTimer()
		held := gate.open()
		err = waitServing(ctx, nodes, snap.Revision, 5*time.Millisecond)
		b.StopTimer()
		cancel()
		if err != nil {
			b.Fatalf("%v\n%s", err, leader.log())
		}
		// The leader's first snapshot request waited at the gate; past the
		// client's 15 s timeout it would have failed and the figure would
		// include a retry's backoff.
		b.Logf("the oldest request waited %v at the gate", held.Round(time.Millisecond))
		if held > 14*time.Second {
			b.Fatalf("the cluster took %v to form: the held sync request timed out, the figure is not the sync's", held)
		}
		rss.sample(b, nodes, leader, cloud)
		stopAll(nodes, cloud)
	}
	rss.report(b)
	b.ReportMetric(float64(len(doc))/(1<<20), "doc-MiB")
}

// BenchmarkCloudEditLatency: with the large account synced to a
// 3-node cluster, each op is one edit in outpost-cloud (PUT
// /v1/admin/users/<id> renaming a user, a new revision), timed from the
// PUT's answer until every node serves that revision, the node status
// polled every 5 ms. Edits go one at a time (the next once all three
// have the last), each to another user. The large account rather than the
// demo: an edit costs the appliance the whole document (the changes
// applied to the 4 MiB document, the result decoded and validated,
// proposed through Raft as one entry and applied by every node), so its
// latency is the large account's, not the demo's tens of milliseconds.
// ns/op is the mean; p50-ms, p99-ms and max-ms the distribution.
func BenchmarkCloudEditLatency(b *testing.B) {
	snap, doc := cloudBenchAccount(b)
	cloud := startCloud(b, doc)
	creds := pairCluster(b, cloud, "acme-hq")
	nodes := formClusterWith(b, nodeOpts{logLevel: "info", cloudCredentials: creds,
		cloud: fmt.Sprintf("cloud:\n  url: %s\n", cloud.url())})
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := waitServing(wctx, nodes, snap.Revision, 50*time.Millisecond)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		u := snap.Users[(i*7919)%len(snap.Users)]
		u.Name = fmt.Sprintf("%s (edit %d)", u.Name, i)
		body, err := json.Marshal(u)
		if err != nil {
			b.Fatal(err)
		}
		out, err := cloud.admin(ctx, http.MethodPut, "/v1/admin/users/"+u.ID, body)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Revision int64 `json:"revision"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = waitServing(wctx, nodes, r.Revision, 5*time.Millisecond)
		took := time.Since(start)
		cancel()
		if err != nil {
			b.Fatalf("edit %d: %v", i, err)
		}
		lat = append(lat, took)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	var rss rssFigures
	rss.sample(b, nodes, leader, cloud)
	rss.report(b)
}

// journalBenchRecords is how many call records BenchmarkJournalUpload100k
// uploads, shared through Raft journalBenchBatch at a time.
const (
	journalBenchRecords = 100_000
	journalBenchBatch   = 1_000
)

// BenchmarkJournalUpload100k: a 3-node cluster paired with outpost-cloud
// loses its WAN link (the mode turns to survivability); 100,000 call
// records reach its journal through the path the nodes share their calls
// by (the shared command put_call_records, POST /api/v1/cluster/apply on
// the leader, 1,000 records a command) and wait there, pending. The clock
// runs from healing the link until no node has anything pending: the
// probes (every 500 ms here, 5 s by default) see the cloud again, the
// mode turns to recovering after recover_after (500 ms here, 30 s by
// default: that wait is policy, not upload), and the leader's uploader
// sends the journal 5,000 records a batch, each marked uploaded through
// Raft. Then the cloud must hold every record once. It reports records/s,
// upload-s (from the mode change to recovering until the last batch
// uploaded, as the nodes logged them, whichever led: the upload alone) and
// the peak RSS of the leader, of the larger follower and of outpost-cloud.
// The account is a 1,000-user one: the journal does not depend on it.
func BenchmarkJournalUpload100k(b *testing.B) {
	seed := account.Generate(account.GenerateOptions{Users: 1000, Numbers: 1000, SDGs: 50, Trunks: 4, Seed: 4})
	if err := account.Validate(seed, 0); err != nil {
		b.Fatal(err)
	}
	doc := encodeSnapshot(b, seed)
	var rss rssFigures
	var uploadSecs float64
	b.StopTimer()
	b.ResetTimer()
	for round := range b.N {
		cloud := startCloud(b, doc)
		link := startWAN(b, cloud.addr)
		creds := pairCluster(b, cloud, "acme-hq")
		nodes := formClusterWith(b, nodeOpts{logLevel: "info", cloudCredentials: creds,
			cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 500ms\n  outage_after: 2s\n  recover_after: 500ms\n", link.url())})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := waitServing(ctx, nodes, seed.Revision, 50*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		waitAllMode(b, nodes, "normal", 30*time.Second)

		link.cut()
		waitAllMode(b, nodes, "survivability", 30*time.Second)
		leader, err := leaderOf(ctx, nodes)
		if err != nil {
			b.Fatal(err)
		}
		records := journalBenchCalls(seed, uint64(round))
		for i := 0; i < len(records); i += journalBenchBatch {
			cmd, err := cluster.EncodeCallRecords(records[i:min(i+journalBenchBatch, len(records))])
			if err != nil {
				b.Fatal(err)
			}
			if err := leader.client().ApplyShared(ctx, cmd); err != nil {
				b.Fatalf("share call records %d-: %v", i, err)
			}
		}
		waitPending(b, ctx, nodes, len(records), 100*time.Millisecond)

		b.StartTimer()
		link.heal()
		// A node's status counts the pending records (30 ms and more with
		// 100,000, on a busy machine) and a follower's asks the leader's
		// too: polled often, the status took a third of the leader's CPU
		// from the upload it measured. So the nodes' logs say when the
		// batches uploaded add up to every record (the leader logs a batch
		// once marked uploaded through Raft), and then every node's status
		// must show nothing pending.
		eventually(b, 2*time.Minute, "every record uploaded, by the logs", func(context.Context) error {
			if n := uploadedInLogs(nodes); n < len(records) {
				return fmt.Errorf("%d records uploaded", n)
			}
			return nil
		})
		waitPending(b, ctx, nodes, 0, 20*time.Millisecond)
		b.StopTimer()

		var logs []string
		for _, n := range nodes {
			logs = append(logs, n.log())
		}
		if s, ok := uploadSpan(logs); ok {
			uploadSecs = max(uploadSecs, s.Seconds())
		}
		// The peaks of the upload, before the check's GET of the whole
		// journal swells the cloud's.
		rss.sample(b, nodes, leader, cloud)
		checkCloudJournal(b, ctx, cloud, "acme-hq", records)
		cancel()
		stopAll(nodes, cloud)
	}
	b.ReportMetric(float64(journalBenchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if uploadSecs > 0 {
		b.ReportMetric(uploadSecs, "upload-s")
	}
	rss.report(b)
}

// journalBenchCalls makes journalBenchRecords call records as nodes write
// them: UUIDv4 ids, SIP Call-IDs, users of the account calling each other
// or out, over an 8-hour outage, with the dispositions and final statuses
// of a working day (most answered, some busy, unanswered, cancelled or
// failed); round seeds the generator, so each round's ids are its own.
func journalBenchCalls(s *account.Snapshot, round uint64) []store.CallRecord {
	rng := rand.New(rand.NewPCG(0x6f7574706f7374, round))
	uuid := func() string {
		var u [16]byte
		for i := range u {
			u[i] = byte(rng.UintN(256))
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
	}
	nodes := []string{"n1", "n2", "n3"}
	outage := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	rs := make([]store.CallRecord, journalBenchRecords)
	for i := range rs {
		caller := s.Users[rng.IntN(len(s.Users))]
		callee := s.Users[rng.IntN(len(s.Users))]
		start := outage.Add(time.Duration(i) * 8 * time.Hour / journalBenchRecords).Add(time.Duration(rng.IntN(250)) * time.Millisecond)
		r := store.CallRecord{
			ID:          uuid(),
			CallID:      fmt.Sprintf("%016x@%s", rng.Uint64(), caller.SIP.Username),
			Caller:      caller.SIP.Username,
			CallerName:  caller.Name,
			Callee:      callee.SIP.Username,
			Dialled:     callee.Extension,
			Destination: "user",
			Start:       start,
			Node:        nodes[rng.IntN(len(nodes))],
			Site:        caller.Site,
		}
		if rng.IntN(10) == 0 { // a call out
			r.Callee, r.Destination = "", "external"
			r.Dialled = fmt.Sprintf("+1415555%04d", rng.IntN(10000))
		}
		ring := time.Duration(2+rng.IntN(15)) * time.Second
		switch p := rng.IntN(100); {
		case p < 70:
			r.Disposition, r.Status = "answered", 200
			r.Answer = start.Add(ring)
			r.End = r.Answer.Add(time.Duration(5+rng.IntN(900)) * time.Second)
		case p < 80:
			r.Disposition, r.Status = "no_answer", 480
			r.End = start.Add(30 * time.Second)
		case p < 88:
			r.Disposition, r.Status = "busy", 486
			r.End = start.Add(ring / 4)
		case p < 95:
			r.Disposition, r.Status = "cancelled", 487
			r.End = start.Add(ring)
		case p < 98:
			r.Disposition, r.Status = "unavailable", 480
			r.End = start.Add(200 * time.Millisecond)
		default:
			r.Disposition, r.Status = "failed", 503
			r.End = start.Add(time.Duration(1+rng.IntN(5)) * time.Second)
		}
		rs[i] = r
	}
	return rs
}

// waitPending polls every node's status every interval until each has
// want journal records pending (journal_pending).
func waitPending(b *testing.B, ctx context.Context, nodes []*node, want int, interval time.Duration) {
	b.Helper()
	left := slices.Clone(nodes)
	var last error
	for {
		next := left[:0]
		for _, n := range left {
			st, err := n.status(ctx)
			switch {
			case err != nil:
				last = fmt.Errorf("%s: %w", n.id, err)
				next = append(next, n)
			case st.JournalPending != want:
				last = fmt.Errorf("%s: %d pending", n.id, st.JournalPending)
				next = append(next, n)
			}
		}
		if left = next; len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("not %d journal records pending on every node: %v", want, last)
		case <-time.After(interval):
		}
	}
}

var (
	logTimeRE    = regexp.MustCompile(`^time=(\S+) `)
	toRecoverRE  = regexp.MustCompile(`msg="mode changed".* to=recovering`)
	batchUpRE    = regexp.MustCompile(`msg="journal batch uploaded".* records=(\d+)`)
	logTimeStamp = "2006-01-02T15:04:05.000Z07:00"
)

// uploadedInLogs adds up the records of the journal batches the nodes
// logged uploaded (a new leader may send some again: at least, then).
func uploadedInLogs(nodes []*node) int {
	total := 0
	for _, n := range nodes {
		for _, m := range batchUpRE.FindAllStringSubmatch(n.log(), -1) {
			k, _ := strconv.Atoi(m[1])
			total += k
		}
	}
	return total
}

// uploadSpan is, in the nodes' logs, the time from the last change to
// recovering until the last journal batch uploaded (whichever node led).
func uploadSpan(logs []string) (time.Duration, bool) {
	var from, to time.Time
	for line := range strings.SplitSeq(strings.Join(logs, "\n"), "\n") {
		m := logTimeRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse(logTimeStamp, m[1])
		if err != nil {
			continue
		}
		switch {
		case toRecoverRE.MatchString(line):
			if at.After(from) {
				from = at
			}
		case batchUpRE.MatchString(line):
			if at.After(to) {
				to = at
			}
		}
	}
	if from.IsZero() || to.Before(from) {
		return 0, false
	}
	return to.Sub(from), true
}

// checkCloudJournal fails unless the cloud holds every record of want
// exactly once for appliance.
func checkCloudJournal(b *testing.B, ctx context.Context, cloud *cloudServer, appliance string, want []store.CallRecord) {
	b.Helper()
	ids, err := faultCloudJournalIDs(ctx, cloud, appliance)
	if err != nil {
		b.Fatal(err)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			b.Fatalf("the cloud holds record %s twice", id)
		}
		seen[id] = true
	}
	for _, r := range want {
		if !seen[r.ID] {
			b.Fatalf("the cloud holds %d records, not record %s", len(ids), r.ID)
		}
	}
	if len(ids) != len(want) {
		b.Fatalf("the cloud holds %d records, want %d", len(ids), len(want))
	}
}
