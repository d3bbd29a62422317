package registrar

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// A nonce is stateless: base64url (unpadded) of
//
//	issued (8 bytes, Unix nanoseconds, big-endian) | random (12 bytes) | mac (16 bytes)
//
// where mac is HMAC-SHA256(nonceKey, "outpost nonce v1" | issued | random | realm)
// truncated to 128 bits. Every node of a cluster derives nonceKey from the same
// secret, so a nonce minted on one node verifies on any other; binding the realm
// means a nonce issued for one account's realm is useless in another's.
const (
	nonceTimeLen   = 8
	nonceRandomLen = 12
	nonceMACLen    = 16
	nonceRawLen    = nonceTimeLen + nonceRandomLen + nonceMACLen
	nonceLabel     = "outpost nonce v1"
)

// nonceEncoding is URL-safe so a nonce never holds a quote or backslash.
var nonceEncoding = base64.RawURLEncoding

// nonceID identifies a nonce in the replay table: its MAC, which is unique
// per nonce (it covers the random bytes) and fixed-size.
type nonceID [nonceMACLen]byte

// mintNonce returns a fresh nonce for realm issued at now.
func mintNonce(key []byte, realm string, now time.Time) string {
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:nonceTimeLen], uint64(now.UnixNano()))
	_, _ = rand.Read(raw[nonceTimeLen : nonceTimeLen+nonceRandomLen]) // never fails since Go 1.24
	mac := nonceMAC(key, raw[:nonceTimeLen+nonceRandomLen], realm)
	copy(raw[nonceTimeLen+nonceRandomLen:], mac[:nonceMACLen])
	return nonceEncoding.EncodeToString(raw[:])
}

// openNonce checks the nonce's signature for realm and returns its issue time
// (Unix nanoseconds) and id. ok is false for anything this cluster did not mint
// for realm: wrong length, bad encoding, tampered bytes, another secret.
func openNonce(key []byte, realm, nonce string) (issued int64, id nonceID, ok bool) {
	if nonceEncoding.EncodedLen(nonceRawLen) != len(nonce) {
		return 0, id, false
	}
	raw, err := nonceEncoding.DecodeString(nonce)
	if err != nil || len(raw) != nonceRawLen {
		return 0, id, false
	}
	body, got := raw[:nonceTimeLen+nonceRandomLen], raw[nonceTimeLen+nonceRandomLen:]
	want := nonceMAC(key, body, realm)
	if !hmac.Equal(got, want[:nonceMACLen]) {
		return 0, id, false
	}
	copy(id[:], got)
	return int64(binary.BigEndian.Uint64(raw[:nonceTimeLen])), id, true
}

func nonceMAC(key, body []byte, realm string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nonceLabel))
	m.Write(body)
	m.Write([]byte(realm))
	return m.Sum(nil)
}

// usedOnce is the highest-nc mark of a nonce that was used without qop
// (RFC 2069 style): greater than any 8-hex-digit nc, so every later use of the
// nonce is a replay.
const usedOnce = uint64(1) << 32

// replayShards spreads the replay table over independent locks.
const replayShards = 16

// replayTable remembers, per nonce, the highest nc accepted on this node.
// Memory is bounded: each shard holds at most a fixed number of entries,
// queued in first-use order; entries leave the queue once their nonce has
// expired, or, when a shard is full, oldest first. A nonce whose entry was
// pushed out early can no longer be proved fresh, so every shard keeps a
// horizon, the latest issue time among the entries it pushed out, and treats
// an unknown nonce issued at or before the horizon as stale: the client gets a
// new nonce, and a captured request can never be replayed.
type replayTable struct {
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	max     int
	seen    map[nonceID]replayEntry
	queue   ring
	horizon int64 // Unix nanoseconds; 0 until the shard first overflows
	evicted bool  // whether horizon is set
}

type replayEntry struct {
	highest uint64 // the highest nc accepted, or usedOnce
	issued  int64  // Unix nanoseconds
	expires int64  // Unix nanoseconds: issued + TTL
}

// replayVerdict is the outcome of replayTable.advance.
type replayVerdict int

const (
	replayFresh   replayVerdict = iota // accepted and recorded
	replayReplay                       // nc not above the highest seen, or a once-only nonce reused
	replayUnknown                      // the nonce's history may have been pushed out: re-challenge
)

func newReplayTable(maxEntries int) *replayTable {
	per := maxEntries / replayShards
	if per < 1 {
		per = 1
	}
	t := &replayTable{}
	for i := range t.shards {
		t.shards[i].max = per
		t.shards[i].seen = make(map[nonceID]replayEntry)
	}
	return t
}

// advance records nc for the nonce id issued at issued (Unix nanoseconds),
// valid until expires, at time now. nc == usedOnce marks a nonce used without
// qop. It accepts nc only if it is strictly greater than every nc accepted for
// the nonce before.
func (t *replayTable) advance(id nonceID, issued, expires, now int64, nc uint64) replayVerdict {
	s := &t.shards[id[0]%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if e, ok := s.seen[id]; ok {
		if nc <= e.highest || nc == usedOnce {
			return replayReplay
		}
		e.highest = nc
		s.seen[id] = e
		return replayFresh
	}
	if s.evicted && issued <= s.horizon {
		return replayUnknown
	}
	if len(s.seen) >= s.max {
		s.evictOldest()
		if issued <= s.horizon {
			return replayUnknown
		}
	}
	s.seen[id] = replayEntry{highest: nc, issued: issued, expires: expires}
	s.queue.push(id)
	return replayFresh
}

// expire drops entries from the head of the queue whose nonce has expired.
// The head is the entry first used longest ago; since a nonce is used after
// it is issued, every entry reaches the head within one TTL of its expiry.
func (s *replayShard) expire(now int64) {
	for s.queue.len() > 0 {
		id := s.queue.peek()
		if e := s.seen[id]; e.expires >= now {
			return
		}
		s.queue.pop()
		delete(s.seen, id)
	}
}

func (s *replayShard) evictOldest() {
	id := s.queue.pop()
	e := s.seen[id]
	delete(s.seen, id)
	if !s.evicted || e.issued > s.horizon {
		s.horizon, s.evicted = e.issued, true
	}
}

// len returns the number of nonces tracked; tests use it.
func (t *replayTable) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}

// ring is a FIFO of nonce ids that grows by doubling.
type ring struct {
	buf        []nonceID
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) push(id nonceID) {
	if r.size == len(r.buf) {
		n := 2 * len(r.buf)
		if n == 0 {
			n = 16
		}
		buf := make([]nonceID, n)
		for i := 0; i < r.size; i++ {
			buf[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = id
	r.size++
}

func (r *ring) peek() nonceID { return r.buf[r.head] }

func (r *ring) pop() nonceID {
	id := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 {
		r.head = 0
	}
	return id
}
