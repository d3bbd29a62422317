package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/wav"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/cloudsync"
	"github.com/outpost-voice/outpost/cloudsync/cloud"
	"github.com/outpost-voice/outpost/config"
)

const promptCloudToken = "admin-token-for-prompt-tests"

// promptCloud is outpost-cloud in-process on 127.0.0.1:0.
type promptCloud struct {
	t   *testing.T
	url string
}

func newPromptCloud(t *testing.T) *promptCloud {
	t.Helper()
	st, err := cloud.Open(filepath.Join(t.TempDir(), "cloud.db"), cloud.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := cloud.New(cloud.Config{Store: st, AdminToken: promptCloudToken})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		_ = st.Close()
	})
	return &promptCloud{t: t, url: "http://" + ln.Addr().String()}
}

func (pc *promptCloud) admin(method, path string, body []byte, want int) []byte {
	pc.t.Helper()
	req, err := http.NewRequest(method, pc.url+path, bytes.NewReader(body))
	if err != nil {
		pc.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+promptCloudToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		pc.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	return data
}

// pair pairs an appliance and returns its credentials.
func (pc *promptCloud) pair() cloudsync.Credentials {
	pc.t.Helper()
	body, _ := json.Marshal(cloud.PairingCodeRequest{Appliance: "branch-1"})
	var code cloud.PairingCodeResponse
	if err := json.Unmarshal(pc.admin(http.MethodPost, "/v1/admin/pairing-codes", body, http.StatusOK), &code); err != nil {
		pc.t.Fatal(err)
	}
	creds, err := cloudsync.Pair(context.Background(), pc.url, code.Code, "n1")
	if err != nil {
		pc.t.Fatal(err)
	}
	return creds
}

// recording is a custom prompt's WAV and its hex SHA-256 (its blob id in
// outpost-cloud).
func recording(freq int) (data []byte, sum string, samples []int16) {
	samples = make([]int16, 800)
	for i := range samples {
		samples[i] = int16((i * freq) % 2000)
	}
	data = wav.Encode(samples)
	s := sha256.Sum256(data)
	return data, hex.EncodeToString(s[:]), samples
}

// promptDemo is the contract's demo with one custom prompt: main-menu,
// which its IVR plays.
func promptDemo(t *testing.T, rev int64, sum string) *account.Snapshot {
	t.Helper()
	data, err := os.ReadFile("../../../shared/contract/demo-snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := account.DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	s.Revision = rev
	s.Prompts = []account.Prompt{{Name: "main-menu", Blob: sum, SHA256: sum}}
	if err := account.Validate(s, rev-1); err != nil {
		t.Fatal(err)
	}
	return s
}

// The node's prompts follow the configuration served and the blobs: a
// custom prompt whose blob is not fetched yet is missing (and plays the
// built-in one), then plays once fetched; a name with neither a recording
// nor a built-in prompt is missing; a hash that does not match is
// missing.
func TestPromptsFollowConfigurationAndBlobs(t *testing.T) {
	ctx := t.Context()
	pc := newPromptCloud(t)
	client, err := cloudsync.NewClient(pc.pair())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var gen atomic.Uint64
	replace := func(s *account.Snapshot) {
		t.Helper()
		if err := st.Write(func(tx *store.Tx) error { return tx.ReplaceConfig(s, nil) }); err != nil {
			t.Fatal(err)
		}
		gen.Add(1)
	}
	r := st.Reader()
	dir := filepath.Join(t.TempDir(), "blobs")
	p, err := newPromptsWith(dir, func() *cloudsync.Client { return client },
		func(ctx context.Context) (promptConfig, error) {
			return readPromptConfig(ctx, r.Prompts, r.SDGs, r.Numbers, r.Callout)
		}, gen.Load, func() uint64 { return 1 }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	data, sum, samples := recording(7)
	replace(promptDemo(t, 1, sum))
	eventually(t, 10*time.Second, "main-menu missing", func() bool { return slices.Equal(p.Missing(), []string{"main-menu"}) })
	if pr := p.Library().Prompt("main-menu"); pr.Custom || len(pr.Samples) == 0 {
		t.Errorf("main-menu before its blob: custom %v, %d samples; want the built-in one", pr.Custom, len(pr.Samples))
	}

	pc.admin(http.MethodPut, "/v1/admin/blobs/"+sum, data, http.StatusCreated)
	eventually(t, 20*time.Second, "main-menu no longer missing", func() bool { return len(p.Missing()) == 0 })
	if pr := p.Library().Prompt("main-menu"); !pr.Custom || !slices.Equal(pr.Samples, samples) || pr.BlobID != sum {
		t.Errorf("main-menu once fetched: custom %v, blob %q; want the recording", pr.Custom, pr.BlobID)
	}
	if info, err := os.Stat(filepath.Join(dir, sum)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("blob file: %v, %v; want <blobs>/<sha256>, mode 0600", info, err)
	}

	// A greeting with neither a recording nor a built-in prompt, and the
	// menu's hash changed to one the blob does not have.
	next := promptDemo(t, 2, sum)
	next.Callout.GreetingPrompt = "holiday-greeting"
	_, other, _ := recording(11)
	next.Prompts[0].SHA256 = other
	replace(next)
	eventually(t, 10*time.Second, "both missing", func() bool {
		return slices.Equal(p.Missing(), []string{"holiday-greeting", "main-menu"})
	})
	if pr := p.Library().Prompt("main-menu"); pr.Custom {
		t.Error("main-menu plays a recording whose hash is not the configured one")
	}
}

func TestReadPromptConfigNamesEveryIVR(t *testing.T) {
	ivr := func(prompt string, options map[string]*account.Route, noInput *account.Route) *account.Route {
		return &account.Route{Type: account.RouteIVR, Prompt: prompt, Options: options, NoInput: noInput}
	}
	sdgs := []account.SDG{
		{ID: "a", Route: ivr("main-menu", map[string]*account.Route{"1": ivr("sales/menu", nil, nil)}, ivr("after-hours", nil, nil))},
		{ID: "b", Route: &account.Route{Type: account.RouteGroup, NoAnswer: ivr("voicemail-menu", nil, nil)}},
		{ID: "c"},
	}
	numbers := []account.Number{{Number: "+1", Route: ivr("main-menu", nil, nil)}}
	custom := []account.Prompt{{Name: "main-menu", Blob: "b", SHA256: "s"}}
	cfg, err := readPromptConfig(t.Context(),
		func(context.Context) ([]account.Prompt, error) { return custom, nil },
		func(context.Context) ([]account.SDG, error) { return sdgs, nil },
		func(context.Context) ([]account.Number, error) { return numbers, nil },
		func(context.Context) (account.Callout, error) {
			return account.Callout{GreetingPrompt: "callout-greeting"}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"after-hours", "callout-greeting", "main-menu", "sales/menu", "voicemail-menu"}
	if !slices.Equal(cfg.referenced, want) || !reflect.DeepEqual(cfg.custom, custom) {
		t.Errorf("config %+v, want referenced %q", cfg, want)
	}
}

// A node paired with outpost-cloud syncs a snapshot naming a custom
// prompt whose blob the cloud does not have yet: the prompt is reported
// missing; once the blob is uploaded the node fetches it into
// <data_dir>/blobs and it is no longer missing.
func TestNodeReportsPromptMissingUntilFetched(t *testing.T) {
	pc := newPromptCloud(t)
	data, sum, _ := recording(5)
	doc, err := promptDemo(t, 1, sum).Encode()
	if err != nil {
		t.Fatal(err)
	}
	pc.admin(http.MethodPut, "/v1/admin/snapshot", doc, http.StatusOK)
	creds := pc.pair()

	cfg := config.Default()
	cfg.NodeID, cfg.DataDir = "n1", t.TempDir()
	cfg.Cloud.URL = pc.url
	if err := cloudsync.SaveCredentials(cfg.CloudCredentialsFile(), creds); err != nil {
		t.Fatal(err)
	}
	n, ctx, _ := runNode(t, cfg)
	eventually(t, 30*time.Second, "the cloud's snapshot applied", func() bool {
		rev, err := n.store.Reader().Revision(ctx)
		return err == nil && rev == 1
	})

	// What the node's status says falls back.
	status := web.NewClient("http://"+n.HTTPAddr(), "")
	missing := func() []string {
		st, err := status.Status(ctx)
		if err != nil {
			return []string{"status: " + err.Error()}
		}
		return st.PromptsMissing
	}
	eventually(t, 10*time.Second, "main-menu reported missing", func() bool {
		return slices.Equal(missing(), []string{"main-menu"})
	})
	pc.admin(http.MethodPut, "/v1/admin/blobs/"+sum, data, http.StatusCreated)
	eventually(t, 30*time.Second, "main-menu no longer missing", func() bool { return slices.Equal(missing(), []string{}) })
	if kept, err := os.ReadFile(filepath.Join(cfg.DataDir, "blobs", sum)); err != nil || !bytes.Equal(kept, data) {
		t.Errorf("<data_dir>/blobs/%s: %d bytes, %v; want the recording", sum, len(kept), err)
	}
}
