package calls

import (
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// A user is busy (for groups) while a party of a connected call here, on
// as many calls as they are on, and idle when the last one ends.
func TestOnCallCountsConnectedCalls(t *testing.T) {
	b, _ := recorderB2BUA(t, acceptAll{}, newPhoneBook())
	alice, bob := account.User{ID: "u-alice"}, account.User{ID: "u-bob"}
	c1 := b.connect(&party{id: "d1", user: alice}, &party{id: "d2", user: bob}, nil)
	c2 := b.connect(&party{id: "d3", user: alice}, &party{id: "d4"}, nil)
	if !b.onCall("u-alice") || !b.onCall("u-bob") || b.onCall("u-carol") {
		t.Fatal("alice and bob on calls, carol not: wrong busy state")
	}
	b.mu.Lock()
	b.forgetLocked(c1)
	b.mu.Unlock()
	if !b.onCall("u-alice") || b.onCall("u-bob") {
		t.Fatal("after the first call: alice (still on the second) busy, bob idle")
	}
	b.mu.Lock()
	b.forgetLocked(c2)
	b.mu.Unlock()
	if b.onCall("u-alice") {
		t.Fatal("alice busy after her last call ended")
	}
	if b.lastCallEnd["u-bob"].IsZero() {
		t.Error("bob's last call end not noted (longest_idle)")
	}
}
