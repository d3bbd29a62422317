package cloudsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Client limits and defaults.
const (
	// DefaultTimeout bounds one request (a long poll gets its wait on top).
	DefaultTimeout = 15 * time.Second
	// ProbeTimeout bounds a hello: a slower answer counts as unreachable.
	ProbeTimeout = 5 * time.Second
	// maxSmallAnswer bounds every answer but snapshots and changes.
	maxSmallAnswer = 1 << 20
	// maxDocAnswer bounds snapshot and changes answers.
	maxDocAnswer = account.MaxSnapshotBytes
	// BlobTimeout bounds a blob's download (or the client's timeout, if
	// longer): 5 MiB over a slow link.
	BlobTimeout = 2 * time.Minute
)

// Option tunes a Client or Pair.
type Option func(*options)

type options struct {
	http    *http.Client
	timeout time.Duration
	now     func() time.Time
	agent   string
}

// WithHTTPClient makes requests with hc (its transport: TLS roots, proxy);
// the default is a client of its own over http.DefaultTransport, which
// trusts the system's roots (on Linux, SSL_CERT_FILE and SSL_CERT_DIR
// replace them).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.http = hc } }

// WithTimeout bounds each request (DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithClock sets the clock Pair stamps credentials with (time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithUserAgent names the appliance's software in requests.
func WithUserAgent(ua string) Option { return func(o *options) { o.agent = ua } }

func buildOptions(opts []Option) options {
	o := options{timeout: DefaultTimeout, now: time.Now, agent: "outpost"}
	for _, f := range opts {
		f(&o)
	}
	if o.http == nil {
		o.http = &http.Client{}
	}
	return o
}

// Client speaks the appliance side of the sync protocol
// (docs/sync-protocol.md) with one paired appliance's credentials. Every
// error says what failed; an answer with an error status is an *HTTPError;
// a failed TLS handshake (the certificate not trusted, for other names,
// expired) wraps a *TLSError (ErrTLS); an answer that does not parse
// wraps ErrMalformedAnswer and nothing of it is returned. It is safe for
// concurrent use.
type Client struct {
	base   string
	id     string
	secret string
	o      options
}

// NewClient talks to the cloud the credentials name.
func NewClient(c Credentials, opts ...Option) (*Client, error) {
	base, err := normalizeBaseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("cloud client: %w", err)
	}
	if c.ApplianceID == "" || c.Secret == "" {
		return nil, fmt.Errorf("cloud client: %w: credentials without appliance_id or secret", ErrNotPaired)
	}
	return &Client{base: base, id: c.ApplianceID, secret: c.Secret, o: buildOptions(opts)}, nil
}

// BaseURL is the cloud's base URL, normalised.
func (c *Client) BaseURL() string { return c.base }

