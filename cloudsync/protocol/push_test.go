package protocol

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The vectors were computed with openssl and Python's hmac, not with
// SignPush.
func TestSignPushVectors(t *testing.T) {
	tests := []struct {
		key  []byte
		id   string
		ts   int64
		body string
		want string
	}{
		{[]byte("outpost-test-push-key"), "7d1e-push", 1795395372, `{"revision":43}`,
			"fb7602d0c39aa199ef0c89582a53607985f300873c36b0618028aa7161c1a03b"},
		{mustHex(t, "000102030405060708090a0b0c0d0e0f"), "id-1", 0, "",
			"5c3b32df78088cb75026ba47751a27895802228c4c5425c42824f9f31e4239a8"},
	}
	for _, tt := range tests {
		if got := SignPush(tt.key, tt.id, tt.ts, []byte(tt.body)); got != tt.want {
			t.Errorf("SignPush(%q, %d, %q) = %s, want %s", tt.id, tt.ts, tt.body, got, tt.want)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clock is a settable clock for verifiers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var (
	testPushKey = []byte("outpost-test-push-key")
	pushEpoch   = time.Unix(1795395372, 0)
)

func signed(id string, ts int64, body string) (string, string, string, []byte) {
	return id, strconv.FormatInt(ts, 10), SignPush(testPushKey, id, ts, []byte(body)), []byte(body)
}

func TestVerifyPush(t *testing.T) {
	now := pushEpoch.Unix()
	body := `{"revision":43}`
	goodSig := SignPush(testPushKey, "p1", now, []byte(body))
	tests := []struct {
		name           string
		id, ts, sig    string
		body           string
		want           error
		wantInMessage  string
		rememberedWant int
	}{
		{"good", "p1", strconv.FormatInt(now, 10), goodSig, body, nil, "", 1},
		{"body changed", "p1", strconv.FormatInt(now, 10), goodSig, `{"revision":44}`, ErrPushSignature, "", 0},
		{"id changed", "p2", strconv.FormatInt(now, 10), goodSig, body, ErrPushSignature, "", 0},
		{"timestamp changed", "p1", strconv.FormatInt(now+1, 10), goodSig, body, ErrPushSignature, "", 0},
		{"signed with another key", "p1", strconv.FormatInt(now, 10), SignPush([]byte("other"), "p1", now, []byte(body)), body, ErrPushSignature, "", 0},
		{"signature upper-case hex is the same bytes", "p1", strconv.FormatInt(now, 10), strings.ToUpper(goodSig), body, nil, "", 1},
		{"no id", "", strconv.FormatInt(now, 10), goodSig, body, ErrPushMalformed, HeaderPushID, 0},
		{"id with a dot", "p.1", strconv.FormatInt(now, 10), goodSig, body, ErrPushMalformed, HeaderPushID, 0},
		{"id too long", strings.Repeat("a", 129), strconv.FormatInt(now, 10), goodSig, body, ErrPushMalformed, HeaderPushID, 0},
		{"no timestamp", "p1", "", goodSig, body, ErrPushMalformed, HeaderPushTimestamp, 0},
		{"timestamp in milliseconds with a fraction", "p1", "1795395372.5", goodSig, body, ErrPushMalformed, HeaderPushTimestamp, 0},
		{"timestamp with a plus", "p1", "+" + strconv.FormatInt(now, 10), goodSig, body, ErrPushMalformed, HeaderPushTimestamp, 0},
		{"no signature", "p1", strconv.FormatInt(now, 10), "", body, ErrPushMalformed, HeaderPushSignature, 0},
		{"signature not hex", "p1", strconv.FormatInt(now, 10), strings.Repeat("z", 64), body, ErrPushMalformed, HeaderPushSignature, 0},
		{"signature too short", "p1", strconv.FormatInt(now, 10), goodSig[:62], body, ErrPushMalformed, HeaderPushSignature, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewPushVerifier(testPushKey, func() time.Time { return pushEpoch })
			err := v.Verify(tt.id, tt.ts, tt.sig, []byte(tt.body))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantInMessage) {
				t.Errorf("error %q does not name %q", err, tt.wantInMessage)
			}
			if got := v.Remembered(); got != tt.rememberedWant {
				t.Errorf("remembered %d ids, want %d", got, tt.rememberedWant)
			}
		})
	}
}

func TestVerifyPushTolerance(t *testing.T) {
	tol := PushTolerance
	tests := []struct {
		name   string
		offset time.Duration // receiver's clock minus the push's timestamp
		want   error
	}{
		{"same second", 0, nil},
		{"exactly tolerance old", tol, nil},
		{"a second past tolerance old", tol + time.Second, ErrPushStale},
		{"a nanosecond past tolerance old", tol + time.Nanosecond, ErrPushStale},
		{"exactly tolerance ahead", -tol, nil},
		{"a second past tolerance ahead", -tol - time.Second, ErrPushStale},
		{"a day old", 24 * time.Hour, ErrPushStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewPushVerifier(testPushKey, func() time.Time { return pushEpoch.Add(tt.offset) })
			err := v.Verify(signed("p1", pushEpoch.Unix(), `{}`))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyPushReplay(t *testing.T) {
	c := &clock{t: pushEpoch}
	v := NewPushVerifier(testPushKey, c.now)
	if err := v.Verify(signed("p1", pushEpoch.Unix(), `{"revision":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(signed("p1", pushEpoch.Unix(), `{"revision":1}`)); !errors.Is(err, ErrPushReplayed) {
		t.Fatalf("replay: %v, want ErrPushReplayed", err)
	}
	// A replay with a new body is still signed for the id: a new id is
	// needed, whatever the body.
	if err := v.Verify(signed("p2", pushEpoch.Unix(), `{"revision":1}`)); err != nil {
		t.Fatalf("a new id: %v", err)
	}
	// Within the window the replay stays refused; once the window is
	// past, the id is forgotten and the timestamp refuses the replay.
	c.set(pushEpoch.Add(PushTolerance))
	if err := v.Verify(signed("p1", pushEpoch.Unix(), `{"revision":1}`)); !errors.Is(err, ErrPushReplayed) {
		t.Fatalf("replay at the window's edge: %v, want ErrPushReplayed", err)
	}
	c.set(pushEpoch.Add(PushTolerance + time.Second))
	if err := v.Verify(signed("p1", pushEpoch.Unix(), `{"revision":1}`)); !errors.Is(err, ErrPushStale) {
		t.Fatalf("replay after the window: %v, want ErrPushStale", err)
	}
	if err := v.Verify(signed("p3", pushEpoch.Unix()+6, `{}`)); err != nil {
		t.Fatal(err)
	}
	if got := v.Remembered(); got != 1 {
		t.Errorf("remembered %d ids after the window passed, want 1 (p3)", got)
	}
}

func TestVerifyPushCacheBound(t *testing.T) {
	c := &clock{t: pushEpoch}
	v := NewPushVerifierSize(testPushKey, c.now, PushTolerance, 3)
	base := pushEpoch.Unix()
	for i := range 3 {
		if err := v.Verify(signed(fmt.Sprint("p", i), base+int64(i), `{}`)); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	// A fourth id drops the oldest (p0, at base): the cache stays at 3.
	if err := v.Verify(signed("p3", base+3, `{}`)); err != nil {
		t.Fatal(err)
	}
	if got := v.Remembered(); got != 3 {
		t.Fatalf("remembered %d ids, want 3", got)
	}
	// p0 is forgotten, yet its replay is refused: it is not newer than
	// what was dropped.
	if err := v.Verify(signed("p0", base, `{}`)); !errors.Is(err, ErrPushReplayed) {
		t.Errorf("replay of a dropped id: %v, want ErrPushReplayed", err)
	}
	if err := v.Verify(signed("p9", base, `{}`)); !errors.Is(err, ErrPushReplayed) {
		t.Errorf("a new id as old as the dropped one: %v, want ErrPushReplayed", err)
	}
	// Newer pushes still pass, and the remembered ones are still refused.
	if err := v.Verify(signed("p4", base+4, `{}`)); err != nil {
		t.Errorf("a newer push: %v", err)
	}
	if err := v.Verify(signed("p4", base+4, `{}`)); !errors.Is(err, ErrPushReplayed) {
		t.Errorf("replay of p4: %v", err)
	}
	if got := v.Remembered(); got != 3 {
		t.Errorf("remembered %d ids, want 3", got)
	}
}

func TestVerifyPushConcurrent(t *testing.T) {
	v := NewPushVerifier(testPushKey, func() time.Time { return pushEpoch })
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if v.Verify(signed("same", pushEpoch.Unix(), `{}`)) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d of 8 concurrent copies of one push accepted, want 1", ok)
	}
}
