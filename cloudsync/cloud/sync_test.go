package cloud

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func TestPairing(t *testing.T) {
	h := newHarness(t, Options{})
	h.putSnapshot(smallAccount(t, 1))

	code := h.pairingCode("branch-1")
	resp, body := h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: code, Name: "node-1"}, nil)
	wantStatus(t, "pair", resp, body, http.StatusOK)
	var first protocol.PairResponse
	decode(t, body, &first)
	if first.ApplianceID != "branch-1" || len(first.Secret) != 64 || len(first.PushKey) != 64 || first.Revision != 1 {
		t.Errorf("pair answer: %s", body)
	}

	// One use only.
	resp, body = h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: code}, nil)
	wantStatus(t, "pair again with the same code", resp, body, http.StatusForbidden)
	errorBody(t, body)
	resp, body = h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: "NOPE0-NOPE0-NOPE0"}, nil)
	wantStatus(t, "unknown code", resp, body, http.StatusForbidden)
	resp, body = h.do(http.MethodPost, protocol.PathPair, []byte(`{"name":"x"}`), nil)
	wantStatus(t, "no code", resp, body, http.StatusBadRequest)

	// A code typed in lower case, without dashes, works.
	c1 := creds{first}
	code = h.pairingCode("branch-1")
	resp, body = h.do(http.MethodPost, protocol.PathPair,
		protocol.PairRequest{Code: strings.ToLower(strings.ReplaceAll(code, "-", ""))}, nil)
	wantStatus(t, "re-pair", resp, body, http.StatusOK)
	var c2 creds
	decode(t, body, &c2.PairResponse)
	// Pairing again replaces the secret: the old one stops working.
	resp, body = h.sync(c1, http.MethodGet, protocol.PathSnapshot, nil, nil)
	wantStatus(t, "old secret", resp, body, http.StatusUnauthorized)
	resp, body = h.sync(c2, http.MethodGet, protocol.PathSnapshot, nil, nil)
	wantStatus(t, "new secret", resp, body, http.StatusOK)
}

func TestPairingCodeExpires(t *testing.T) {
	h := newHarness(t, Options{})
	late := h.pairingCode("b1")
	h.clock.Advance(PairingCodeTTL - time.Second)
	justInTime := h.pairingCode("b2")
	resp, body := h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: justInTime}, nil)
	wantStatus(t, "fresh code", resp, body, http.StatusOK)
	h.clock.Advance(time.Second)
	resp, body = h.do(http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: late}, nil)
	wantStatus(t, "code 24 h old", resp, body, http.StatusForbidden)
}

func TestApplianceAuth(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	wrong := c
	wrong.Secret = strings.Repeat("0", 64)
	other := c
	other.ApplianceID = "b2"
	paths := [][2]string{
		{http.MethodPost, protocol.PathHello}, {http.MethodGet, protocol.PathSnapshot},
		{http.MethodGet, protocol.PathChanges + "?since=0"}, {http.MethodPost, protocol.PathAck},
		{http.MethodPost, protocol.PathJournal},
	}
	for _, p := range paths {
		for name, hdr := range map[string]http.Header{
			"no credentials": nil,
			"wrong secret":   wrong.header(),
			"other name":     other.header(),
			"no name":        {"Authorization": {"Bearer " + c.Secret}},
			"no secret":      {protocol.HeaderAppliance: {"b1"}},
			"admin token":    {protocol.HeaderAppliance: {"b1"}, "Authorization": {"Bearer " + testToken}},
		} {
			resp, body := h.do(p[0], p[1], []byte(`{}`), hdr)
			wantStatus(t, name+": "+p[0]+" "+p[1], resp, body, http.StatusUnauthorized)
			errorBody(t, body)
		}
	}
	// The appliance's secret does not open the admin API.
	resp, body := h.do(http.MethodGet, "/v1/admin/snapshot", nil, c.header())
	wantStatus(t, "appliance secret on the admin API", resp, body, http.StatusUnauthorized)
}

