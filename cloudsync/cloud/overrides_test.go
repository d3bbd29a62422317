package cloud

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

const overrideFrontdesk = `{"sdg_id":"sdg-frontdesk","route":{"type":"user","id":"u-carol"},"by":"alice","at":"2026-11-23T09:00:00.123Z","revision":41}`

// report posts an override report body under key.
func (h *harness) report(c creds, key, body string) (*http.Response, []byte) {
	h.t.Helper()
	hdr := http.Header{}
	if key != "" {
		hdr.Set(protocol.HeaderIdempotencyKey, key)
	}
	return h.sync(c, http.MethodPost, protocol.PathOverrides, []byte(body), hdr)
}

// heldOverrides is what the admins see of appliance's overrides.
func (h *harness) heldOverrides(appliance string) OverrideReport {
	h.t.Helper()
	resp, body := h.admin(http.MethodGet, "/v1/admin/overrides?appliance="+appliance, nil)
	wantStatus(h.t, "GET /v1/admin/overrides", resp, body, http.StatusOK)
	var rep OverrideReport
	decode(h.t, body, &rep)
	return rep
}

func overridesJSON(rep OverrideReport) string {
	b, _ := json.Marshal(rep.Overrides)
	return string(b)
}

// A report is stored as the appliance's latest and shown to the admins;
// the same key again is answered as before and stores nothing; another
// replaces it, even one that goes back to an earlier list.
func TestOverrideReports(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("acme-hq")
	h.pair("acme-branch")

	// Before any report: none, and no time.
	if rep := h.heldOverrides("acme-hq"); len(rep.Overrides) != 0 || rep.ReportedAt != nil || rep.Appliance != "acme-hq" {
		t.Errorf("before a report: %+v", rep)
	}
	resp, body := h.report(c, "k1", `{"overrides":[`+overrideFrontdesk+`]}`)
	wantStatus(t, "report", resp, body, http.StatusOK)
	var r protocol.OverrideReceipt
	decode(t, body, &r)
	if r.Accepted != 1 || resp.Header.Get(protocol.HeaderIdempotentReplayed) != "" {
		t.Errorf("receipt %+v, replayed %q; want 1 accepted, not replayed", r, resp.Header.Get(protocol.HeaderIdempotentReplayed))
	}
	first := h.clock.Now()
	rep := h.heldOverrides("acme-hq")
	if got := overridesJSON(rep); got != `[`+overrideFrontdesk+`]` || rep.ReportedAt == nil || !rep.ReportedAt.Equal(first) {
		t.Errorf("held %s at %v, want the override as sent, at %v", got, rep.ReportedAt, first)
	}
	var o protocol.Override
	decode(t, rep.Overrides[0], &o)
	if o.SDGID != "sdg-frontdesk" || o.By != "alice" || o.Revision != 41 || o.At.IsZero() {
		t.Errorf("held override %+v", o)
	}
	// Another appliance's reports are its own.
	if rep := h.heldOverrides("acme-branch"); len(rep.Overrides) != 0 {
		t.Errorf("another appliance holds %s", overridesJSON(rep))
	}

	// The same key again (a retry, a new leader): the same answer,
	// flagged, nothing stored, even with another body.
	h.clock.Advance(time.Minute)
	resp, body = h.report(c, "k1", `{"overrides":[]}`)
	wantStatus(t, "replay", resp, body, http.StatusOK)
	decode(t, body, &r)
	if r.Accepted != 1 || resp.Header.Get(protocol.HeaderIdempotentReplayed) != "true" {
		t.Errorf("replay: receipt %+v, replayed %q; want the first answer, replayed", r, resp.Header.Get(protocol.HeaderIdempotentReplayed))
	}
	if rep := h.heldOverrides("acme-hq"); len(rep.Overrides) != 1 || !rep.ReportedAt.Equal(first) {
		t.Errorf("after the replay: %s at %v, want the first report kept", overridesJSON(rep), rep.ReportedAt)
	}

	// None in force: an empty report replaces it.
	resp, body = h.report(c, "k-empty", `{"overrides":[]}`)
	wantStatus(t, "empty report", resp, body, http.StatusOK)
	decode(t, body, &r)
	if rep := h.heldOverrides("acme-hq"); r.Accepted != 0 || len(rep.Overrides) != 0 || !rep.ReportedAt.Equal(h.clock.Now()) {
		t.Errorf("after the empty report: receipt %+v, held %s at %v", r, overridesJSON(rep), rep.ReportedAt)
	}
	// Back to the first list, under its key: stored again, not a replay
	// (the cloud holds another report now).
	h.clock.Advance(time.Minute)
	resp, body = h.report(c, "k1", `{"overrides":[`+overrideFrontdesk+`]}`)
	wantStatus(t, "the first list again", resp, body, http.StatusOK)
	if resp.Header.Get(protocol.HeaderIdempotentReplayed) != "" {
		t.Error("the first list again, after another: answered as a replay")
	}
	if rep := h.heldOverrides("acme-hq"); len(rep.Overrides) != 1 || !rep.ReportedAt.Equal(h.clock.Now()) {
		t.Errorf("after the first list again: %s at %v", overridesJSON(rep), rep.ReportedAt)
	}
}

