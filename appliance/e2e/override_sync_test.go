package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// overrideGate is an HTTP proxy in front of the cloud that answers 503 to
// override reports while shut, and counts them; everything else passes.
type overrideGate struct {
	addr    string
	shut    atomic.Bool
	refused atomic.Int64
}

func startOverrideGate(t *testing.T, upstream string) *overrideGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &overrideGate{addr: ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == protocol.PathOverrides && g.shut.Load() {
				g.refused.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":"override reports refused by the test"}`)
				return
			}
			proxy.ServeHTTP(w, r)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g
}

// overrideView is an SDG override as the node's API and the cloud's
// admin API show it.
type overrideView struct {
	SDGID      string          `json:"sdg_id"`
	Route      json.RawMessage `json:"route"`
	By         string          `json:"by"`
	At         time.Time       `json:"at"`
	Revision   int64           `json:"revision"`
	ReportedAt *time.Time      `json:"reported_at"` // the node's only
}

// cloudOverrideReport is GET /v1/admin/overrides's answer.
type cloudOverrideReport struct {
	Overrides      []overrideView `json:"overrides"`
	ReportedAt     *time.Time     `json:"reported_at"`
	HelloOverrides *int           `json:"hello_overrides"`
}

// overrideSyncRequest sends a request to a node's API with the admin token
// and returns the body of a 2xx answer.
func overrideSyncRequest(ctx context.Context, n *node, method, path string, body []byte, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.httpAddr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s on %s: %d %s", method, path, n.id, res.StatusCode, out)
	}
	return out, nil
}

// nodeOverrideList is GET /api/v1/sdgs/overrides on n.
func nodeOverrideList(ctx context.Context, n *node) ([]overrideView, error) {
	body, err := overrideSyncRequest(ctx, n, http.MethodGet, "/api/v1/sdgs/overrides", nil, nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Overrides []overrideView `json:"overrides"`
	}
	return list.Overrides, json.Unmarshal(body, &list)
}

// cloudOverrides is what the cloud's admins see of appliance's overrides.
func cloudOverrides(ctx context.Context, cloud *cloudServer, appliance string) (cloudOverrideReport, error) {
	var rep cloudOverrideReport
	body, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/overrides?appliance="+appliance, nil)
	if err != nil {
		return rep, err
	}
	return rep, json.Unmarshal(body, &rep)
}