func TestHello(t *testing.T) {
	h := newHarness(t, Options{})
	h.putSnapshot(smallAccount(t, 1))
	c := h.pair("b1")
	resp, body := h.sync(c, http.MethodPost, protocol.PathHello, protocol.Hello{NodeID: "n1", Revision: 0, PushURL: "https://10.0.0.5:8080"}, nil)
	wantStatus(t, "hello", resp, body, http.StatusOK)
	var hr protocol.HelloResponse
	decode(t, body, &hr)
	if hr.Revision != 1 || !hr.Time.Equal(h.clock.Now()) {
		t.Errorf("hello answer %s", body)
	}
	for _, bad := range []string{"ftp://x", "10.0.0.5:8080", "http://", "::"} {
		resp, body := h.sync(c, http.MethodPost, protocol.PathHello, protocol.Hello{NodeID: "n1", PushURL: bad}, nil)
		wantStatus(t, "hello with push_url "+bad, resp, body, http.StatusBadRequest)
		if e := errorBody(t, body); len(e.Problems) != 1 || e.Problems[0].Path != "push_url" {
			t.Errorf("push_url %q: problems %+v", bad, e.Problems)
		}
	}
	resp, body = h.sync(c, http.MethodPost, protocol.PathHello, []byte(`{"revision":"x"}`), nil)
	wantStatus(t, "hello, bad body", resp, body, http.StatusBadRequest)
}

func TestSyncSnapshotETag(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	resp, body := h.sync(c, http.MethodGet, protocol.PathSnapshot, nil, nil)
	wantStatus(t, "snapshot before any", resp, body, http.StatusNotFound)
	if resp.Header.Get(protocol.HeaderRevision) != "0" {
		t.Errorf("X-Outpost-Revision %q, want 0", resp.Header.Get(protocol.HeaderRevision))
	}

	h.putSnapshot(smallAccount(t, 1))
	h.putSnapshot(smallAccount(t, 2))
	resp, body = h.sync(c, http.MethodGet, protocol.PathSnapshot, nil, nil)
	wantStatus(t, "snapshot", resp, body, http.StatusOK)
	if resp.Header.Get("ETag") != `"r2"` || resp.Header.Get(protocol.HeaderRevision) != "2" {
		t.Errorf("headers %v", resp.Header)
	}
	if _, d := h.store.Current(); string(body) != string(d) {
		t.Error("the snapshot served is not the current document")
	}
	for _, inm := range []string{`"r2"`, `W/"r2"`, `"r1", "r2"`, `*`} {
		resp, body = h.sync(c, http.MethodGet, protocol.PathSnapshot, nil, http.Header{"If-None-Match": {inm}})
		wantStatus(t, "If-None-Match "+inm, resp, body, http.StatusNotModified)
		if len(body) != 0 || resp.Header.Get("ETag") != `"r2"` || resp.Header.Get(protocol.HeaderRevision) != "2" {
			t.Errorf("304: body %q headers %v", body, resp.Header)
		}
	}
	resp, body = h.sync(c, http.MethodGet, protocol.PathSnapshot, nil, http.Header{"If-None-Match": {`"r1"`}})
	wantStatus(t, "If-None-Match an older revision", resp, body, http.StatusOK)
}

func TestChanges(t *testing.T) {
	h := newHarness(t, Options{History: 3})
	c := h.pair("b1")
	get := func(query string) (*http.Response, []byte) {
		return h.sync(c, http.MethodGet, protocol.PathChanges+"?"+query, nil, nil)
	}
	resp, body := get("since=0")
	wantStatus(t, "nothing yet, no wait", resp, body, http.StatusNoContent)
	if resp.Header.Get(protocol.HeaderRevision) != "0" {
		t.Errorf("204 without X-Outpost-Revision: %v", resp.Header)
	}
	for seed := range uint64(5) {
		h.putSnapshot(smallAccount(t, seed+1))
	}
	// History 3: revisions 3, 4, 5 are kept.
	resp, body = get("since=2&wait=30")
	wantStatus(t, "since 2", resp, body, http.StatusOK)
	var ch protocol.Changes
	decode(t, body, &ch)
	if ch.From != 2 || ch.To != 5 || len(ch.Revisions) != 3 || ch.Revisions[0].Revision != 3 || len(ch.Revisions[2].Ops) == 0 {
		t.Errorf("changes since 2: from %d to %d, %d revisions", ch.From, ch.To, len(ch.Revisions))
	}
	if resp.Header.Get(protocol.HeaderRevision) != "5" {
		t.Errorf("X-Outpost-Revision %q", resp.Header.Get(protocol.HeaderRevision))
	}

	resp, body = get("since=1")
	wantStatus(t, "since older than history", resp, body, http.StatusGone)
	if e := errorBody(t, body); e.Current != 5 {
		t.Errorf("410 current %d, want 5", e.Current)
	}
	resp, body = get("since=9")
	wantStatus(t, "since ahead", resp, body, http.StatusConflict)
	if e := errorBody(t, body); e.Current != 5 {
		t.Errorf("409 current %d, want 5", e.Current)
	}
	resp, body = get("since=5&wait=0")
	wantStatus(t, "up to date, no wait", resp, body, http.StatusNoContent)
	for _, q := range []string{"", "since=x", "since=-1", "since=1&wait=-2", "since=1&wait=soon"} {
		resp, body = get(q)
		wantStatus(t, "changes?"+q, resp, body, http.StatusBadRequest)
	}
}

