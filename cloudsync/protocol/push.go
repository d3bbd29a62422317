package protocol

import (
	"container/heap"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Errors of PushVerifier.Verify, checked with errors.Is. Each answers 401;
// the receiver logs which.
var (
	// ErrPushMalformed: a header is missing or not in its format.
	ErrPushMalformed = errors.New("malformed push headers")
	// ErrPushSignature: the signature does not match the body.
	ErrPushSignature = errors.New("bad push signature")
	// ErrPushStale: the timestamp is more than the tolerance away from the
	// receiver's clock (in the past or the future).
	ErrPushStale = errors.New("push timestamp out of tolerance")
	// ErrPushReplayed: the id was seen within the tolerance window (or is
	// too old to tell, after the replay cache was full).
	ErrPushReplayed = errors.New("push replayed")
)

// DefaultPushReplayCache is how many push ids a PushVerifier remembers
// at most.
const DefaultPushReplayCache = 10000

// maxPushIDLen bounds a push id.
const maxPushIDLen = 128

// SignPush is the push signature: hex(HMAC-SHA256(key, id + "." + ts + "."
// + body)), ts in unix seconds, decimal.
func SignPush(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// PushVerifier checks pushes (docs/sync-protocol.md, "Push"): the
// signature (constant-time), the timestamp within Tolerance of its clock,
// and that the id was not seen in that window. It is safe for concurrent
// use.
//
// The replay cache holds at most its size ids, each until its timestamp
// leaves the window. When it is full, the oldest id is dropped and every
// push not newer than it is refused from then on (ErrPushReplayed): memory
// stays bounded and no replay slips through.
type PushVerifier struct {
	key       []byte
	now       func() time.Time
	tolerance time.Duration
	max       int

	mu    sync.Mutex
	seen  map[string]bool
	order pushHeap // the ids in seen, oldest timestamp first
	floor int64    // timestamps at or below this are refused (cache overflow)
}

// NewPushVerifier checks pushes signed with key against the clock now
// (time.Now when nil), with PushTolerance and a replay cache of
// DefaultPushReplayCache ids.
func NewPushVerifier(key []byte, now func() time.Time) *PushVerifier {
	return NewPushVerifierSize(key, now, PushTolerance, DefaultPushReplayCache)
}

// NewPushVerifierSize is NewPushVerifier with a tolerance and a replay
// cache size of its own (tests; at least 1 id).
func NewPushVerifierSize(key []byte, now func() time.Time, tolerance time.Duration, cacheSize int) *PushVerifier {
	if now == nil {
		now = time.Now
	}
	if cacheSize < 1 {
		cacheSize = 1
	}
	return &PushVerifier{
		key:       append([]byte(nil), key...),
		now:       now,
		tolerance: tolerance,
		max:       cacheSize,
		seen:      make(map[string]bool),
		floor:     -1 << 63,
	}
}

// Verify checks one push: its id, timestamp and signature headers as
// received, and its body. A nil answer means the push is authentic, fresh
// and new (its id is now remembered); an error wraps ErrPushMalformed,
// ErrPushSignature, ErrPushStale or ErrPushReplayed.
func (v *PushVerifier) Verify(id, ts, sig string, body []byte) error {
	if err := checkPushID(id); err != nil {
		return err
	}
	stamp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts != strconv.FormatInt(stamp, 10) {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrPushMalformed, HeaderPushTimestamp, ts)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not %d hex digits", ErrPushMalformed, HeaderPushSignature, 2*sha256.Size)
	}
	want, _ := hex.DecodeString(SignPush(v.key, id, stamp, body))
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w (push %s)", ErrPushSignature, id)
	}

	now := v.now()
	at := time.Unix(stamp, 0)
	switch {
	case now.Sub(at) > v.tolerance:
		return fmt.Errorf("%w: push %s is %s old (tolerance %s)", ErrPushStale, id, now.Sub(at).Truncate(time.Second), v.tolerance)
	case at.Sub(now) > v.tolerance:
		return fmt.Errorf("%w: push %s is %s in the future (tolerance %s)", ErrPushStale, id, at.Sub(now).Truncate(time.Second), v.tolerance)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.expire(now)
	if v.seen[id] {
		return fmt.Errorf("%w: push %s was already received", ErrPushReplayed, id)
	}
	if stamp <= v.floor {
		return fmt.Errorf("%w: push %s is older than the replay cache reaches back", ErrPushReplayed, id)
	}
	if len(v.order) >= v.max {
		oldest := heap.Pop(&v.order).(pushEntry)
		delete(v.seen, oldest.id)
		v.floor = max(v.floor, oldest.ts)
	}
	v.seen[id] = true
	heap.Push(&v.order, pushEntry{id: id, ts: stamp})
	return nil
}

// expire forgets ids whose timestamp has left the window: a replay of one
// fails the timestamp check.
func (v *PushVerifier) expire(now time.Time) {
	for len(v.order) > 0 && now.Sub(time.Unix(v.order[0].ts, 0)) > v.tolerance {
		e := heap.Pop(&v.order).(pushEntry)
		delete(v.seen, e.id)
	}
}

// Remembered is how many ids the replay cache holds (for tests and
// metrics).
func (v *PushVerifier) Remembered() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

// checkPushID accepts 1 to 128 characters of letters, digits and - _ + / =
// (UUIDs, hex, base64): never a "." that would blur the signed string.
func checkPushID(id string) error {
	if id == "" || len(id) > maxPushIDLen {
		return fmt.Errorf("%w: %s must have 1 to %d characters", ErrPushMalformed, HeaderPushID, maxPushIDLen)
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '+', c == '/', c == '=':
		default:
			return fmt.Errorf("%w: %s has a character other than letters, digits and - _ + / =", ErrPushMalformed, HeaderPushID)
		}
	}
	return nil
}

type pushEntry struct {
	id string
	ts int64
}

// pushHeap orders remembered ids by timestamp, oldest first.
type pushHeap []pushEntry

func (h pushHeap) Len() int           { return len(h) }
func (h pushHeap) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h pushHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pushHeap) Push(x any)        { *h = append(*h, x.(pushEntry)) }
func (h *pushHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
