package cloudsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/cloud"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// realCloud is outpost-cloud in-process on 127.0.0.1:0, behind a switch
// that can make it unreachable (every connection dropped) and a count of
// blob requests.
type realCloud struct {
	t     *testing.T
	url   string
	store *cloud.Store
	down  atomic.Bool
	blobs atomic.Int64 // GET /v1/sync/blobs/... requests that reached the cloud
}

const realCloudToken = "admin-token-for-blob-tests"

func newRealCloud(t *testing.T) *realCloud {
	t.Helper()
	st, err := cloud.Open(filepath.Join(t.TempDir(), "cloud.db"), cloud.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := cloud.New(cloud.Config{Store: st, AdminToken: realCloudToken})
	rc := &realCloud{t: t, store: st}
	h := srv.Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.down.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		if strings.HasPrefix(r.URL.Path, protocol.PathBlobs) {
			rc.blobs.Add(1)
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		_ = st.Close()
	})
	rc.url = "http://" + ln.Addr().String()
	return rc
}

// admin sends an admin request and fails the test on an unexpected status.
func (rc *realCloud) admin(method, path string, body []byte, want int) []byte {
	rc.t.Helper()
	req, err := http.NewRequest(method, rc.url+path, bytes.NewReader(body))
	if err != nil {
		rc.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+realCloudToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		rc.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		rc.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	return data
}

// upload puts a blob in the cloud.
func (rc *realCloud) upload(data []byte) {
	rc.t.Helper()
	rc.admin(http.MethodPut, "/v1/admin/blobs/"+sumOf(data), data, http.StatusCreated)
}

// client pairs an appliance and returns its client.
func (rc *realCloud) client() *Client {
	rc.t.Helper()
	body, _ := json.Marshal(cloud.PairingCodeRequest{Appliance: "branch-1"})
	var code cloud.PairingCodeResponse
	if err := json.Unmarshal(rc.admin(http.MethodPost, "/v1/admin/pairing-codes", body, http.StatusOK), &code); err != nil {
		rc.t.Fatal(err)
	}
	creds, err := Pair(context.Background(), rc.url, code.Code, "node-1")
	if err != nil {
		rc.t.Fatal(err)
	}
	c, err := NewClient(creds)
	if err != nil {
		rc.t.Fatal(err)
	}
	return c
}

// wavBlob is a small WAV-looking blob (outpost-cloud checks the header).
func wavBlob(audio string) []byte {
	return append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), audio...)
}

func ref(data []byte) BlobRef { return BlobRef{ID: sumOf(data), SHA256: sumOf(data)} }

// fetcherRun is a BlobFetcher running until the test ends.
type fetcherRun struct {
	*BlobFetcher
	dir    *BlobDir
	timers *timers
}

// runFetcher starts a fetcher that wants the blobs of want.
func runFetcher(t *testing.T, client func() *Client, want ...BlobRef) *fetcherRun {
	t.Helper()
	dir, err := OpenBlobDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	tm := &timers{}
	f, err := NewBlobFetcher(BlobFetcherConfig{Dir: dir, Client: client, Log: testLogger(t),
		Backoff: NewBackoff(constRand(0.5)), After: tm.After})
	if err != nil {
		t.Fatal(err)
	}
	f.Want(want)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fetcherRun{BlobFetcher: f, dir: dir, timers: tm}
}

// waits is how many retry waits the fetcher has asked for.
func (f *fetcherRun) waits() int { return len(f.timers.list()) }

func TestBlobDirWritesAtomicallyAndChecks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(root, tempPrefix+"abc-123")
	if err := os.WriteFile(leftover, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenBlobDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a crash's temporary file is still there: %v", err)
	}
	data := wavBlob("greeting")
	sum := sumOf(data)
	if _, err := d.Read(sum); !errors.Is(err, ErrBlobMissing) {
		t.Errorf("Read before Write: %v, want ErrBlobMissing", err)
	}
	if err := d.Write(sum, wavBlob("another")); !errors.Is(err, ErrBlobMismatch) {
		t.Errorf("Write of other bytes: %v, want ErrBlobMismatch", err)
	}
	if err := d.Write("../../etc/passwd", data); err == nil {
		t.Error("Write took a name that is not a sha256")
	}
	if err := d.Write(sum, data); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != sum {
		t.Errorf("directory holds %v, want just %s", entries, sum)
	}
	info, err := os.Stat(d.Path(sum))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("blob file %v, %v; want mode 0600", info, err)
	}
	if got, err := d.Read(sum); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Read = %q, %v", got, err)
	}
	if err := os.WriteFile(d.Path(sum), []byte("bit rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(sum); !errors.Is(err, ErrBlobMismatch) {
		t.Errorf("Read of a damaged file: %v, want ErrBlobMismatch", err)
	}
}

