package cloudsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/cloud"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// overrideCloud is outpost-cloud in-process (its real handler, on
// httptest), recording the override reports that reach it, with a switch
// that makes the sync API answer 503 (the cloud unreachable).
type overrideCloud struct {
	t     *testing.T
	url   string
	clock *clock // the cloud's

	mu      sync.Mutex
	down    bool
	reports []recordedReport
}

type recordedReport struct {
	Header   http.Header
	Body     []byte
	Status   int
	Replayed bool
}

const overrideCloudToken = "admin-token-for-override-tests"

func newOverrideCloud(t *testing.T) *overrideCloud {
	t.Helper()
	st, err := cloud.Open(filepath.Join(t.TempDir(), "cloud.db"), cloud.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	oc := &overrideCloud{t: t, clock: &clock{now: overrideT0.Add(time.Hour)}}
	h := cloud.New(cloud.Config{Store: st, AdminToken: overrideCloudToken, Now: oc.clock.Now}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		oc.mu.Lock()
		down := oc.down
		oc.mu.Unlock()
		if down && r.URL.Path != "/v1/admin/overrides" {
			writeError(w, http.StatusServiceUnavailable, "down for the test")
			return
		}
		if r.URL.Path != protocol.PathOverrides {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		oc.mu.Lock()
		oc.reports = append(oc.reports, recordedReport{Header: r.Header.Clone(), Body: body, Status: rec.Code,
			Replayed: rec.Header().Get(protocol.HeaderIdempotentReplayed) == "true"})
		oc.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	oc.url = srv.URL
	return oc
}

func (oc *overrideCloud) setDown(down bool) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	oc.down = down
}

func (oc *overrideCloud) reportList() []recordedReport {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	return slices.Clone(oc.reports)
}

// admin sends an admin request; it fails the test on an unexpected status.
func (oc *overrideCloud) admin(method, path string, body []byte, want int) []byte {
	oc.t.Helper()
	req, err := http.NewRequest(method, oc.url+path, bytes.NewReader(body))
	if err != nil {
		oc.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+overrideCloudToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		oc.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		oc.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	return data
}

// pair pairs the appliance "branch-1" and returns its client.
func (oc *overrideCloud) pair() *Client {
	oc.t.Helper()
	body, _ := json.Marshal(cloud.PairingCodeRequest{Appliance: "branch-1"})
	var code cloud.PairingCodeResponse
	if err := json.Unmarshal(oc.admin(http.MethodPost, "/v1/admin/pairing-codes", body, http.StatusOK), &code); err != nil {
		oc.t.Fatal(err)
	}
	creds, err := Pair(context.Background(), oc.url, code.Code, "node-1")
	if err != nil {
		oc.t.Fatal(err)
	}
	c, err := NewClient(creds, WithUserAgent("outpost/test"))
	if err != nil {
		oc.t.Fatal(err)
	}
	return c
}

// held is what the cloud's admins see of branch-1's overrides.
func (oc *overrideCloud) held() cloud.OverrideReport {
	oc.t.Helper()
	var rep cloud.OverrideReport
	if err := json.Unmarshal(oc.admin(http.MethodGet, "/v1/admin/overrides?appliance=branch-1", nil, http.StatusOK), &rep); err != nil {
		oc.t.Fatal(err)
	}
	return rep
}

// heldOverrides decodes the overrides the cloud holds.
func (oc *overrideCloud) heldOverrides() []protocol.Override {
	oc.t.Helper()
	rep := oc.held()
	out := make([]protocol.Override, len(rep.Overrides))
	for i, raw := range rep.Overrides {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			oc.t.Fatal(err)
		}
	}
	return out
}

// memOverrides is the overrides in force, in memory.
type memOverrides struct {
	mu   sync.Mutex
	list []protocol.Override
	err  error
}

func (m *memOverrides) Overrides(context.Context) ([]protocol.Override, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list), m.err
}

func (m *memOverrides) set(list ...protocol.Override) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = list
}

var overrideT0 = time.Date(2026, 11, 23, 9, 0, 0, 123e6, time.UTC)

