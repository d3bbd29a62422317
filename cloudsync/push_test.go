package cloudsync

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

func TestPushHandler(t *testing.T) {
	key := []byte("push-key")
	now := time.Unix(1795395372, 0)
	v := protocol.NewPushVerifier(key, func() time.Time { return now })
	var mu sync.Mutex
	var woken []int64
	h := PushHandler(v, func(p protocol.Push) {
		mu.Lock()
		defer mu.Unlock()
		woken = append(woken, p.Revision)
	}, testLogger(t))

	push := func(method, id string, ts int64, body string, sigKey []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, protocol.PathPushReceiver, strings.NewReader(body))
		r.Header.Set(protocol.HeaderPushID, id)
		r.Header.Set(protocol.HeaderPushTimestamp, strconv.FormatInt(ts, 10))
		r.Header.Set(protocol.HeaderPushSignature, protocol.SignPush(sigKey, id, ts, []byte(body)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name   string
		method string
		id     string
		ts     int64
		body   string
		key    []byte
		status int
		msg    string
	}{
		{"good", "POST", "p1", now.Unix(), `{"revision":43}`, key, 202, ""},
		{"replayed", "POST", "p1", now.Unix(), `{"revision":43}`, key, 401, "replayed"},
		{"bad signature", "POST", "p2", now.Unix(), `{"revision":44}`, []byte("wrong"), 401, "signature"},
		{"stale", "POST", "p3", now.Unix() - 301, `{"revision":44}`, key, 401, "tolerance"},
		{"signed garbage", "POST", "p4", now.Unix(), `{"revision":`, key, 400, "push body"},
		{"too big", "POST", "p5", now.Unix(), `{"revision":1,"pad":"` + strings.Repeat("x", maxPushBody) + `"}`, key, 413, "push body"},
		{"not a POST", "GET", "p6", now.Unix(), ``, key, 405, "POST"},
	}
	for _, tt := range tests {
		w := push(tt.method, tt.id, tt.ts, tt.body, tt.key)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tt.name, w.Code, w.Body, tt.status, tt.msg)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(woken) != 1 || woken[0] != 43 {
		t.Errorf("woken for %v, want only [43]", woken)
	}
}