// A malformed report is refused whole with 400 naming the problems, and
// the report held stays.
func TestOverrideReportRefused(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("acme-hq")
	resp, body := h.report(c, "k0", `{"overrides":[`+overrideFrontdesk+`]}`)
	wantStatus(t, "first report", resp, body, http.StatusOK)
	held := overridesJSON(h.heldOverrides("acme-hq"))
	with := func(field, value string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(overrideFrontdesk), &m); err != nil {
			t.Fatal(err)
		}
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return `{"overrides":[` + string(b) + `]}`
	}
	other := strings.Replace(overrideFrontdesk, "sdg-frontdesk", "sdg-operator", 1)
	tooMany := `{"overrides":[` + strings.TrimSuffix(strings.Repeat(`{},`, protocol.MaxOverrides+1), ",") + `]}`
	cases := []struct {
		name, key, body, path string
	}{
		{"no key", "", `{"overrides":[]}`, protocol.HeaderIdempotencyKey},
		{"a key too long", strings.Repeat("k", maxIdempotencyKey+1), `{"overrides":[]}`, protocol.HeaderIdempotencyKey},
		{"not JSON", "k", `{"overrides":`, ""},
		{"not an object", "k", `[]`, ""},
		{"no overrides", "k", `{}`, "overrides"},
		{"null overrides", "k", `{"overrides":null}`, "overrides"},
		{"overrides not an array", "k", `{"overrides":{}}`, ""},
		{"too many", "k", tooMany, "overrides"},
		{"an override not an object", "k", `{"overrides":[` + other + `,"sdg-frontdesk"]}`, "overrides[1]"},
		{"no sdg_id", "k", with("sdg_id", ""), "overrides[0].sdg_id"},
		{"an empty sdg_id", "k", with("sdg_id", `""`), "overrides[0].sdg_id"},
		{"a number sdg_id", "k", with("sdg_id", `7`), "overrides[0].sdg_id"},
		{"twice the same sdg", "k", `{"overrides":[` + overrideFrontdesk + `,` + overrideFrontdesk + `]}`, "overrides[1].sdg_id"},
		{"no route", "k", with("route", ""), "overrides[0].route"},
		{"a null route", "k", with("route", `null`), "overrides[0].route"},
		{"a route not an object", "k", with("route", `"u-carol"`), "overrides[0].route"},
		{"a route without type", "k", with("route", `{"id":"u-carol"}`), "overrides[0].route.type"},
		{"a route of a bad shape", "k", with("route", `{"type":"group","members":"u-carol"}`), "overrides[0].route"},
		{"no by", "k", with("by", ""), "overrides[0].by"},
		{"an empty by", "k", with("by", `" "`), "overrides[0].by"},
		{"no at", "k", with("at", ""), "overrides[0].at"},
		{"a bad at", "k", with("at", `"yesterday"`), "overrides[0].at"},
		{"a zero at", "k", with("at", `"0001-01-01T00:00:00Z"`), "overrides[0].at"},
		{"no revision", "k", with("revision", ""), "overrides[0].revision"},
		{"a negative revision", "k", with("revision", `-1`), "overrides[0].revision"},
		{"a fractional revision", "k", with("revision", `4.5`), "overrides[0].revision"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.report(c, tc.key, tc.body)
			wantStatus(t, tc.name, resp, body, http.StatusBadRequest)
			e := errorBody(t, body)
			found := false
			for _, p := range e.Problems {
				if p.Path == tc.path {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %+v, want one at %q", e.Problems, tc.path)
			}
			if got := overridesJSON(h.heldOverrides("acme-hq")); got != held {
				t.Errorf("a refused report changed what is held: %s, want %s", got, held)
			}
		})
	}
	// Every bad field of an override is named at once.
	resp, body = h.report(c, "k", `{"overrides":[{"route":{},"at":"x","revision":-2}]}`)
	wantStatus(t, "every problem", resp, body, http.StatusBadRequest)
	var paths []string
	for _, p := range errorBody(t, body).Problems {
		paths = append(paths, p.Path)
	}
	if want := "overrides[0].sdg_id overrides[0].route.type overrides[0].by overrides[0].at overrides[0].revision"; strings.Join(paths, " ") != want {
		t.Errorf("problems at %v, want %s", paths, want)
	}
	// A refused report does not use its key up.
	resp, body = h.report(c, "k", `{"overrides":[]}`)
	wantStatus(t, "after the refusals", resp, body, http.StatusOK)
	if resp.Header.Get(protocol.HeaderIdempotentReplayed) != "" {
		t.Error("a key of refused reports answered as a replay")
	}
}

