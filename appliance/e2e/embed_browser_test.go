package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The call widget (/embed, docs/embed.md) framed by a CRM-like host page
// in a real browser (Debian's chromium driven by playwright-core,
// testdata/browser/embed.mjs): alice signs in with her SIP password, the
// host asks for a call to bob (onclicktoact), and the host receives the
// call's messages as SIPp phones ring, answer and hang up. A host page on
// an origin the snapshot does not allow gets nothing. With
// OUTPOST_UPDATE_SCREENSHOTS=1 the widget in a call replaces
// docs/images/embed.png.

// hostPage is a page on another origin that frames the widget, records
// every message it receives (window.received) and answers the widget's
// requests.
type hostPage struct {
	srv    *httptest.Server
	origin string // http://localhost:<port>: another site than the node's 127.0.0.1
	node   atomic.Value
}

var hostTemplate = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A CRM</title></head>
<body>
<h1>A CRM</h1>
{{range $i, $src := .Frames}}<iframe id="{{if eq $i 0}}widget{{else}}widget-{{$i}}{{end}}" title="Outpost call widget" src="{{$src}}" width="380" height="620"></iframe>
{{end}}<script>
window.received = [];
const nodeOrigin = {{.NodeOrigin}};
const frame = document.getElementById('widget');
window.toWidget = (msg) => frame.contentWindow.postMessage(msg, nodeOrigin);
window.addEventListener('message', (e) => {
  const m = (e.data && typeof e.data === 'object') ? e.data : {};
  window.received.push({ origin: e.origin, fromWidget: e.source === frame.contentWindow, type: m.type, data: m.data });
  if (m.type === 'zcc-init-config-request') toWidget({ type: 'zcc-init-config-response', data: { phone: { screenPopEvent: 'RINGING' } } });
  if (m.type === 'zcc-contact-search-event') toWidget({ type: 'zcc-contact-search-response', data: { id: 'c-bob', name: 'Bob <b>Baker</b>', phone: {{.Dial}}, email: 'bob@crm.example', entity: 'contact' } });
  if (m.type === 'zcc-incomingPhone-request') toWidget({ type: 'zcc-incomingPhone-response', data: [] });
});
</script>
</body></html>`))

// newHostPage serves a host page on 127.0.0.1:0; frames(origin, node)
// says what its iframes load once the node is known (setNode).
func newHostPage(t *testing.T, dial string, frames func(own, node string) []string) *hostPage {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostPage{origin: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	h.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		node, _ := h.node.Load().(string)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := hostTemplate.Execute(w, map[string]any{"Frames": frames(h.origin, node), "NodeOrigin": node, "Dial": dial}); err != nil {
			t.Errorf("host page: %v", err)
		}
	})}}
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

func embedURL(node, origin string) string { return node + "/embed?origin=" + url.QueryEscape(origin) }

func TestEmbedWidgetInBrowser(t *testing.T) {
	needBrowser(t)
	const dial = "1002" // bob
	allowed := newHostPage(t, dial, func(own, node string) []string { return []string{embedURL(node, own)} })
	// The other page frames the widget for itself, and claiming to be the
	// allowed page.
	other := newHostPage(t, dial, func(own, node string) []string {
		return []string{embedURL(node, own), embedURL(node, allowed.origin)}
	})
	snap := withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		m["embed"] = map[string]any{"allowed_origins": []string{allowed.origin}}
	})
	n := startNode(t, "embed", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", snap)})
	waitRevision(t, []*node{n}, 1)
	nodeURL := "http://" + n.httpAddr
	allowed.node.Store(nodeURL)
	other.node.Store(nodeURL)

	// The headers, as the browser will get them.
	for _, tc := range []struct {
		origin, ancestors string
		status            int
	}{
		{allowed.origin, "frame-ancestors " + allowed.origin + ";", http.StatusOK},
		{other.origin, "frame-ancestors 'none'", http.StatusForbidden},
	} {
		resp, err := http.Get(embedURL(nodeURL, tc.origin))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != tc.status || !strings.Contains(csp, tc.ancestors) {
			t.Errorf("GET /embed?origin=%s: %d, CSP %q; want %d and %q", tc.origin, resp.StatusCode, csp, tc.status, tc.ancestors)
		}
	}
	// The admin's token API is the admin's.
	if code, body := post(t, nodeURL+"/api/v1/embed/tokens", "", []byte(`{"user":"alice"}`)); code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/embed/tokens without the admin token: %d %s", code, body)
	}
	if code, body := post(t, nodeURL+"/api/v1/embed/tokens", testToken, []byte(`{"user":"u-alice","ttl_days":1}`)); code != http.StatusOK ||
		!strings.Contains(string(body), `"username":"alice"`) {
		t.Errorf("POST /api/v1/embed/tokens: %d %s", code, body)
	}

	aliceDone := answerWith(t, n, "alice", freeUDPPort(t), "-sf", scenarioPath(t, "uas-desk-phone.xml"))
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-ring-answer-hangup.xml"))

	shots := t.ArtifactDir()
	steps := runEmbedBrowser(t, n, map[string]string{
		"HOST_URL": allowed.origin + "/", "OTHER_URL": other.origin + "/", "SIP_USER": "alice", "SIP_PASSWORD": "pw-alice",
		"DIAL": dial, "OUT_DIR": shots,
	})

	// Before the call: the widget asked for its configuration, alice
	// signed in with the keyboard, every control labelled, no cookie, the
	// host's contact shown as text.
	if got := firstOf(steps["loaded"]["received"]); got["type"] != "zcc-init-config-request" || got["origin"] != nodeURL || got["fromWidget"] != true {
		t.Errorf("the first message: %v, want zcc-init-config-request from %s", got, nodeURL)
	}
	in := steps["signed-in"]
	if in["me"] != "Alice Adams ext. 1001" || in["connection"] != "" || in["signinUnlabelled"] != float64(0) ||
		in["appUnlabelled"] != float64(0) || in["cookies"] != float64(0) {
		t.Errorf("signed in: %v (connection %q: the event stream did not open; 503 when web.Deps has no EmbedCalls)", in, in["connection"])
	}
	if m, _ := in["match"].(map[string]any); m == nil || !strings.Contains(fmt.Sprint(m["text"]), "Bob <b>Baker</b>") || m["elements"] != float64(0) {
		t.Errorf("the host's contact as the widget shows it: %v, want its name as text", in["match"])
	}
	if e, _ := steps["invalid"]["error"].(map[string]any); e == nil || e["type"] != "zcc-error" ||
		e["data"].(map[string]any)["code"] != "invalid-input" || !strings.HasPrefix(fmt.Sprint(e["data"].(map[string]any)["message"]), "digit: ") {
		t.Errorf("a bad digit: %v, want zcc-error invalid-input naming digit", steps["invalid"]["error"])
	}

	// The host that may not frame the widget got nothing.
	oth := steps["other"]
	if got, _ := oth["received"].([]any); len(got) != 0 {
		t.Errorf("the host page on a refused origin received %v, want nothing", got)
	}
	if loaded := fmt.Sprint(oth["loaded"]); strings.Contains(loaded, "true") || oth["watchedMs"].(float64) < 5000 {
		t.Errorf("the refused origin's frames: loaded %v, watched %vms", loaded, oth["watchedMs"])
	}
	if !strings.Contains(n.log(), "embed: page refused") {
		t.Error("the refused page is not in the node's log")
	}

	// The call.
	call := steps["call"]
	var msgs []map[string]any
	for _, m := range call["received"].([]any) {
		mm := m.(map[string]any)
		if mm["origin"] != nodeURL || mm["fromWidget"] != true {
			t.Errorf("a message from %v (from the widget: %v): %v", mm["origin"], mm["fromWidget"], mm)
		}
		msgs = append(msgs, mm)
	}
	if r, _ := call["refused"].(map[string]any); r != nil {
		t.Fatalf("onclicktoact was refused: %v\n(zcc-error not-supported: this node's web.Deps has no EmbedCalls, or ClickToCall is not built)\nnode log:\n%s", r, n.log())
	}
	var order []string
	for _, m := range msgs {
		order = append(order, fmt.Sprint(m["type"]))
	}
	last := -1
	for _, typ := range []string{"zcc-outbound-call-started", "zcc-call-ringing", "zcc-call-connected", "zcc-call-ended", "zcc-phone-call-log"} {
		i := slices.Index(order, typ)
		if i <= last {
			t.Fatalf("the host's messages %v: want zcc-outbound-call-started, zcc-call-ringing, zcc-call-connected, zcc-call-ended, zcc-phone-call-log in that order", order)
		}
		last = i
	}
	log := msgs[slices.Index(order, "zcc-phone-call-log")]["data"].(map[string]any)
	rec := log["objectRecord"].(map[string]any)
	if rec["callType"] != "outbound" || rec["to"] != dial || rec["agentExtension"] != "1001" || rec["agentName"] != "Alice Adams" ||
		rec["callDuration"].(float64) < 2 || rec["callEndTime"].(float64) <= rec["callStartTime"].(float64) {
		t.Errorf("the call log's record: %v", rec)
	}
	if user, _ := log["user"].(map[string]any); user["id"] != "c-bob" || user["entity"] != "contact" {
		t.Errorf("the call log's user %v, want the host's contact c-bob from onclicktoact", log["user"])
	}
	started := msgs[slices.Index(order, "zcc-outbound-call-started")]["data"].(map[string]any)
	ended := msgs[slices.Index(order, "zcc-call-ended")]["data"].(map[string]any)
	if started["engagementId"] == "" || ended["engagementId"] != started["engagementId"] || log["engagementId"] != started["engagementId"] {
		t.Errorf("engagement ids: started %v, ended %v, log %v", started["engagementId"], ended["engagementId"], log["engagementId"])
	}
	if call["callUnlabelled"] != float64(0) {
		t.Errorf("%v of the call's controls have no label", call["callUnlabelled"])
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's phone: SIPp exit %d", code)
	}
	if code := aliceDone(); code != 0 {
		t.Errorf("alice's desk phone: SIPp exit %d", code)
	}
	if os.Getenv("OUTPOST_UPDATE_SCREENSHOTS") == "1" {
		data, err := os.ReadFile(filepath.Join(shots, "embed.png"))
		if err == nil {
			err = os.WriteFile("../../docs/images/embed.png", data, 0o644)
		}
		if err != nil {
			t.Errorf("update docs/images/embed.png: %v", err)
		}
	}
}

func firstOf(v any) map[string]any {
	l, _ := v.([]any)
	if len(l) == 0 {
		return nil
	}
	m, _ := l[0].(map[string]any)
	return m
}

// runEmbedBrowser runs embed.mjs with env and returns its steps by name.
func runEmbedBrowser(t *testing.T, n *node, env map[string]string) map[string]map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "embed.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Logf("embed.mjs: %s", sc.Text())
			continue
		}
		name, _ := m["step"].(string)
		steps[name] = m
		t.Logf("browser: %s", sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("embed.mjs: %v\n%s\nnode log:\n%s", err, stderr.String(), n.log())
	}
	if _, ok := steps["done"]; !ok {
		t.Fatalf("embed.mjs did not finish: %s", stderr.String())
	}
	if errs, _ := steps["done"]["cspErrors"].([]any); len(errs) > 0 {
		t.Errorf("Content-Security-Policy violations in the widget: %v", errs)
	}
	return steps
}
