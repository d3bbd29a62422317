package registrar

import (
	"testing"
	"time"
)

var nonceTestKey = deriveKey(digestSecret, "nonce test key")

func TestNonceMintOpen(t *testing.T) {
	issued := time.Date(2025, 3, 1, 12, 0, 0, 123, time.UTC)
	nonce := mintNonce(nonceTestKey, aliceRealm, issued)
	if got, want := len(nonce), 48; got != want {
		t.Errorf("nonce %q is %d characters, want %d", nonce, got, want)
	}
	got, id, ok := openNonce(nonceTestKey, aliceRealm, nonce)
	if !ok || got != issued.UnixNano() {
		t.Fatalf("openNonce = %d, %v; want %d, true", got, ok, issued.UnixNano())
	}
	if _, id2, _ := openNonce(nonceTestKey, aliceRealm, mintNonce(nonceTestKey, aliceRealm, issued)); id2 == id {
		t.Errorf("two nonces minted at the same instant share id %x", id)
	}
	bad := map[string]struct {
		key          []byte
		realm, nonce string
	}{
		"other realm":  {nonceTestKey, "other.example", nonce},
		"other key":    {deriveKey(otherDigestSecret, "nonce test key"), aliceRealm, nonce},
		"empty":        {nonceTestKey, aliceRealm, ""},
		"padded":       {nonceTestKey, aliceRealm, nonce + "=="},
		"not base64":   {nonceTestKey, aliceRealm, nonce[:47] + "!"},
		"standard b64": {nonceTestKey, aliceRealm, nonce[:47] + "+"},
	}
	for name, b := range bad {
		if _, _, ok := openNonce(b.key, b.realm, b.nonce); ok {
			t.Errorf("%s: openNonce accepted %q", name, b.nonce)
		}
	}
	for i := range nonce {
		b := []byte(nonce)
		b[i] ^= 1
		if _, _, ok := openNonce(nonceTestKey, aliceRealm, string(b)); ok {
			t.Errorf("nonce with character %d changed (%q) accepted", i, b)
		}
	}
}

// shardID returns a nonce id in shard s, distinct for each n.
func shardID(s byte, n uint16) nonceID {
	var id nonceID
	id[0] = s
	id[1], id[2] = byte(n>>8), byte(n)
	return id
}

func TestNonceReplayTableExpiry(t *testing.T) {
	const ttl = int64(time.Minute)
	tab := newReplayTable(16 * 100)
	for n := uint16(0); n < 50; n++ {
		for s := byte(0); s < replayShards; s++ {
			if v := tab.advance(shardID(s, n), 0, ttl, 0, 1); v != replayFresh {
				t.Fatalf("new nonce: verdict %v, want fresh", v)
			}
		}
	}
	if got, want := tab.len(), 50*replayShards; got != want {
		t.Fatalf("table holds %d, want %d", got, want)
	}
	// An entry is kept while its nonce is valid...
	if v := tab.advance(shardID(0, 0), 0, ttl, ttl, 1); v != replayReplay {
		t.Errorf("nc 1 again at expiry: verdict %v, want replay", v)
	}
	// ...and dropped once it has expired.
	for s := byte(0); s < replayShards; s++ {
		tab.advance(shardID(s, 1000), ttl+1, 2*ttl+1, ttl+1, 1)
	}
	if got, want := tab.len(), replayShards; got != want {
		t.Errorf("after expiry the table holds %d, want %d", got, want)
	}
}

func TestNonceReplayTableOverflow(t *testing.T) {
	const ttl = int64(time.Hour)
	tab := newReplayTable(2 * replayShards) // two entries per shard
	steps := []struct {
		n      uint16
		issued int64
		nc     uint64
		want   replayVerdict
	}{
		{1, 10, 1, replayFresh},
		{2, 20, 1, replayFresh},
		{2, 20, 2, replayFresh},
		{3, 30, 1, replayFresh},   // pushes out nonce 1, horizon 10
		{1, 10, 1, replayUnknown}, // its history is gone: never accept it again
		{1, 10, 9, replayUnknown},
		{5, 5, 1, replayUnknown}, // issued before the horizon, unseen: may have been pushed out
		{4, 40, 1, replayFresh},  // pushes out nonce 2: horizon 20
		{2, 20, 3, replayUnknown},
		{6, 25, 1, replayUnknown}, // pushes out nonce 3 (issued 30): horizon 30, and 25 <= 30
		{3, 30, 2, replayUnknown},
		{7, 50, 1, replayFresh}, // room for it: no eviction
		{7, 50, 1, replayReplay},
		{7, 50, usedOnce, replayReplay},
	}
	for i, s := range steps {
		got := tab.advance(shardID(0, s.n), s.issued, s.issued+ttl, 100, s.nc)
		if got != s.want {
			t.Errorf("step %d (nonce %d, nc %d): verdict %v, want %v", i, s.n, s.nc, got, s.want)
		}
		if n := tab.len(); n > 2 {
			t.Errorf("step %d: table holds %d, want at most 2", i, n)
		}
	}
}

func TestNonceRing(t *testing.T) {
	var r ring
	next, want := uint16(0), uint16(0)
	for round := 0; round < 50; round++ {
		for i := 0; i < round%7+3; i++ {
			r.push(shardID(0, next))
			next++
		}
		for i := 0; i < round%5+1 && r.len() > 0; i++ {
			if got := r.pop(); got != shardID(0, want) {
				t.Fatalf("pop = %x, want %x", got, shardID(0, want))
			}
			want++
		}
	}
	if got := r.len(); got != int(next-want) {
		t.Errorf("len = %d, want %d", got, next-want)
	}
}