// A long poll answers as soon as a revision commits.
func TestChangesLongPollWakes(t *testing.T) {
	h := newHarness(t, Options{})
	h.putSnapshot(smallAccount(t, 1))
	c := h.pair("b1")
	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, body, err := h.try(http.MethodGet, protocol.PathChanges+"?since=1&wait=60", nil, c.header())
		if err != nil {
			done <- answer{err: err}
			return
		}
		done <- answer{resp.StatusCode, body, nil}
	}()
	s := smallAccount(t, 1)
	s.Callout.GreetingPrompt = "new-greeting"
	h.putSnapshot(s)
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.status != http.StatusOK {
			t.Fatalf("long poll: %d %s", a.status, a.body)
		}
		var ch protocol.Changes
		decode(t, a.body, &ch)
		if ch.To != 2 || len(ch.Revisions) != 1 || len(ch.Revisions[0].Ops) != 1 || ch.Revisions[0].Ops[0].Kind != "callout" {
			t.Errorf("long poll answer: %s", a.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not answer within 20 s of a new revision")
	}
}

// A long poll with nothing new answers 204 after wait.
func TestChangesLongPollTimesOut(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	start := time.Now()
	resp, body := h.sync(c, http.MethodGet, protocol.PathChanges+"?since=0&wait=1", nil, nil)
	wantStatus(t, "long poll", resp, body, http.StatusNoContent)
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %v, before the wait", d)
	}
}

func TestAck(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	resp, body := h.sync(c, http.MethodPost, protocol.PathAck, protocol.Ack{Revision: 1, Status: protocol.AckApplied}, nil)
	wantStatus(t, "ack", resp, body, http.StatusNoContent)
	for _, bad := range []string{`{"revision":1,"status":"maybe"}`, `{"revision":-1,"status":"applied"}`, `{`} {
		resp, body = h.sync(c, http.MethodPost, protocol.PathAck, []byte(bad), nil)
		wantStatus(t, "ack "+bad, resp, body, http.StatusBadRequest)
	}
}

// journalBatch is a batch of records with the given ids.
func journalBatch(ids ...string) []byte {
	recs := make([]string, len(ids))
	for i, id := range ids {
		recs[i] = fmt.Sprintf(`{"id": %q, "call_id": "c-%s", "status": 200}`, id, id)
	}
	return []byte(`{"records": [` + strings.Join(recs, ",") + `]}`)
}

func (h *harness) journal(name string) []string {
	h.t.Helper()
	resp, body := h.admin(http.MethodGet, "/v1/admin/journal?appliance="+name, nil)
	wantStatus(h.t, "admin journal", resp, body, http.StatusOK)
	var got struct {
		Records []struct {
			ID string `json:"id"`
		}
	}
	decode(h.t, body, &got)
	ids := []string{}
	for _, r := range got.Records {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestJournalIdempotency(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	post := func(key string, body []byte) (*http.Response, []byte) {
		hdr := http.Header{}
		if key != "" {
			hdr.Set(protocol.HeaderIdempotencyKey, key)
		}
		return h.sync(c, http.MethodPost, protocol.PathJournal, body, hdr)
	}
	resp, body := post("", journalBatch("a"))
	wantStatus(t, "no key", resp, body, http.StatusBadRequest)

	resp, first := post("k1", journalBatch("a", "b", "c"))
	wantStatus(t, "first batch", resp, first, http.StatusOK)
	var r protocol.JournalReceipt
	decode(t, first, &r)
	if r != (protocol.JournalReceipt{Accepted: 3}) {
		t.Errorf("first batch: %s", first)
	}
	// The same key again: the same answer, nothing stored (even if the
	// body differs).
	resp, again := post("k1", journalBatch("a", "b", "c", "z"))
	wantStatus(t, "same key", resp, again, http.StatusOK)
	if string(again) != string(first) || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("same key: %s (headers %v), want %s", again, resp.Header, first)
	}
	// Overlapping batches with other keys: each record once.
	resp, body = post("k2", journalBatch("c", "d"))
	wantStatus(t, "overlap", resp, body, http.StatusOK)
	decode(t, body, &r)
	if r != (protocol.JournalReceipt{Accepted: 1, Duplicates: 1}) {
		t.Errorf("overlapping batch: %s", body)
	}
	resp, body = post("k3", journalBatch("d", "e", "e"))
	wantStatus(t, "overlap", resp, body, http.StatusOK)
	decode(t, body, &r)
	if r != (protocol.JournalReceipt{Accepted: 1, Duplicates: 2}) {
		t.Errorf("batch with a repeated id: %s", body)
	}
	if got, want := h.journal("b1"), []string{"a", "b", "c", "d", "e"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("journal %q, want %q", got, want)
	}
}

func TestJournalMalformedBatch(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	tooMany := make([]string, protocol.MaxJournalBatch+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("r", i)
	}
	for _, tc := range []struct {
		name, body, path string
	}{
		{"record without id", `{"records": [{"id": "a"}, {"call_id": "x"}]}`, "records[1].id"},
		{"empty id", `{"records": [{"id": "a"}, {"id": ""}]}`, "records[1].id"},
		{"id not a string", `{"records": [{"id": 7}]}`, "records[0].id"},
		{"record not an object", `{"records": [{"id": "a"}, "b"]}`, "records[1]"},
		{"no records", `{}`, "records"},
		{"not json", `{"records": [`, ""},
		{"too many", string(journalBatch(tooMany...)), "records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.sync(c, http.MethodPost, protocol.PathJournal, []byte(tc.body),
				http.Header{protocol.HeaderIdempotencyKey: {"key-" + tc.name}})
			wantStatus(t, "batch", resp, body, http.StatusBadRequest)
			e := errorBody(t, body)
			if len(e.Problems) == 0 || e.Problems[0].Path != tc.path {
				t.Errorf("problems %+v, want one at %q", e.Problems, tc.path)
			}
		})
	}
	if got := h.journal("b1"); len(got) != 0 {
		t.Errorf("malformed batches stored %q", got)
	}
	// The key of a refused batch is not used up.
	resp, body := h.sync(c, http.MethodPost, protocol.PathJournal, journalBatch("a"),
		http.Header{protocol.HeaderIdempotencyKey: {"key-record without id"}})
	wantStatus(t, "fixed batch", resp, body, http.StatusOK)
}

