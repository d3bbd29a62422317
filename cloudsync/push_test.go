package cloudsync

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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

// pushIDForm is the form of a push id (docs/sync-protocol.md, "Push").
var pushIDForm = regexp.MustCompile(`^[A-Za-z0-9_+/=-]{1,128}$`)

// FuzzPushHandler posts arbitrary pushes to the receiver: its id,
// timestamp and body, signed with the shared key (sign) or carrying sig
// as it came. First the push with its body altered by one byte, which
// must be refused and leave the id unused; then the push itself, which a
// well-formed, fresh and signed push passes, waking the pull with its
// body's revision exactly when the body parses (else 400); then the same
// push again, refused as replayed. Nothing but a 202 wakes the pull.
func FuzzPushHandler(f *testing.F) {
	const stamp = "1795395372"
	for _, s := range []struct {
		id, ts, sig string
		body        string
		sign        bool
	}{
		{"7d0b4a52-2c9e-4a53-9f55-0d7c1f6b2a11", stamp, "", `{"revision":43}`, true},
		{"p1", "1795395072", "", `{"revision":9007199254740993}`, true},               // at the tolerance's edge
		{"p1", "1795395071", "", `{"revision":43}`, true},                             // stale
		{"p1", "1795395672", "", `{"revision":43}`, true},                             // in the future, at the edge
		{"p1", "+1795395372", "", `{"revision":43}`, true},                            // not canonical
		{"p1", "01795395372", "", `{"revision":43}`, true},                            // not canonical
		{"a.b", stamp, "", `{"revision":43}`, true},                                   // a dot blurs the signed string
		{"q83vEjRWeJA=/+", stamp, "", `{"revision":-1,"revision":2,"x":[1,2]}`, true}, // base64 id, odd body
		{"p1", stamp, "", `{"revision":"43"}`, true},                                  // signed, does not parse
		{"p1", stamp, "", `null`, true},
		{"p1", stamp, "", ``, true},
		{"p1", stamp, strings.Repeat("0", 64), `{"revision":43}`, false},
		{"p1", stamp, strings.Repeat("G", 64), `{"revision":43}`, false},
		{"p1", "-9223372036854775808", "", `{"revision":43}`, true},
		{"", "", "", ``, false},
	} {
		f.Add(s.id, s.ts, s.sig, []byte(s.body), s.sign)
	}
	key := []byte("push-key")
	now := time.Unix(1795395372, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, sign bool) {
		v := protocol.NewPushVerifierSize(key, func() time.Time { return now }, protocol.PushTolerance, 4)
		var woken []protocol.Push
		h := PushHandler(v, func(p protocol.Push) { woken = append(woken, p) }, nil)
		stamp, tsErr := strconv.ParseInt(ts, 10, 64)
		if sign && tsErr == nil {
			sig = protocol.SignPush(key, id, stamp, body)
		}
		post := func(body []byte) int {
			// A request as the server hands it over: httptest.NewRequest
			// parses one from text, which halves the fuzzing rate.
			r := &http.Request{Method: "POST", Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)),
				RemoteAddr: "192.0.2.1:4431"}
			r.Header.Set(protocol.HeaderPushID, id)
			r.Header.Set(protocol.HeaderPushTimestamp, ts)
			r.Header.Set(protocol.HeaderPushSignature, sig)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}

		if code := post(append(bytes.Clone(body), '.')); code != 401 && code != 413 || len(woken) != 0 {
			t.Fatalf("an altered body: %d, woken %v; want it refused", code, woken)
		}
		code := post(body)
		wellFormed := sign && pushIDForm.MatchString(id) && tsErr == nil && ts == strconv.FormatInt(stamp, 10) &&
			now.Sub(time.Unix(stamp, 0)).Abs() <= protocol.PushTolerance && len(body) <= maxPushBody
		var want protocol.Push
		parses := json.Unmarshal(body, &want) == nil
		switch {
		case wellFormed && parses:
			if code != 202 || len(woken) != 1 || woken[0] != want {
				t.Fatalf("a good push: %d, woken %v; want 202 and %v", code, woken, want)
			}
		case wellFormed:
			if code != 400 || len(woken) != 0 {
				t.Fatalf("a signed body that does not parse: %d, woken %v; want 400", code, woken)
			}
		case code == 202:
			// Only a push carrying the body's signature as it came.
			got, err := hex.DecodeString(sig)
			real, _ := hex.DecodeString(protocol.SignPush(key, id, stamp, body))
			if err != nil || !bytes.Equal(got, real) || len(woken) != 1 {
				t.Fatalf("accepted a push signed %q, woken %v", sig, woken)
			}
		default:
			if len(woken) != 0 {
				t.Fatalf("%d, yet woken %v", code, woken)
			}
		}
		if code != 202 {
			return
		}
		if again := post(body); again != 401 || len(woken) != 1 {
			t.Fatalf("the push again: %d, woken %v; want it refused as replayed", again, woken)
		}
	})
}
