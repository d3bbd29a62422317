package cloud

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func TestSignPushVector(t *testing.T) {
	// hex(HMAC-SHA256(key, "7d1e5a.1795395372.{\"revision\":43}")), computed
	// independently (Python's hmac module).
	key, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	const want = "6f12a88e275fe08b41ceb7db6c3ed4515d769f442db881cd36efdf59a11c9164"
	if theirs := protocol.SignPush(key, "7d1e5a", 1795395372, []byte(`{"revision":43}`)); theirs != want {
		t.Errorf("protocol.SignPush = %s, want %s", theirs, want)
	}
}

// serve runs h's server on a loopback listener (pusher included) until
// the test ends, and points h at it.
func (h *harness) serve() {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(ln) }()
	h.url = "http://" + ln.Addr().String()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			h.t.Errorf("shutdown: %v", err)
		}
		if err := <-errc; err != nil {
			h.t.Errorf("serve: %v", err)
		}
	})
}

type pushed struct {
	header http.Header
	path   string
	body   []byte
}

func TestPushOnNewRevision(t *testing.T) {
	got := make(chan pushed, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- pushed{r.Header.Clone(), r.URL.Path, body}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()

	h := newHarness(t, Options{})
	h.serve()
	h.putSnapshot(smallAccount(t, 1))
	c := h.pair("b1")
	resp, body := h.sync(c, http.MethodPost, protocol.PathHello, protocol.Hello{NodeID: "n1", Revision: 1, PushURL: recv.URL + "/"}, nil)
	wantStatus(t, "hello", resp, body, http.StatusOK)

	rev := h.putSnapshot(smallAccount(t, 2))
	var p pushed
	select {
	case p = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no push within 20 s of a new revision")
	}
	if p.path != protocol.PathPushReceiver {
		t.Errorf("pushed to %s, want %s", p.path, protocol.PathPushReceiver)
	}
	if want := `{"revision":` + strconv.FormatInt(rev, 10) + `}`; string(p.body) != want {
		t.Errorf("push body %s, want %s", p.body, want)
	}
	id, ts := p.header.Get(protocol.HeaderPushID), p.header.Get(protocol.HeaderPushTimestamp)
	if len(id) < 16 || ts != strconv.FormatInt(h.clock.Now().Unix(), 10) {
		t.Errorf("push id %q timestamp %q", id, ts)
	}
	key, _ := hex.DecodeString(c.PushKey)
	sig := p.header.Get(protocol.HeaderPushSignature)
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if sig != protocol.SignPush(key, id, unix, p.body) {
		t.Errorf("push signature %q does not verify with the appliance's push key", sig)
	}
	// The appliance's verifier takes it.
	v := protocol.NewPushVerifier(key, h.clock.Now)
	if err := v.Verify(id, ts, sig, p.body); err != nil {
		t.Errorf("protocol.PushVerifier refuses the push: %v", err)
	}
}

// A push to an appliance that never answers does not hold up the admin.
func TestPushNeverBlocksTheAdmin(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer recv.Close()
	defer close(release)

	h := newHarness(t, Options{})
	h.serve()
	h.putSnapshot(smallAccount(t, 1))
	c := h.pair("b1")
	h.sync(c, http.MethodPost, protocol.PathHello, protocol.Hello{NodeID: "n1", PushURL: recv.URL}, nil)
	h.putSnapshot(smallAccount(t, 2))
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("no push")
	}
	// The receiver holds the push; the admin API still answers, and the
	// revisions committed meanwhile are coalesced into a later push.
	for seed := range uint64(3) {
		h.putSnapshot(smallAccount(t, seed+3))
	}
	if rev, _ := h.store.Current(); rev != 5 {
		t.Errorf("revision %d, want 5", rev)
	}
}

// Shutdown answers the long polls in flight at once, rather than waiting
// for their wait to run out.
func TestShutdownEndsLongPolls(t *testing.T) {
	h := newHarness(t, Options{})
	held := make(chan struct{}, 1)
	h.srv.held = func() { held <- struct{}{} }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(ln) }()
	h.url = "http://" + ln.Addr().String()
	c := h.pair("b1")
	status := make(chan int, 1)
	go func() {
		resp, _, err := h.try(http.MethodGet, protocol.PathChanges+"?since=0&wait=60", nil, c.header())
		if err != nil {
			t.Error(err)
			status <- 0
			return
		}
		status <- resp.StatusCode
	}()
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not held")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if st := <-status; st != http.StatusNoContent {
		t.Errorf("long poll at shutdown: %d, want 204", st)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}
