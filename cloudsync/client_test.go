package cloudsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
	"github.com/outpost-voice/outpost/internal/testpki"
)

func TestPair(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.addCode("CODE-1")
	at := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	creds, err := Pair(context.Background(), fc.srv.URL+"/", "CODE-1", "node-1", WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{URL: fc.srv.URL, ApplianceID: "acme-hq", Secret: "secret-1", PushKey: fc.pushKey, PairedAt: at}
	if creds != want {
		t.Errorf("got %+v, want %+v", creds, want)
	}
	reqs := fc.requestList(protocol.PathPair)
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "" {
		t.Errorf("pairing sent credentials or was not sent: %+v", reqs)
	}
	path := filepath.Join(t.TempDir(), "cloud.json")
	if err := SaveCredentials(path, creds); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCredentials(path)
	if err != nil || loaded != creds {
		t.Fatalf("load after pairing: %+v, %v", loaded, err)
	}
	c, err := NewClient(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Hello(context.Background(), protocol.Hello{NodeID: "node-1"}); err != nil {
		t.Errorf("hello with the new credentials: %v", err)
	}
}

func TestPairRefused(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	fc.addCode("ONCE")
	if _, err := Pair(context.Background(), fc.srv.URL, "ONCE", "node-1"); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"ONCE", "NEVER-MADE"} {
		_, err := Pair(context.Background(), fc.srv.URL, code, "node-1")
		if !errors.Is(err, ErrPairingRefused) {
			t.Fatalf("pair with %s: %v, want ErrPairingRefused", code, err)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(he.Message, "used") {
			t.Errorf("pair with %s: %#v, want an HTTPError 403 with the cloud's message", code, he)
		}
		if Retryable(err) {
			t.Errorf("a refused code is retryable")
		}
	}
	if _, err := Pair(context.Background(), fc.srv.URL, " ", "node-1"); err == nil {
		t.Errorf("pair without a code succeeded")
	}
	if _, err := Pair(context.Background(), "cloud.example", "X", "node-1"); err == nil || !strings.Contains(err.Error(), "http(s)://") {
		t.Errorf("pair with a URL without scheme: %v", err)
	}
}

func TestPairingAgainRevokesTheOldSecret(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	old := fc.client(t)
	fc.addCode("NEW")
	creds, err := Pair(context.Background(), fc.srv.URL, "NEW", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.Hello(context.Background(), protocol.Hello{NodeID: "node-1"})
	if !errors.Is(err, ErrUnauthorized) || Retryable(err) {
		t.Errorf("old secret: %v, want ErrUnauthorized, not retryable", err)
	}
	c, _ := NewClient(creds)
	if _, err := c.Hello(context.Background(), protocol.Hello{NodeID: "node-1"}); err != nil {
		t.Errorf("new secret: %v", err)
	}
}

func TestClientSendsCredentials(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	c := fc.client(t, WithUserAgent("outpost/test"))
	ctx := context.Background()
	if _, err := c.Hello(ctx, protocol.Hello{NodeID: "n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Snapshot(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Changes(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, protocol.Ack{Revision: 1, Status: protocol.AckApplied}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadJournal(ctx, "k", []json.RawMessage{json.RawMessage(`{"id":"r1"}`)}); err != nil {
		t.Fatal(err)
	}
	reqs := fc.requestList("")
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get(protocol.HeaderAppliance) != "acme-hq" || r.Header.Get("Authorization") != "Bearer initial-secret" {
			t.Errorf("%s %s without the appliance's credentials: %v", r.Method, r.Path, r.Header)
		}
		if r.Header.Get("User-Agent") != "outpost/test" {
			t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, r.Header.Get("User-Agent"))
		}
	}
}

func TestSnapshotETag(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	c := fc.client(t)
	ctx := context.Background()
	first, err := c.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.NotModified || first.Revision != 1 || first.ETag != `"r1"` || !sameJSON(t, first.Doc, fc.doc(1)) {
		t.Fatalf("first fetch: rev %d etag %s notModified %v", first.Revision, first.ETag, first.NotModified)
	}
	again, err := c.Snapshot(ctx, first.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if !again.NotModified || again.Doc != nil || again.ETag != first.ETag {
		t.Errorf("conditional fetch: %+v, want 304", again)
	}
	if got := fc.requestList(protocol.PathSnapshot)[1].Header.Get("If-None-Match"); got != `"r1"` {
		t.Errorf("If-None-Match %q", got)
	}
	fc.publish(protocol.Op{Op: protocol.OpSet, Kind: "embed", Data: json.RawMessage(`{"allowed_origins":[]}`)})
	next, err := c.Snapshot(ctx, first.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if next.NotModified || next.Revision != 2 || next.ETag != `"r2"` {
		t.Errorf("after a change: %+v", next)
	}
}

func TestChanges(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	c := fc.client(t)
	ctx := context.Background()
	ch, cur, err := c.Changes(ctx, 1, 0)
	if err != nil || ch != nil || cur != 1 {
		t.Fatalf("nothing new: %+v, %d, %v; want nil, 1, nil", ch, cur, err)
	}
	op := protocol.Op{Op: protocol.OpDelete, Kind: "numbers", ID: "+13125550200"}
	fc.publish(op)
	fc.publish(protocol.Op{Op: protocol.OpSet, Kind: "embed", Data: json.RawMessage(`{"allowed_origins":[]}`)})
	ch, cur, err = c.Changes(ctx, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cur != 3 || ch.From != 1 || ch.To != 3 || len(ch.Revisions) != 2 || ch.Revisions[0].Ops[0].ID != op.ID {
		t.Errorf("got %+v, current %d", ch, cur)
	}
	if q := fc.requestList(protocol.PathChanges)[1].Query; q != "since=1&wait=30" {
		t.Errorf("query %q", q)
	}

	fc.forget(3)
	_, _, err = c.Changes(ctx, 1, 0)
	var he *HTTPError
	if !errors.Is(err, ErrTooFarBehind) || !errors.As(err, &he) || he.Current != 3 {
		t.Errorf("since before the history: %v (%+v), want ErrTooFarBehind with current 3", err, he)
	}
	if _, _, err = c.Changes(ctx, 9, 0); !errors.Is(err, ErrAhead) {
		t.Errorf("since ahead of the cloud: %v, want ErrAhead", err)
	}
}

// TestChangesHeldUntilAChange: a poll at the cloud's revision waits for
// the next one.
func TestChangesHeldUntilAChange(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	c := fc.client(t)
	type result struct {
		ch  *protocol.Changes
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, _, err := c.Changes(context.Background(), 1, 60*time.Second)
		done <- result{ch, err}
	}()
	eventually(t, "the poll to be held", func() bool { return fc.heldPolls() == 1 })
	fc.publish(protocol.Op{Op: protocol.OpSet, Kind: "embed", Data: json.RawMessage(`{"allowed_origins":[]}`)})
	r := <-done
	if r.err != nil || r.ch == nil || r.ch.To != 2 {
		t.Fatalf("held poll: %+v, %v", r.ch, r.err)
	}
}

// cloudAnswering is a cloud that answers every request with status, the
// headers and body given.
func cloudAnswering(t *testing.T, status int, hdr map[string]string, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Credentials{URL: srv.URL, ApplianceID: "a", Secret: "s", PushKey: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChangesRefusesBrokenAnswers(t *testing.T) {
	rev := map[string]string{protocol.HeaderRevision: "3"}
	tests := []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		want   string
	}{
		{"garbage", 200, rev, `{"from": 1, "to": 3, "revisions": [`, "malformed"},
		{"empty 200", 200, rev, ``, "no body"},
		{"from another revision", 200, rev, `{"from": 2, "to": 3, "revisions": [{"revision": 3, "ops": []}]}`, "changes from 2, asked since 1"},
		{"revisions out of order", 200, rev, `{"from": 1, "to": 3, "revisions": [{"revision": 3, "ops": []}, {"revision": 2, "ops": []}]}`, "revisions[1] is 2"},
		{"revisions short of to", 200, rev, `{"from": 1, "to": 3, "revisions": [{"revision": 2, "ops": []}]}`, "end at 2, not at to 3"},
		{"to before from", 200, rev, `{"from": 1, "to": 0, "revisions": []}`, "before from"},
		{"204 without a revision", 204, nil, ``, protocol.HeaderRevision},
		{"bad revision header", 200, map[string]string{protocol.HeaderRevision: "x"}, `{"from": 1, "to": 2, "revisions": [{"revision": 2, "ops": []}]}`, protocol.HeaderRevision},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cloudAnswering(t, tt.status, tt.hdr, tt.body)
			ch, _, err := c.Changes(context.Background(), 1, 0)
			if ch != nil {
				t.Errorf("changes returned with an error: %+v", ch)
			}
			if !errors.Is(err, ErrMalformedAnswer) || !Retryable(err) {
				t.Errorf("%v: want ErrMalformedAnswer, retryable", err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retryable bool
		wantMsg   string
		problems  int
	}{
		{"500 with the cloud's body", 500, `{"error": "database down"}`, true, "HTTP 500: database down", 0},
		{"503 plain text", 503, "upstream unavailable\n", true, "HTTP 503: upstream unavailable", 0},
		{"502 empty", 502, "", true, "HTTP 502: Bad Gateway", 0},
		{"429", 429, `{"error": "slow down"}`, true, "slow down", 0},
		{"400 with problems", 400, `{"error": "batch refused", "problems": [{"path": "records[2].id", "message": "required"}]}`, false, "batch refused: records[2].id: required", 1},
		{"404", 404, `{"error": "no such endpoint"}`, false, "HTTP 404", 0},
		{"401", 401, `{"error": "who?"}`, false, "who?", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cloudAnswering(t, tt.status, nil, tt.body)
			err := c.Ack(context.Background(), protocol.Ack{Revision: 4, Status: protocol.AckApplied})
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != tt.status {
				t.Fatalf("%v: want an HTTPError %d", err, tt.status)
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable = %v, want %v", Retryable(err), tt.retryable)
			}
			if len(he.Problems) != tt.problems {
				t.Errorf("%d problems, want %d", len(he.Problems), tt.problems)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), "ack revision 4 applied") {
				t.Errorf("error %q does not say %q and what failed", err, tt.wantMsg)
			}
		})
	}
}

func TestClientTransportErrorsAreRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := NewClient(Credentials{URL: url, ApplianceID: "a", Secret: "s", PushKey: "ab"})
	_, err := c.Hello(context.Background(), protocol.Hello{})
	if err == nil || !Retryable(err) || !strings.Contains(err.Error(), "hello") {
		t.Errorf("closed server: %v, want a retryable error naming the hello", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Hello(ctx, protocol.Hello{}); Retryable(err) {
		t.Errorf("cancelled: %v is retryable", err)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, _ := NewClient(Credentials{URL: srv.URL, ApplianceID: "a", Secret: "s", PushKey: "ab"}, WithTimeout(50*time.Millisecond))
	_, err := c.Snapshot(context.Background(), "")
	if !errors.Is(err, context.DeadlineExceeded) || !Retryable(err) {
		t.Errorf("hanging cloud: %v, want a retryable deadline error", err)
	}
}

func TestClientAnswerSizeLimit(t *testing.T) {
	c := cloudAnswering(t, 200, nil, `{"revision": 1, "pad": "`+strings.Repeat("x", maxSmallAnswer)+`"}`)
	_, err := c.Hello(context.Background(), protocol.Hello{})
	if !errors.Is(err, ErrMalformedAnswer) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}
}

func TestClientHelloGarbage(t *testing.T) {
	c := cloudAnswering(t, 200, nil, `<html>captive portal</html>`)
	if _, err := c.Hello(context.Background(), protocol.Hello{}); !errors.Is(err, ErrMalformedAnswer) || !Retryable(err) {
		t.Errorf("garbage hello: %v, want a retryable ErrMalformedAnswer", err)
	}
}

func TestSnapshotRequiresARevision(t *testing.T) {
	c := cloudAnswering(t, 200, nil, `{"revision": 4}`)
	if _, err := c.Snapshot(context.Background(), ""); !errors.Is(err, ErrMalformedAnswer) {
		t.Errorf("snapshot without X-Outpost-Revision: %v", err)
	}
	c = cloudAnswering(t, 200, map[string]string{protocol.HeaderRevision: "4"}, `{"revision": `)
	if _, err := c.Snapshot(context.Background(), ""); !errors.Is(err, ErrMalformedAnswer) {
		t.Errorf("truncated snapshot: %v", err)
	}
}

func TestUploadJournalChecksItsBatch(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	c := fc.client(t)
	if _, err := c.UploadJournal(context.Background(), "", nil); err == nil {
		t.Error("no key: uploaded")
	}
	big := make([]json.RawMessage, protocol.MaxJournalBatch+1)
	if _, err := c.UploadJournal(context.Background(), "k", big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("too big a batch: %v", err)
	}
	if n := len(fc.requestList(protocol.PathJournal)); n != 0 {
		t.Errorf("%d requests sent for refused batches", n)
	}
}

func TestNewClientNeedsCredentials(t *testing.T) {
	if _, err := NewClient(Credentials{URL: "http://c.example"}); !errors.Is(err, ErrNotPaired) {
		t.Errorf("no secret: %v, want ErrNotPaired", err)
	}
	if _, err := NewClient(Credentials{URL: "c.example", ApplianceID: "a", Secret: "s"}); err == nil {
		t.Error("URL without scheme accepted")
	}
}

// testCA is a certificate authority made for a test.
type testCA struct{ *testpki.CA }

func newTestCA(t *testing.T) *testCA { return &testCA{testpki.NewCA(t, "outpost test CA")} }

// issue makes a server certificate for hosts (IP addresses or names),
// valid from notBefore to notAfter.
func (ca *testCA) issue(t *testing.T, notBefore, notAfter time.Time, hosts ...string) tls.Certificate {
	return ca.Issue(t, testpki.Leaf{Hosts: hosts, NotBefore: notBefore, NotAfter: notAfter}).TLS
}

// client trusts the CA only, at most TLS version maxVersion (0: any).
func (ca *testCA) client(maxVersion uint16) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MaxVersion: maxVersion},
	}}
}

// tlsFakeCloud serves fc over HTTPS with cert (TLS minVersion at least),
// and returns the credentials that name it.
func tlsFakeCloud(t *testing.T, fc *fakeCloud, cert tls.Certificate, minVersion uint16) Credentials {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fc.serve))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minVersion}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	creds := fc.creds()
	creds.URL = srv.URL
	return creds
}