// A blob the snapshot names is fetched from outpost-cloud, checked and
// kept, and served to the prompt library; nothing is fetched twice.
func TestBlobFetcherFetchesFromTheCloud(t *testing.T) {
	rc := newRealCloud(t)
	a, b := wavBlob("main menu"), wavBlob("greeting")
	rc.upload(a)
	rc.upload(b)
	client := rc.client()
	f := runFetcher(t, func() *Client { return client })
	if _, err := f.Blob(ref(a).ID); !errors.Is(err, ErrBlobMissing) {
		t.Errorf("Blob before Want: %v, want ErrBlobMissing", err)
	}

	f.Want([]BlobRef{ref(a), ref(b), ref(a)})
	eventually(t, "both blobs fetched", func() bool { return f.Status().Fetched == 2 })
	eventually(t, "a status with nothing missing", func() bool {
		st := f.Status()
		return st.Wanted == 2 && len(st.Missing) == 0 && st.LastError == ""
	})
	for _, data := range [][]byte{a, b} {
		if got, err := f.Blob(ref(data).ID); err != nil || !bytes.Equal(got, data) {
			t.Errorf("Blob(%s) = %q, %v", ref(data).ID, got, err)
		}
		if kept, err := os.ReadFile(filepath.Join(f.dir.Dir(), ref(data).SHA256)); err != nil || !bytes.Equal(kept, data) {
			t.Errorf("on disk: %q, %v", kept, err)
		}
	}
	if n := rc.blobs.Load(); n != 2 {
		t.Errorf("%d blob requests, want 2", n)
	}
	// The same set again, or a wake-up, fetches nothing more.
	f.Want([]BlobRef{ref(b), ref(a)})
	f.Wake()
	c := wavBlob("third")
	rc.upload(c)
	f.Want([]BlobRef{ref(a), ref(c)})
	eventually(t, "the third blob fetched", func() bool { return f.Status().Fetched == 3 })
	if n := rc.blobs.Load(); n != 3 {
		t.Errorf("%d blob requests, want 3", n)
	}
	if _, err := f.Blob(ref(b).ID); !errors.Is(err, ErrBlobMissing) {
		t.Errorf("Blob of a blob no longer named: %v, want ErrBlobMissing", err)
	}
	if f.waits() != 0 {
		t.Errorf("waits %v after successes only", f.timers.list())
	}
}

// Bytes that do not have the snapshot's hash are never kept; the fetcher
// tries again later, at the slowest pace, and keeps the blob once the
// snapshot and the cloud agree.
func TestBlobFetcherRefusesAWrongHash(t *testing.T) {
	rc := newRealCloud(t)
	data := wavBlob("menu")
	rc.upload(data)
	client := rc.client()
	other := sumOf(wavBlob("what the snapshot says"))
	wrong := BlobRef{ID: sumOf(data), SHA256: other}
	f := runFetcher(t, func() *Client { return client }, wrong)
	eventually(t, "a retry scheduled", func() bool { return f.waits() == 1 })
	st := f.Status()
	if !slices.Equal(st.Missing, []string{wrong.ID}) || !strings.Contains(st.LastError, "does not match its sha256") || st.Fetched != 0 {
		t.Errorf("status %+v, want the blob missing for its hash", st)
	}
	if w := f.timers.list()[0]; w != time.Minute {
		t.Errorf("retry in %v, want the slowest pace (1m)", w)
	}
	if entries, _ := os.ReadDir(f.dir.Dir()); len(entries) != 0 {
		t.Errorf("the directory holds %v after a wrong blob, want nothing", entries)
	}
	if _, err := f.Blob(wrong.ID); !errors.Is(err, ErrBlobMissing) {
		t.Errorf("Blob of a refused blob: %v", err)
	}

	f.timers.fire()
	eventually(t, "the retry", func() bool { return rc.blobs.Load() == 2 && f.waits() == 2 })
	if f.Status().Fetched != 0 {
		t.Error("a wrong blob was kept on retry")
	}
	f.Want([]BlobRef{ref(data)}) // the snapshot fixed
	eventually(t, "the blob fetched", func() bool { return f.Status().Fetched == 1 })
	if got, err := f.Blob(ref(data).ID); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Blob = %q, %v", got, err)
	}
}