// normalizeBaseURL checks an http(s) URL with a host and drops trailing
// slashes.
func normalizeBaseURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("cloud URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("cloud URL %q: want http(s)://HOST[:PORT][/PATH]", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("cloud URL %q: no query or fragment, please", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Pair exchanges a one-use pairing code for credentials (POST /v1/pair).
// An unknown, used or expired code wraps ErrPairingRefused. The caller
// saves the credentials (SaveCredentials).
func Pair(ctx context.Context, baseURL, code, name string, opts ...Option) (Credentials, error) {
	base, err := normalizeBaseURL(baseURL)
	if err != nil {
		return Credentials{}, fmt.Errorf("pair: %w", err)
	}
	if strings.TrimSpace(code) == "" {
		return Credentials{}, errors.New("pair: no pairing code")
	}
	c := &Client{base: base, o: buildOptions(opts)}
	var resp protocol.PairResponse
	ans, err := c.do(ctx, http.MethodPost, protocol.PathPair, protocol.PairRequest{Code: code, Name: name}, nil, c.o.timeout, maxSmallAnswer)
	if err == nil {
		err = ans.decode(&resp)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("pair with %s: %w", base, err)
	}
	creds := Credentials{
		URL:         base,
		ApplianceID: resp.ApplianceID,
		Secret:      resp.Secret,
		PushKey:     resp.PushKey,
		PairedAt:    c.o.now().UTC(),
	}
	if err := creds.Check(); err != nil {
		return Credentials{}, fmt.Errorf("pair with %s: %w: %v", base, ErrMalformedAnswer, err)
	}
	return creds, nil
}

// Hello probes the cloud (POST /v1/sync/hello) within ProbeTimeout (or the
// client's timeout, if shorter).
func (c *Client) Hello(ctx context.Context, h protocol.Hello) (protocol.HelloResponse, error) {
	var resp protocol.HelloResponse
	ans, err := c.do(ctx, http.MethodPost, protocol.PathHello, h, nil, min(ProbeTimeout, c.o.timeout), maxSmallAnswer)
	if err == nil {
		err = ans.decode(&resp)
	}
	if err != nil {
		return protocol.HelloResponse{}, fmt.Errorf("hello: %w", err)
	}
	return resp, nil
}

// SnapshotAnswer is the cloud's answer to a snapshot request.
type SnapshotAnswer struct {
	Doc         []byte // the snapshot document; nil when NotModified
	Revision    int64  // from X-Outpost-Revision
	ETag        string // to send back as If-None-Match
	NotModified bool   // 304: the snapshot is still the one with the ETag sent
}

// Snapshot fetches the cloud's whole snapshot (GET /v1/sync/snapshot),
// conditionally when etag is not empty.
func (c *Client) Snapshot(ctx context.Context, etag string) (SnapshotAnswer, error) {
	var hdr http.Header
	if etag != "" {
		hdr = http.Header{"If-None-Match": {etag}}
	}
	ans, err := c.do(ctx, http.MethodGet, protocol.PathSnapshot, nil, hdr, c.o.timeout, maxDocAnswer)
	if err != nil {
		return SnapshotAnswer{}, fmt.Errorf("fetch snapshot: %w", err)
	}
	if ans.status == http.StatusNotModified {
		return SnapshotAnswer{NotModified: true, ETag: etag}, nil
	}
	rev, err := ans.revision(true)
	if err == nil && (len(ans.body) == 0 || !json.Valid(ans.body)) {
		err = fmt.Errorf("%w: the snapshot is not JSON", ErrMalformedAnswer)
	}
	if err != nil {
		return SnapshotAnswer{}, fmt.Errorf("fetch snapshot: %w", err)
	}
	return SnapshotAnswer{Doc: ans.body, Revision: rev, ETag: ans.header.Get("ETag")}, nil
}

// Changes long-polls the revisions after since (GET /v1/sync/changes),
// letting the cloud hold the request up to wait (whole seconds, at most
// protocol.MaxWait). It returns the changes (nil when the cloud had
// nothing new: 204) and the cloud's current revision. A since the cloud no
// longer keeps history for wraps ErrTooFarBehind; one ahead of the cloud,
// ErrAhead. The answer is checked whole: revisions in order, from since
// to To; a broken chain wraps ErrMalformedAnswer.
func (c *Client) Changes(ctx context.Context, since int64, wait time.Duration) (*protocol.Changes, int64, error) {
	wait = min(max(wait, 0), protocol.MaxWait)
	secs := int64(wait / time.Second)
	path := protocol.PathChanges + "?since=" + strconv.FormatInt(since, 10) + "&wait=" + strconv.FormatInt(secs, 10)
	ans, err := c.do(ctx, http.MethodGet, path, nil, nil, c.o.timeout+time.Duration(secs)*time.Second, maxDocAnswer)
	if err != nil {
		return nil, 0, fmt.Errorf("poll changes since %d: %w", since, err)
	}
	if ans.status == http.StatusNoContent {
		cur, err := ans.revision(true)
		if err != nil {
			return nil, 0, fmt.Errorf("poll changes since %d: %w", since, err)
		}
		return nil, cur, nil
	}
	var ch protocol.Changes
	err = ans.decode(&ch)
	if err == nil {
		err = checkChanges(&ch, since)
	}
	cur := ch.To
	if err == nil {
		if hc, herr := ans.revision(false); herr != nil {
			err = herr
		} else if hc > cur {
			cur = hc
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("poll changes since %d: %w", since, err)
	}
	return &ch, cur, nil
}

// checkChanges refuses an answer that does not lead from since to To in
// order.
func checkChanges(ch *protocol.Changes, since int64) error {
	if ch.From != since {
		return fmt.Errorf("%w: changes from %d, asked since %d", ErrMalformedAnswer, ch.From, since)
	}
	if ch.To < ch.From {
		return fmt.Errorf("%w: changes to %d, before from %d", ErrMalformedAnswer, ch.To, ch.From)
	}
	prev := ch.From
	for i, r := range ch.Revisions {
		if r.Revision <= prev {
			return fmt.Errorf("%w: revisions[%d] is %d, not after %d", ErrMalformedAnswer, i, r.Revision, prev)
		}
		prev = r.Revision
	}
	if prev != ch.To {
		return fmt.Errorf("%w: the revisions end at %d, not at to %d", ErrMalformedAnswer, prev, ch.To)
	}
	return nil
}

// Ack tells the cloud what the appliance did with a revision (POST
// /v1/sync/ack).
func (c *Client) Ack(ctx context.Context, a protocol.Ack) error {
	if _, err := c.do(ctx, http.MethodPost, protocol.PathAck, a, nil, c.o.timeout, maxSmallAnswer); err != nil {
		return fmt.Errorf("ack revision %d %s: %w", a.Revision, a.Status, err)
	}
	return nil
}

// UploadJournal sends one batch of call records (POST /v1/sync/journal)
// under an idempotency key: a retry with the same key is answered as the
// first attempt was.
func (c *Client) UploadJournal(ctx context.Context, key string, records []json.RawMessage) (protocol.JournalReceipt, error) {
	switch {
	case key == "":
		return protocol.JournalReceipt{}, errors.New("upload journal: no idempotency key")
	case len(records) > protocol.MaxJournalBatch:
		return protocol.JournalReceipt{}, fmt.Errorf("upload journal: %d records, more than %d a batch", len(records), protocol.MaxJournalBatch)
	}
	var r protocol.JournalReceipt
	hdr := http.Header{protocol.HeaderIdempotencyKey: {key}}
	ans, err := c.do(ctx, http.MethodPost, protocol.PathJournal, protocol.JournalBatch{Records: records}, hdr, c.o.timeout, maxSmallAnswer)
	if err == nil {
		err = ans.decode(&r)
	}
	if err != nil {
		return protocol.JournalReceipt{}, fmt.Errorf("upload journal batch of %d (key %s): %w", len(records), key, err)
	}
	return r, nil
}

// ReportOverrides sends every SDG override in force on the appliance
// (POST /v1/sync/overrides) under an idempotency key (OverridesKey): the
// cloud keeps the latest report, and answers a report sent again with the
// key of the one it holds as it did the first time. A cloud that does not
// take reports wraps ErrOverridesUnsupported; an answer that does not
// count the overrides sent wraps ErrMalformedAnswer.
func (c *Client) ReportOverrides(ctx context.Context, key string, overrides []protocol.Override) (protocol.OverrideReceipt, error) {
	switch {
	case key == "":
		return protocol.OverrideReceipt{}, errors.New("report sdg overrides: no idempotency key")
	case len(overrides) > protocol.MaxOverrides:
		return protocol.OverrideReceipt{}, fmt.Errorf("report sdg overrides: %d overrides, more than %d a report", len(overrides), protocol.MaxOverrides)
	}
	if overrides == nil {
		overrides = []protocol.Override{} // "overrides": [], never null
	}
	var r protocol.OverrideReceipt
	hdr := http.Header{protocol.HeaderIdempotencyKey: {key}}
	ans, err := c.do(ctx, http.MethodPost, protocol.PathOverrides, protocol.OverrideReport{Overrides: overrides}, hdr, c.o.timeout, maxSmallAnswer)
	if err == nil {
		err = ans.decode(&r)
	}
	if err == nil && r.Accepted != len(overrides) {
		err = fmt.Errorf("%w: the cloud accepted %d overrides of %d", ErrMalformedAnswer, r.Accepted, len(overrides))
	}
	if err != nil {
		return protocol.OverrideReceipt{}, fmt.Errorf("report %d sdg overrides (key %s): %w", len(overrides), key, err)
	}
	return r, nil
}

// Blob fetches the blob id (GET /v1/sync/blobs/{id}): a custom prompt's
// recording, at most protocol.MaxBlobBytes. The caller checks its SHA-256.
// A blob the cloud does not have is an *HTTPError with status 404.
func (c *Client) Blob(ctx context.Context, id string) ([]byte, error) {
	if !account.IsBlobID(id) {
		return nil, fmt.Errorf("fetch blob %q: not a blob id", id)
	}
	hdr := http.Header{"Accept": {"audio/wav, application/octet-stream, */*"}}
	ans, err := c.do(ctx, http.MethodGet, protocol.PathBlobs+url.PathEscape(id), nil, hdr,
		max(c.o.timeout, BlobTimeout), protocol.MaxBlobBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", id, err)
	}
	if ans.status != http.StatusOK {
		return nil, fmt.Errorf("fetch blob %s: %w: HTTP %d", id, ErrMalformedAnswer, ans.status)
	}
	return ans.body, nil
}

// answer is a successful (2xx or 304) answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// decode parses the body into v; an empty or unparsable body is an error.
func (a *answer) decode(v any) error {
	if len(a.body) == 0 {
		return fmt.Errorf("%w: HTTP %d with no body", ErrMalformedAnswer, a.status)
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedAnswer, err)
	}
	return nil
}

// revision reads X-Outpost-Revision.
func (a *answer) revision(required bool) (int64, error) {
	v := a.header.Get(protocol.HeaderRevision)
	if v == "" && !required {
		return 0, nil
	}
	rev, err := strconv.ParseInt(v, 10, 64)
	if err != nil || rev < 0 {
		return 0, fmt.Errorf("%w: %s %q", ErrMalformedAnswer, protocol.HeaderRevision, v)
	}
	return rev, nil
}

// do sends one request with the appliance's credentials (when it has
// them) within timeout, and reads the answer whole, at most limit bytes.
// A status other than 2xx and 304 is an *HTTPError.
func (c *Client) do(ctx context.Context, method, path string, in any, hdr http.Header, timeout time.Duration, limit int64) (*answer, error) {
	var data []byte
	if in != nil {
		var err error
		if data, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	return c.doRaw(ctx, method, path, data, "application/json", hdr, timeout, limit)
}

// doRaw is do with the body already encoded (nil: none) as contentType.
func (c *Client) doRaw(ctx context.Context, method, path string, data []byte, contentType string, hdr http.Header, timeout time.Duration, limit int64) (*answer, error) {
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if data != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.o.agent)
	if c.secret != "" {
		req.Header.Set(protocol.HeaderAppliance, c.id)
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	resp, err := c.o.http.Do(req)
	if err != nil {
		// A *url.Error names the method and URL; a TLS failure in it
		// becomes a *TLSError that says what is wrong (ErrTLS).
		return nil, classifyTransport(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if int64(len(got)) > limit {
		return nil, fmt.Errorf("%s %s: %w: larger than %d bytes", method, path, ErrMalformedAnswer, limit)
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified {
		return &answer{status: resp.StatusCode, header: resp.Header, body: got}, nil
	}
	return nil, httpError(method, path, resp.StatusCode, got)
}

// httpError reads the cloud's {"error", "problems"} body, or keeps the
// start of whatever else came.
func httpError(method, path string, status int, data []byte) *HTTPError {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	e := &HTTPError{Method: method, Path: path, Status: status}
	var body protocol.Error
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message, e.Problems, e.Current = body.Error, body.Problems, body.Current
		return e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}