// A TLS failure says what is wrong in plain words, names the request,
// wraps ErrTLS and the x509 error, and is retried like other transport
// errors.
func TestClientTLS(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	good := ca.issue(t, now.Add(-time.Minute), now.Add(time.Hour), "127.0.0.1")
	for _, tt := range []struct {
		name       string
		cert       tls.Certificate
		minVersion uint16
		client     *http.Client
		want       string // in the error; "" for success
		wantAs     any    // a pointer to the x509 error type wrapped
	}{
		{name: "trusted", cert: good, client: ca.client(0)},
		{name: "unknown authority", cert: good, client: &http.Client{},
			want:   "the cloud's certificate is not trusted: x509: certificate signed by unknown authority; if the cloud uses a private CA, set SSL_CERT_FILE",
			wantAs: &x509.UnknownAuthorityError{}},
		{name: "other CA", cert: newTestCA(t).issue(t, now.Add(-time.Minute), now.Add(time.Hour), "127.0.0.1"), client: ca.client(0),
			want: "the cloud's certificate is not trusted", wantAs: &x509.UnknownAuthorityError{}},
		{name: "wrong host name", cert: ca.issue(t, now.Add(-time.Minute), now.Add(time.Hour), "cloud.example", "10.9.9.9"), client: ca.client(0),
			want:   "the cloud's certificate is for other names than the host in the cloud URL: x509: certificate is valid for 10.9.9.9, not 127.0.0.1",
			wantAs: &x509.HostnameError{}},
		{name: "expired", cert: ca.issue(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "127.0.0.1"), client: ca.client(0),
			want:   "the cloud's certificate has expired or is not valid yet: x509: certificate has expired",
			wantAs: &x509.CertificateInvalidError{}},
		{name: "no common version", cert: good, minVersion: tls.VersionTLS13, client: ca.client(tls.VersionTLS12),
			want: "the cloud refused the TLS handshake: remote error: tls: protocol version not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCloud(t, demoDoc(t))
			creds := tlsFakeCloud(t, fc, tt.cert, tt.minVersion)
			c, err := NewClient(creds, WithHTTPClient(tt.client))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Hello(context.Background(), protocol.Hello{NodeID: "n1"})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("hello over TLS: %v", err)
				}
				if _, err := c.Snapshot(context.Background(), ""); err != nil {
					t.Errorf("snapshot over TLS: %v", err)
				}
				return
			}
			t.Log(err)
			if !errors.Is(err, ErrTLS) || !Retryable(err) {
				t.Errorf("got %v, want a retryable ErrTLS", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `hello: Post "`+creds.URL+`/v1/sync/hello"`) {
				t.Errorf("got %v, want the request and %q", err, tt.want)
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("got %v, want it to wrap a %T", err, tt.wantAs)
			}
			if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrMalformedAnswer) {
				t.Errorf("got %v, classified as more than a TLS failure", err)
			}
		})
	}
}