// A blob the cloud does not have yet (404) is asked for again at the
// backoff's pace, and fetched once it is uploaded.
func TestBlobFetcherWaitsForAnUpload(t *testing.T) {
	rc := newRealCloud(t)
	client := rc.client()
	data := wavBlob("later")
	f := runFetcher(t, func() *Client { return client }, ref(data))
	eventually(t, "a retry scheduled", func() bool { return f.waits() == 1 })
	f.timers.fire()
	eventually(t, "a second retry scheduled", func() bool { return f.waits() == 2 })
	if got, want := f.timers.list(), []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if st := f.Status(); !strings.Contains(st.LastError, "404") {
		t.Errorf("last error %q, want the cloud's 404", st.LastError)
	}
	rc.upload(data)
	f.timers.fire()
	eventually(t, "the blob fetched", func() bool { return f.Status().Fetched == 1 })
}

// While the cloud is unreachable the fetcher backs off, 1 s doubling, one
// request per attempt whatever the number of blobs; when it is back the
// next attempt fetches everything and the pace starts again.
func TestBlobFetcherBacksOffWhileUnreachable(t *testing.T) {
	rc := newRealCloud(t)
	a, b := wavBlob("a"), wavBlob("b")
	rc.upload(a)
	rc.upload(b)
	client := rc.client()
	rc.down.Store(true)
	f := runFetcher(t, func() *Client { return client }, ref(a), ref(b))
	for i := 1; i <= 4; i++ {
		eventually(t, "a retry scheduled", func() bool { return f.waits() == i })
		if i < 4 {
			f.timers.fire()
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if got := f.timers.list(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	st := f.Status()
	if len(st.Missing) != 2 || st.LastError == "" || st.Fetched != 0 {
		t.Errorf("status %+v while unreachable", st)
	}
	if n := rc.blobs.Load(); n != 0 {
		t.Errorf("%d requests reached the cloud while it was down", n)
	}

	rc.down.Store(false)
	f.timers.fire()
	eventually(t, "both blobs fetched, and a status that says so", func() bool {
		st := f.Status()
		return st.Fetched == 2 && st.LastError == "" && len(st.Missing) == 0
	})
	// The pace started again: the next failure waits 1 s.
	rc.down.Store(true)
	c := wavBlob("c")
	f.Want([]BlobRef{ref(a), ref(b), {ID: sumOf(c), SHA256: sumOf(c)}})
	eventually(t, "a retry scheduled", func() bool { return f.waits() == 5 })
	if got := f.timers.list()[4]; got != time.Second {
		t.Errorf("first wait after a success %v, want 1s", got)
	}
}

// Until the cluster is paired nothing is fetched; the status says why.
func TestBlobFetcherNotPaired(t *testing.T) {
	var mu sync.Mutex
	var client *Client
	data := wavBlob("x")
	f := runFetcher(t, func() *Client { mu.Lock(); defer mu.Unlock(); return client }, ref(data))
	eventually(t, "a retry scheduled", func() bool { return f.waits() == 1 })
	if st := f.Status(); !strings.Contains(st.LastError, "not paired") || len(st.Missing) != 1 {
		t.Errorf("status %+v, want not paired", st)
	}
	rc := newRealCloud(t)
	rc.upload(data)
	c := rc.client()
	mu.Lock()
	client = c
	mu.Unlock()
	f.Wake()
	eventually(t, "the blob fetched", func() bool { return f.Status().Fetched == 1 })
}

// The client refuses ids that are not blob ids before asking anything.
func TestClientBlobRefusesBadIDs(t *testing.T) {
	c, err := NewClient(Credentials{URL: "http://127.0.0.1:1", ApplianceID: "a", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := c.Blob(context.Background(), id); err == nil || !strings.Contains(err.Error(), "not a blob id") {
			t.Errorf("Blob(%q) = %v", id, err)
		}
	}
}