func testOverride(sdg, user string, at time.Time) protocol.Override {
	return protocol.Override{SDGID: sdg, Route: json.RawMessage(`{"type":"user","id":"` + user + `"}`),
		By: "alice", At: at, Revision: 41}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newTestReporter(t *testing.T, client *Client, src OverrideSource, now func() time.Time) (*OverrideReporter, *timers) {
	t.Helper()
	tm := &timers{}
	r, err := NewOverrideReporter(OverrideReporterConfig{Client: client, Source: src, Log: testLogger(t),
		Backoff: NewBackoff(constRand(0.5)), Now: now, After: tm.After})
	if err != nil {
		t.Fatal(err)
	}
	return r, tm
}

// The reporter sends the list in force when it differs from the one the
// cloud took last, and only then; the cloud keeps the latest; an override
// kept from one report to the next keeps when it was first reported.
func TestOverrideReporterReportsTheListInForce(t *testing.T) {
	ctx := context.Background()
	oc := newOverrideCloud(t)
	client := oc.pair()
	src := &memOverrides{}
	clk := &clock{now: overrideT0.Add(time.Minute)}
	r, _ := newTestReporter(t, client, src, clk.Now)

	if ok, err := r.UpToDate(ctx); err != nil || ok {
		t.Fatalf("before any report: up to date %v, %v; want false", ok, err)
	}
	frontdesk := testOverride("sdg-frontdesk", "u-carol", overrideT0)
	src.set(frontdesk)
	if sent, err := r.Report(ctx); err != nil || !sent {
		t.Fatalf("first report: sent %v, %v", sent, err)
	}
	if got := oc.heldOverrides(); len(got) != 1 || got[0].SDGID != "sdg-frontdesk" || got[0].By != "alice" ||
		!got[0].At.Equal(overrideT0) || got[0].Revision != 41 || string(got[0].Route) != `{"type":"user","id":"u-carol"}` {
		t.Errorf("the cloud holds %+v, want the frontdesk override", got)
	}
	if ok, err := r.UpToDate(ctx); err != nil || !ok {
		t.Errorf("after the report: up to date %v, %v; want true", ok, err)
	}
	st := r.Status()
	if st.Key == "" || !st.ReportedAt.Equal(clk.Now()) || len(st.Overrides) != 1 ||
		st.Overrides[0] != (ReportedOverride{SDGID: "sdg-frontdesk", At: overrideT0, ReportedAt: clk.Now()}) {
		t.Errorf("status %+v", st)
	}

	// Nothing changed: nothing sent.
	if sent, err := r.Report(ctx); err != nil || sent {
		t.Errorf("the same list again: sent %v, %v; want nothing sent", sent, err)
	}
	if n := len(oc.reportList()); n != 1 {
		t.Errorf("%d reports reached the cloud, want 1", n)
	}

	// A second override: the list is not up to date until reported; the
	// first keeps its first report's time.
	first := clk.Now()
	clk.set(first.Add(time.Minute))
	operator := testOverride("sdg-operator", "u-bob", overrideT0.Add(time.Second))
	src.set(operator, frontdesk) // any order: the report is by SDG id
	if ok, _ := r.UpToDate(ctx); ok {
		t.Error("a new override: still up to date")
	}
	if sent, err := r.Report(ctx); err != nil || !sent {
		t.Fatalf("second report: sent %v, %v", sent, err)
	}
	want := []ReportedOverride{
		{SDGID: "sdg-frontdesk", At: overrideT0, ReportedAt: first},
		{SDGID: "sdg-operator", At: operator.At, ReportedAt: clk.Now()},
	}
	if got := r.Status().Overrides; !slices.Equal(got, want) {
		t.Errorf("reported overrides %+v, want %+v", got, want)
	}
	if got := oc.heldOverrides(); len(got) != 2 || got[0].SDGID != "sdg-frontdesk" || got[1].SDGID != "sdg-operator" {
		t.Errorf("the cloud holds %+v, want both, by SDG id", got)
	}

	// The frontdesk override set again (a new time): a new override.
	clk.set(clk.Now().Add(time.Minute))
	again := testOverride("sdg-frontdesk", "u-carol", overrideT0.Add(time.Hour))
	src.set(again, operator)
	if _, err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.Status().Overrides; got[0].ReportedAt != clk.Now() || got[1].ReportedAt != want[1].ReportedAt {
		t.Errorf("after frontdesk was set again: %+v", got)
	}

	// Every override cleared (superseded by the cloud, or by hand): the
	// empty list is reported, and the cloud holds none.
	src.set()
	if sent, err := r.Report(ctx); err != nil || !sent {
		t.Fatalf("empty report: sent %v, %v", sent, err)
	}
	rep := oc.held()
	if len(rep.Overrides) != 0 || rep.ReportedAt == nil {
		t.Errorf("the cloud holds %+v, want no overrides, reported", rep)
	}
	last := oc.reportList()[len(oc.reportList())-1]
	if !bytes.Equal(last.Body, []byte(`{"overrides":[]}`)) {
		t.Errorf("empty report body %s, want {\"overrides\":[]}", last.Body)
	}
}

// Reports carry the appliance's credentials and an Idempotency-Key made
// from their content: a report sent again (a new leader, a retry) has the
// same key, and the cloud answers it as before without storing anything.
func TestOverrideReportIdempotent(t *testing.T) {
	ctx := context.Background()
	oc := newOverrideCloud(t)
	client := oc.pair()
	src := &memOverrides{list: []protocol.Override{testOverride("sdg-frontdesk", "u-carol", overrideT0)}}
	r1, _ := newTestReporter(t, client, src, time.Now)
	if _, err := r1.Report(ctx); err != nil {
		t.Fatal(err)
	}
	held := oc.held()
	oc.clock.set(oc.clock.Now().Add(time.Minute))
	// A new leader's reporter knows nothing: it sends the same report.
	r2, _ := newTestReporter(t, client, src, time.Now)
	if sent, err := r2.Report(ctx); err != nil || !sent {
		t.Fatalf("the new leader's report: sent %v, %v", sent, err)
	}
	reports := oc.reportList()
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2", len(reports))
	}
	for i, rep := range reports {
		if rep.Header.Get(protocol.HeaderAppliance) != "branch-1" || rep.Header.Get("Authorization") == "" ||
			rep.Header.Get("User-Agent") != "outpost/test" {
			t.Errorf("report %d without the appliance's credentials: %v", i, rep.Header)
		}
		if rep.Status != http.StatusOK {
			t.Errorf("report %d: HTTP %d", i, rep.Status)
		}
	}
	k1, k2 := reports[0].Header.Get(protocol.HeaderIdempotencyKey), reports[1].Header.Get(protocol.HeaderIdempotencyKey)
	if k1 == "" || k1 != k2 || k1 != r1.Status().Key {
		t.Errorf("keys %q and %q, want the same, the content's", k1, k2)
	}
	if reports[0].Replayed || !reports[1].Replayed {
		t.Errorf("replayed: %v then %v, want false then true", reports[0].Replayed, reports[1].Replayed)
	}
	if again := oc.held(); !again.ReportedAt.Equal(*held.ReportedAt) {
		t.Errorf("the replay stored the report again: reported at %v, then %v", held.ReportedAt, again.ReportedAt)
	}
}