// The changes rebuild the snapshot exactly: applying them (protocol.Apply,
// the appliance's) to the document at since gives the document the cloud
// serves whole, byte for byte.
func TestChangesRebuildTheSnapshot(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	s := smallAccount(t, 4)
	h.putSnapshot(s)
	_, doc1 := h.store.Current()

	u := s.Users[0]
	u.ID, u.Extension, u.SIP.Username, u.Numbers = "u-new", "7001", "newbie", []string{}
	resp, body := h.admin(http.MethodPut, "/v1/admin/users/u-new", u)
	wantStatus(t, "PUT user", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodDelete, "/v1/admin/numbers/"+s.Numbers[len(s.Numbers)-1].Number, nil)
	wantStatus(t, "DELETE number", resp, body, http.StatusOK)
	re := smallAccount(t, 4)
	re.Users = append([]account.User{re.Users[3], u}, re.Users[4:]...) // reordered, some gone
	u2 := u
	u2.ID, u2.Extension, u2.SIP.Username = "u-newer", "7002", "newer"
	re.Users = slices.Insert(re.Users, 1, u2)
	re.Callout.GreetingPrompt = "other-greeting"
	for i := range re.SDGs { // routes must not name the users dropped
		re.SDGs[i].Route = &account.Route{Type: account.RouteUser, ID: "u-new"}
	}
	for i := range re.Numbers {
		re.Numbers[i].Route = &account.Route{Type: account.RouteUser, ID: "u-new"}
	}
	h.putSnapshot(re)
	resp, body = h.admin(http.MethodDelete, "/v1/admin/users/u-newer", nil)
	wantStatus(t, "DELETE user", resp, body, http.StatusOK)
	rev, want := h.store.Current()

	for since, base := range map[int64][]byte{0: []byte(`{}`), 1: doc1} {
		resp, body := h.sync(c, http.MethodGet, fmt.Sprintf("%s?since=%d", protocol.PathChanges, since), nil, nil)
		wantStatus(t, "changes", resp, body, http.StatusOK)
		var ch protocol.Changes
		decode(t, body, &ch)
		doc := base
		for _, r := range ch.Revisions {
			var err error
			if doc, err = protocol.Apply(doc, r.Ops); err != nil {
				t.Fatalf("since %d: apply revision %d: %v", since, r.Revision, err)
			}
		}
		doc, err := protocol.SetRevision(doc, ch.To)
		if err != nil {
			t.Fatal(err)
		}
		if ch.To != rev || string(doc) != string(want) {
			t.Errorf("since %d: rebuilt revision %d:\n%.400s\nwant %d:\n%.400s", since, ch.To, doc, rev, want)
		}
	}
}
