package cloudsync_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync"
	"github.com/outpost-voice/outpost/cloudsync/cloud"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// mailboxes is a VoicemailSource in memory: messages, the audio this
// node holds, and what was marked and freed.
type mailboxes struct {
	mu      sync.Mutex
	msgs    []protocol.VoicemailMessage
	audio   map[string][]byte // by sha256; missing: no node has it
	marked  []string
	freed   []string
	markErr error
}

func (m *mailboxes) PendingVoicemail(_ context.Context, limit int) ([]protocol.VoicemailMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []protocol.VoicemailMessage
	for _, v := range m.msgs {
		if !slices.Contains(m.marked, v.ID) && len(out) < limit {
			out = append(out, v)
		}
	}
	return out, nil
}

func (m *mailboxes) VoicemailAudio(_ context.Context, v protocol.VoicemailMessage) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.audio[v.SHA256]
	if !ok {
		return nil, errors.New("no node holds it")
	}
	return data, nil
}

func (m *mailboxes) MarkVoicemailUploaded(_ context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.markErr != nil {
		return m.markErr
	}
	for _, id := range ids {
		m.marked = append(m.marked, id)
		for _, v := range m.msgs {
			if v.ID == id {
				delete(m.audio, v.SHA256)
				m.freed = append(m.freed, v.SHA256)
			}
		}
	}
	return nil
}

func (m *mailboxes) add(id, content string) (protocol.VoicemailMessage, []byte) {
	data := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), content...)
	sum := sha256.Sum256(data)
	v := protocol.VoicemailMessage{ID: id, Mailbox: "u-carol", Caller: "1001", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DurationMS: 2000, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Folder: "new", Node: "n1"}
	m.mu.Lock()
	m.msgs = append(m.msgs, v)
	m.audio[v.SHA256] = data
	m.mu.Unlock()
	return v, data
}

// realCloud is outpost-cloud's server on a test listener, behind a proxy
// that can lose the answer of the next request to a path (the cloud did
// the work, the appliance hears 503).
type realCloud struct {
	url   string
	lose  map[string]int
	mu    sync.Mutex
	admin func(path string) []byte
}

const adminToken = "voicemail-test-admin-token"