// An SDG override made during an outage reaches the cloud on recovery,
// and the cloud's next revision of that SDG supersedes it. A 3-node
// cluster paired with outpost-cloud loses its WAN and turns to
// survivability; an admin overrides sdg-operator through a follower; the
// WAN heals while the cloud refuses override reports, and recovery waits
// (the mode stays recovering while the leader retries); once the cloud
// takes them, every node is back in normal and the cloud lists the
// override with its author, time and route, and every node says when it
// was reported; the cloud's admin then changes sdg-operator, the override
// disappears from every node, and the cloud hears that too.
func TestOverrideSync(t *testing.T) {
	cloud := startCloud(t, demoSnapshot(t))
	gate := startOverrideGate(t, cloud.addr)
	link := startWAN(t, gate.addr)
	creds := pairCluster(t, cloud, "acme-hq")
	nodes := formClusterWith(t, nodeOpts{
		cloudCredentials: creds,
		cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n",
			link.url()),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, nodes, rev, 30*time.Second)
	waitAllMode(t, nodes, "normal", 10*time.Second)
	// The leader reports the list in force (none) as it takes the lead.
	eventually(t, 10*time.Second, "the cloud told of no overrides", func(ctx context.Context) error {
		rep, err := cloudOverrides(ctx, cloud, "acme-hq")
		if err == nil && (rep.ReportedAt == nil || len(rep.Overrides) != 0) {
			err = fmt.Errorf("the cloud holds %+v", rep)
		}
		return err
	})

	// The WAN is cut; an admin overrides sdg-operator through a follower.
	link.cut()
	waitAllMode(t, nodes, "survivability", 20*time.Second)
	leader, err := leaderOf(ctx, nodes)
	if err != nil {
		t.Fatal(err)
	}
	follower := others(nodes, leader)[0]
	route := `{"type":"user","id":"u-bob"}`
	body, err := overrideSyncRequest(ctx, follower, http.MethodPut, "/api/v1/sdgs/sdg-operator/override",
		[]byte(route), http.Header{"X-Outpost-By": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Override overrideView `json:"override"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	made := set.Override
	// The store keeps the time to the millisecond; the PUT's answer
	// echoes the proposer's stamp, finer.
	made.At = made.At.Truncate(time.Millisecond)
	if made.SDGID != "sdg-operator" || made.By != "alice" || made.At.IsZero() || made.Revision != rev {
		t.Fatalf("override made: %s", body)
	}
	// Every node shows it, not reported: the cloud is out of reach.
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.id+" lists the override, not reported", func(ctx context.Context) error {
			list, err := nodeOverrideList(ctx, n)
			switch {
			case err != nil:
				return err
			case len(list) != 1 || list[0].SDGID != "sdg-operator" || !list[0].At.Equal(made.At):
				return fmt.Errorf("overrides %+v", list)
			case list[0].ReportedAt != nil:
				return fmt.Errorf("reported at %v while the cloud is out of reach", list[0].ReportedAt)
			}
			return nil
		})
	}
	if rep, err := cloudOverrides(ctx, cloud, "acme-hq"); err != nil || len(rep.Overrides) != 0 {
		t.Errorf("the cloud holds %+v during the outage (%v)", rep, err)
	}

	// The WAN heals, but the cloud refuses the report: recovery waits,
	// and the leader tries again.
	gate.shut.Store(true)
	link.heal()
	waitAllMode(t, nodes, "recovering", 30*time.Second)
	eventually(t, 10*time.Second, "the report tried again", func(context.Context) error {
		if n := gate.refused.Load(); n < 3 {
			return fmt.Errorf("%d reports refused", n)
		}
		return nil
	})
	for _, n := range nodes {
		if st, err := n.status(ctx); err != nil || st.Mode != "recovering" {
			t.Errorf("%s in mode %q with the report refused (%v), want recovering", n.id, st.Mode, err)
		}
	}
	// The cloud takes reports again: recovery reports the override
	// before the mode is normal, so the cloud lists it as soon as it is.
	gate.shut.Store(false)
	waitAllMode(t, nodes, "normal", 30*time.Second)
	rep, err := cloudOverrides(ctx, cloud, "acme-hq")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Overrides) != 1 {
		t.Fatalf("the cloud holds %+v once the mode is normal, want the override", rep)
	}
	got := rep.Overrides[0]
	if got.SDGID != "sdg-operator" || got.By != "alice" || !got.At.Equal(made.At) || got.Revision != rev ||
		!jsonEqual(got.Route, []byte(route)) {
		t.Errorf("the cloud lists %+v (route %s), want sdg-operator by alice at %v on revision %d, route %s",
			got, got.Route, made.At, rev, route)
	}
	// Every node says when the cloud got it (followers ask the leader).
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.id+" shows the override reported", func(ctx context.Context) error {
			list, err := nodeOverrideList(ctx, n)
			switch {
			case err != nil:
				return err
			case len(list) != 1 || list[0].ReportedAt == nil:
				return fmt.Errorf("overrides %+v", list)
			case list[0].ReportedAt.Before(made.At):
				return fmt.Errorf("reported at %v, before it was made at %v", list[0].ReportedAt, made.At)
			}
			return nil
		})
	}
	eventually(t, 10*time.Second, "the hello counts the override", func(ctx context.Context) error {
		rep, err := cloudOverrides(ctx, cloud, "acme-hq")
		if err == nil && (rep.HelloOverrides == nil || *rep.HelloOverrides != 1) {
			err = fmt.Errorf("hello_overrides %v", rep.HelloOverrides)
		}
		return err
	})

	// The cloud's admin publishes a revision of sdg-operator: it
	// supersedes the override on every node, and the cloud hears of it.
	sdg, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/sdgs/sdg-operator", nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(sdg, &m); err != nil {
		t.Fatal(err)
	}
	m["route"] = map[string]any{"type": "user", "id": "u-alice"}
	doc, _ := json.Marshal(m)
	out, err := cloud.admin(ctx, http.MethodPut, "/v1/admin/sdgs/sdg-operator", doc)
	if err != nil {
		t.Fatal(err)
	}
	var next struct {
		Revision int64 `json:"revision"`
	}
	if err := json.Unmarshal(out, &next); err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, nodes, next.Revision, 30*time.Second)
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.id+" without the override", func(ctx context.Context) error {
			list, err := nodeOverrideList(ctx, n)
			if err == nil && len(list) != 0 {
				err = fmt.Errorf("overrides %+v after revision %d", list, next.Revision)
			}
			return err
		})
	}
	eventually(t, 10*time.Second, "the cloud told the override is gone", func(ctx context.Context) error {
		rep, err := cloudOverrides(ctx, cloud, "acme-hq")
		switch {
		case err != nil:
			return err
		case len(rep.Overrides) != 0:
			return fmt.Errorf("the cloud holds %+v", rep.Overrides)
		case rep.HelloOverrides == nil || *rep.HelloOverrides != 0:
			return fmt.Errorf("hello_overrides %v", rep.HelloOverrides)
		}
		return nil
	})
	waitAllMode(t, nodes, "normal", 10*time.Second)
	if err := checkNoErrors(nodes); err != nil {
		t.Error(err)
	}
}

// jsonEqual compares two JSON values as values.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	bx, _ := json.Marshal(y)
	return bytes.Equal(ax, bx)
}