// The key is the content's: the same whatever the order, another for any
// change of an override.
func TestOverridesKey(t *testing.T) {
	a, b := testOverride("sdg-a", "u-1", overrideT0), testOverride("sdg-b", "u-2", overrideT0)
	key := func(os ...protocol.Override) string {
		t.Helper()
		k, err := OverridesKey(os)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key(a, b) != key(b, a) {
		t.Error("the key depends on the order")
	}
	local := a
	local.At = overrideT0.In(time.FixedZone("X", 3600))
	if key(local, b) != key(a, b) {
		t.Error("the key depends on the time zone")
	}
	empty, err := OverridesKey(nil)
	if err != nil || empty == "" || empty != key() || empty == key(a) {
		t.Errorf("the empty list's key %q (%v): want one of its own, the same for nil and []", empty, err)
	}
	changes := map[string]func(o *protocol.Override){
		"route":    func(o *protocol.Override) { o.Route = json.RawMessage(`{"type":"user","id":"u-9"}`) },
		"by":       func(o *protocol.Override) { o.By = "bob" },
		"at":       func(o *protocol.Override) { o.At = o.At.Add(time.Millisecond) },
		"revision": func(o *protocol.Override) { o.Revision++ },
		"sdg_id":   func(o *protocol.Override) { o.SDGID = "sdg-c" },
	}
	for name, change := range changes {
		c := a
		change(&c)
		if key(c, b) == key(a, b) {
			t.Errorf("a change of %s keeps the key", name)
		}
	}
}

// While the cloud cannot take the report, the reporter retries with the
// protocol's backoff and the list is not up to date; once the cloud is
// back, the next try reports it.
func TestOverrideReporterRetriesWithBackoff(t *testing.T) {
	oc := newOverrideCloud(t)
	client := oc.pair()
	oc.setDown(true)
	src := &memOverrides{list: []protocol.Override{testOverride("sdg-frontdesk", "u-carol", overrideT0)}}
	r, tm := newTestReporter(t, client, src, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, "a failed try", func() bool { return len(tm.list()) >= 1 })
	tm.fire()
	eventually(t, "two failed tries", func() bool { return len(tm.list()) >= 2 })
	if waits := tm.list(); waits[0] != time.Second || waits[1] != 2*time.Second {
		t.Errorf("waits %v, want the backoff's 1 s then 2 s", waits)
	}
	st := r.Status()
	if st.Key != "" || st.LastError == "" {
		t.Errorf("status %+v, want no report and an error", st)
	}
	if ok, _ := r.UpToDate(context.Background()); ok {
		t.Error("up to date while the cloud refused every report")
	}
	oc.setDown(false)
	tm.fire()
	eventually(t, "the report taken", func() bool { return r.Status().Key != "" })
	if ok, err := r.UpToDate(context.Background()); !ok || err != nil {
		t.Errorf("up to date %v, %v after the report", ok, err)
	}
	if got := oc.heldOverrides(); len(got) != 1 {
		t.Errorf("the cloud holds %+v", got)
	}
	// Success: the next look is after Interval (1 s), the backoff reset.
	eventually(t, "the next look", func() bool { return len(tm.list()) >= 3 })
	if waits := tm.list(); waits[len(waits)-1] != time.Second || r.Status().LastError != "" {
		t.Errorf("after the report: waits %v, status %+v", waits, r.Status())
	}
	// A change is reported at the next look (Kick: at once).
	src.set()
	r.Kick()
	eventually(t, "the change reported", func() bool { return len(oc.held().Overrides) == 0 })
}

// A cloud without override reports (an older implementation: 404) does
// not hold recovery: the reporter says the list is up to date, and keeps
// asking at the slowest pace.
func TestOverrideReporterCloudWithoutReports(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	client, err := NewClient(Credentials{URL: srv.URL, ApplianceID: "branch-1", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	src := &memOverrides{list: []protocol.Override{testOverride("sdg-frontdesk", "u-carol", overrideT0)}}
	r, tm := newTestReporter(t, client, src, time.Now)
	_, err = r.Report(context.Background())
	if !errors.Is(err, ErrOverridesUnsupported) || Retryable(err) {
		t.Fatalf("report to a cloud without reports: %v; want ErrOverridesUnsupported, not retryable", err)
	}
	if ok, err := r.UpToDate(context.Background()); !ok || err != nil {
		t.Errorf("up to date %v, %v; want true: recovery does not wait for a cloud that cannot take reports", ok, err)
	}
	if st := r.Status(); !st.Unsupported || st.Key != "" {
		t.Errorf("status %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	eventually(t, "a wait", func() bool { return len(tm.list()) >= 1 })
	cancel()
	<-done
	if w := tm.list()[0]; w != time.Minute {
		t.Errorf("wait %v, want the slowest pace (60 s)", w)
	}
}

// A source that cannot be read is an error, and not up to date.
func TestOverrideReporterSourceError(t *testing.T) {
	oc := newOverrideCloud(t)
	src := &memOverrides{err: errors.New("disk on fire")}
	r, _ := newTestReporter(t, oc.pair(), src, time.Now)
	if _, err := r.Report(context.Background()); err == nil {
		t.Error("report with an unreadable source: no error")
	}
	if ok, err := r.UpToDate(context.Background()); ok || err == nil {
		t.Errorf("up to date %v, %v; want false and the error", ok, err)
	}
	if len(oc.reportList()) != 0 {
		t.Error("a report reached the cloud")
	}
}

// The client checks what it sends and what the cloud answers.
func TestClientReportOverrides(t *testing.T) {
	ctx := context.Background()
	oc := newOverrideCloud(t)
	c := oc.pair()
	if _, err := c.ReportOverrides(ctx, "", nil); err == nil {
		t.Error("no key: no error")
	}
	many := make([]protocol.Override, protocol.MaxOverrides+1)
	if _, err := c.ReportOverrides(ctx, "k", many); err == nil {
		t.Error("too many overrides: no error")
	}
	if len(oc.reportList()) != 0 {
		t.Error("a refused report was sent")
	}
	// The cloud refuses a malformed report: a 400, not retryable.
	bad := []protocol.Override{{SDGID: "sdg-a", Route: json.RawMessage(`{"type":"user","id":"u-1"}`)}}
	_, err := c.ReportOverrides(ctx, "k", bad)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || Retryable(err) || len(he.Problems) == 0 {
		t.Errorf("malformed report: %v; want a 400 naming the problems", err)
	}
	// An answer that does not count what was sent is malformed.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, protocol.OverrideReceipt{Accepted: 7})
	}))
	t.Cleanup(srv.Close)
	liar, _ := NewClient(Credentials{URL: srv.URL, ApplianceID: "a", Secret: "s"})
	if _, err := liar.ReportOverrides(ctx, "k", nil); !errors.Is(err, ErrMalformedAnswer) {
		t.Errorf("a wrong count: %v, want ErrMalformedAnswer", err)
	}
}