func newRealCloud(t *testing.T) (*realCloud, *cloudsync.Client) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := cloud.Open(filepath.Join(t.TempDir(), "cloud.db"), cloud.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := cloud.New(cloud.Config{Store: st, AdminToken: adminToken, Log: log})
	rc := &realCloud{lose: map[string]int{}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		lose := rc.lose[r.URL.Path] > 0
		if lose {
			rc.lose[r.URL.Path]--
		}
		rc.mu.Unlock()
		if !lose {
			srv.Handler().ServeHTTP(w, r)
			return
		}
		srv.Handler().ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, `{"error":"lost on the way"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(ts.Close)
	rc.url = ts.URL
	rc.admin = func(path string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	// Pair an appliance "site1".
	body, _ := json.Marshal(cloud.PairingCodeRequest{Appliance: "site1"})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/admin/pairing-codes", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var code cloud.PairingCodeResponse
	err = json.NewDecoder(resp.Body).Decode(&code)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cloudsync.Pair(t.Context(), ts.URL, code.Code, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudsync.NewClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	return rc, c
}

func (rc *realCloud) loseNext(path string) {
	rc.mu.Lock()
	rc.lose[path]++
	rc.mu.Unlock()
}

func (rc *realCloud) messages(t *testing.T) []protocol.VoicemailMessage {
	t.Helper()
	var list struct{ Messages []protocol.VoicemailMessage }
	if err := json.Unmarshal(rc.admin("/v1/admin/voicemail?appliance=site1"), &list); err != nil {
		t.Fatal(err)
	}
	return list.Messages
}

func ids(ms []protocol.VoicemailMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// Audio then messages, exactly once: a batch whose answer is lost is
// retried under the same key and nothing is marked or freed before the
// cloud's answer; a message whose audio no node has is skipped without
// holding the others back, and goes up once its audio is back.
func TestVoicemailUploaderExactlyOnce(t *testing.T) {
	rc, client := newRealCloud(t)
	box := &mailboxes{audio: map[string][]byte{}}
	_, one := box.add("m1", "first")
	_, two := box.add("m2", "second")
	three, threeAudio := box.add("m3", "third")
	box.mu.Lock()
	delete(box.audio, three.SHA256) // on a node that is down
	box.mu.Unlock()
	u, err := cloudsync.NewVoicemailUploader(cloudsync.VoicemailUploaderConfig{Client: client, Source: box})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	rc.loseNext(protocol.PathVoicemail)
	if _, err := u.UploadPending(ctx); err == nil || !cloudsync.Retryable(err) {
		t.Fatalf("upload with the answer lost: %v, want a retryable error", err)
	}
	if len(box.marked) != 0 || len(box.freed) != 0 {
		t.Fatalf("marked %v, freed %v before the cloud answered", box.marked, box.freed)
	}
	n, err := u.UploadPending(ctx)
	if err != nil || n != 2 {
		t.Fatalf("upload again: %d, %v; want 2 taken", n, err)
	}
	if !slices.Equal(box.marked, []string{"m1", "m2"}) || len(box.freed) != 2 {
		t.Fatalf("marked %v, freed %v; want m1 and m2", box.marked, box.freed)
	}
	st := u.Status()
	if st.Drained || st.Unavailable["m3"] == "" || st.Uploaded != 2 {
		t.Errorf("status %+v: want m3 listed as unavailable, not drained", st)
	}
	if got := ids(rc.messages(t)); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("cloud holds %v, want m1 and m2 once each", got)
	}
	for _, tc := range []struct {
		id   string
		want []byte
	}{{"m1", one}, {"m2", two}} {
		if got := rc.admin("/v1/admin/voicemail/" + tc.id + "/audio"); !bytes.Equal(got, tc.want) {
			t.Errorf("cloud audio of %s: %q, want %q", tc.id, got, tc.want)
		}
	}

	box.mu.Lock()
	box.audio[three.SHA256] = threeAudio // its node is back
	box.mu.Unlock()
	if n, err := u.UploadPending(ctx); err != nil || n != 1 {
		t.Fatalf("upload of m3: %d, %v", n, err)
	}
	if got := ids(rc.messages(t)); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("cloud holds %v, want m1, m2, m3 once each", got)
	}
	if st := u.Status(); !st.Drained || len(st.Unavailable) != 0 {
		t.Errorf("status %+v, want drained", st)
	}
	if n, err := u.UploadPending(ctx); err != nil || n != 0 {
		t.Errorf("nothing left: %d, %v", n, err)
	}
}

// Audio that does not match its hash is refused by the cloud: nothing is
// marked or freed, and the error is not retried at once.
func TestVoicemailUploaderHashMismatch(t *testing.T) {
	_, client := newRealCloud(t)
	box := &mailboxes{audio: map[string][]byte{}}
	m, _ := box.add("m1", "first")
	box.mu.Lock()
	box.audio[m.SHA256] = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), "damaged"...)
	box.mu.Unlock()
	u, err := cloudsync.NewVoicemailUploader(cloudsync.VoicemailUploaderConfig{Client: client, Source: box})
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.UploadPending(context.Background())
	var he *cloudsync.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || cloudsync.Retryable(err) {
		t.Fatalf("upload of damaged audio: %v, want a 400 that is not retryable", err)
	}
	if len(box.marked) != 0 || len(box.freed) != 0 {
		t.Errorf("marked %v, freed %v", box.marked, box.freed)
	}
	if st := u.Status(); st.LastError == "" || st.Drained {
		t.Errorf("status %+v, want the error", st)
	}
}

// A failure to mark (the cluster has no leader) leaves the audio where it
// is; the next look uploads the same batch again, the cloud answers it as
// before, and nothing is stored twice.
func TestVoicemailUploaderMarkFails(t *testing.T) {
	rc, client := newRealCloud(t)
	box := &mailboxes{audio: map[string][]byte{}, markErr: fmt.Errorf("no leader")}
	box.add("m1", "first")
	u, err := cloudsync.NewVoicemailUploader(cloudsync.VoicemailUploaderConfig{Client: client, Source: box})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.UploadPending(context.Background()); err == nil {
		t.Fatal("upload whose mark failed: no error")
	}
	if len(box.freed) != 0 {
		t.Fatalf("freed %v without a mark", box.freed)
	}
	box.mu.Lock()
	box.markErr = nil
	box.mu.Unlock()
	if n, err := u.UploadPending(context.Background()); err != nil || n != 1 {
		t.Fatalf("upload again: %d, %v", n, err)
	}
	if got := ids(rc.messages(t)); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("cloud holds %v, want m1 once", got)
	}
}