// Reports need the appliance's credentials, the admin listing the admin
// token; the listing names an appliance that paired.
func TestOverrideReportsAuth(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("acme-hq")
	body := []byte(`{"overrides":[]}`)
	key := http.Header{protocol.HeaderIdempotencyKey: {"k"}}
	resp, data := h.do(http.MethodPost, protocol.PathOverrides, body, key)
	wantStatus(t, "report without credentials", resp, data, http.StatusUnauthorized)
	wrong := c
	wrong.Secret = "not-the-secret"
	resp, data = h.sync(wrong, http.MethodPost, protocol.PathOverrides, body, key)
	wantStatus(t, "report with a wrong secret", resp, data, http.StatusUnauthorized)
	if rep := h.heldOverrides("acme-hq"); rep.ReportedAt != nil {
		t.Errorf("an unauthenticated report was stored: %+v", rep)
	}

	resp, data = h.do(http.MethodGet, "/v1/admin/overrides?appliance=acme-hq", nil, nil)
	wantStatus(t, "listing without the admin token", resp, data, http.StatusUnauthorized)
	resp, data = h.do(http.MethodGet, "/v1/admin/overrides?appliance=acme-hq", nil, c.header())
	wantStatus(t, "listing with the appliance's credentials", resp, data, http.StatusUnauthorized)
	resp, data = h.admin(http.MethodGet, "/v1/admin/overrides", nil)
	wantStatus(t, "listing without an appliance", resp, data, http.StatusBadRequest)
	resp, data = h.admin(http.MethodGet, "/v1/admin/overrides?appliance=nobody", nil)
	wantStatus(t, "listing of an appliance never paired", resp, data, http.StatusNotFound)
}

// The hello says how many overrides are in force: the admins see it with
// the appliance and its overrides; an appliance that does not say shows
// nothing.
func TestHelloOverrides(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("acme-hq")
	two := 2
	resp, body := h.sync(c, http.MethodPost, protocol.PathHello, protocol.Hello{NodeID: "n1", Overrides: &two}, nil)
	wantStatus(t, "hello", resp, body, http.StatusOK)
	if rep := h.heldOverrides("acme-hq"); rep.HelloOverrides == nil || *rep.HelloOverrides != 2 {
		t.Errorf("hello_overrides %v, want 2", rep.HelloOverrides)
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/appliances", nil)
	wantStatus(t, "appliances", resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"hello_overrides":2`) {
		t.Errorf("appliances %s, want hello_overrides 2", body)
	}
	// An appliance of an older release says nothing.
	resp, body = h.sync(c, http.MethodPost, protocol.PathHello, []byte(`{"node_id":"n1"}`), nil)
	wantStatus(t, "hello without overrides", resp, body, http.StatusOK)
	if rep := h.heldOverrides("acme-hq"); rep.HelloOverrides != nil {
		t.Errorf("hello_overrides %v after a hello without, want none", *rep.HelloOverrides)
	}
	resp, body = h.sync(c, http.MethodPost, protocol.PathHello, []byte(`{"node_id":"n1","overrides":-1}`), nil)
	wantStatus(t, "negative overrides", resp, body, http.StatusBadRequest)
	if e := errorBody(t, body); len(e.Problems) != 1 || e.Problems[0].Path != "overrides" {
		t.Errorf("problems %+v", e.Problems)
	}
}

// The store keeps one report per appliance and refuses an unknown one's
// listing.
func TestStoreOverrides(t *testing.T) {
	st := openStore(t, Options{})
	ctx := t.Context()
	if _, err := st.Overrides(ctx, "nobody"); err == nil {
		t.Error("overrides of an appliance never paired: no error")
	}
	items := []json.RawMessage{json.RawMessage(overrideFrontdesk), json.RawMessage(strings.Replace(overrideFrontdesk, "frontdesk", "operator", 1))}
	for i := range 3 {
		r, replayed, err := st.PutOverrides(ctx, "b1", fmt.Sprint("k", i%2), items[:i%2+1], t0)
		if err != nil || replayed || r.Accepted != i%2+1 {
			t.Errorf("report %d: %+v, %v, %v", i, r, replayed, err)
		}
	}
	r, replayed, err := st.PutOverrides(ctx, "b1", "k0", nil, t0)
	if err != nil || !replayed || r.Accepted != 1 {
		t.Errorf("replay of the held report: %+v, %v, %v", r, replayed, err)
	}
}