// Pairing over TLS: trusted, it pairs; not trusted, the error says so and
// is no refused code.
func TestPairTLS(t *testing.T) {
	ca := newTestCA(t)
	fc := newFakeCloud(t, demoDoc(t))
	fc.addCode("CODE-1")
	creds := tlsFakeCloud(t, fc, ca.issue(t, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), "127.0.0.1"), 0)
	_, err := Pair(context.Background(), creds.URL, "CODE-1", "n1", WithHTTPClient(&http.Client{}))
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrPairingRefused) || !strings.Contains(err.Error(), "pair with "+creds.URL) ||
		!strings.Contains(err.Error(), "the cloud's certificate is not trusted") {
		t.Errorf("pair with an untrusted cloud: %v, want ErrTLS saying the certificate is not trusted", err)
	}
	got, err := Pair(context.Background(), creds.URL, "CODE-1", "n1", WithHTTPClient(ca.client(0)))
	if err != nil || got.URL != creds.URL || got.Secret == "" {
		t.Errorf("pair with a trusted cloud: %+v, %v", got, err)
	}
}

// The other side of a scheme mismatch: https:// to a plain HTTP cloud.
func TestClientHTTPSToPlainHTTP(t *testing.T) {
	fc := newFakeCloud(t, demoDoc(t))
	creds := fc.creds()
	creds.URL = strings.Replace(creds.URL, "http://", "https://", 1)
	c, err := NewClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Hello(context.Background(), protocol.Hello{NodeID: "n1"})
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "the cloud answers plain HTTP on this port") {
		t.Errorf("https to a plain HTTP cloud: %v", err)
	}
}

func TestTLSErrorLeavesOthersAlone(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		&url.Error{Op: "Post", URL: "https://c.example/v1/sync/hello", Err: context.DeadlineExceeded},
		&url.Error{Op: "Post", URL: "https://c.example/v1/sync/hello", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}},
		&HTTPError{Status: 500},
	} {
		if got := classifyTransport(err); got != err || errors.Is(got, ErrTLS) {
			t.Errorf("%v became %v", err, got)
		}
	}
}
