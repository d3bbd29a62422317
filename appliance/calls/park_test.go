package calls

import (
	"errors"
	"testing"
)

// TestParkSlots: the lowest free slot of the site, sites apart, a
// released slot is taken again, a full site refuses clearly, claim and
// release take a call off once.
func TestParkSlots(t *testing.T) {
	l := newParkLot(3)
	var hq [3]*parked
	for i := range hq {
		hq[i] = &parked{site: "hq", p: &party{id: "hq" + string(rune('a'+i))}}
		if s, err := l.take(hq[i]); err != nil || s != i+1 {
			t.Fatalf("take %d: slot %d, %v; want %d", i, s, err, i+1)
		}
	}
	if _, err := l.take(&parked{site: "hq", p: &party{}}); !errors.Is(err, ErrParkFull) {
		t.Fatalf("a fourth call on 3 slots: %v, want ErrParkFull", err)
	}
	branch := &parked{site: "branch", p: &party{id: "br"}}
	if s, err := l.take(branch); err != nil || s != 1 {
		t.Fatalf("another site: slot %d, %v; want 1", s, err)
	}
	if !l.release(hq[1]) || l.release(hq[1]) {
		t.Fatal("release must take a call off its slot once")
	}
	again := &parked{site: "hq", p: &party{id: "again"}}
	if s, _ := l.take(again); s != 2 {
		t.Fatalf("after slot 2 was freed: slot %d, want 2", s)
	}
	if got := l.claim("hq", 3); got != hq[2] {
		t.Fatalf("claim hq 3 = %v", got)
	}
	if l.claim("hq", 3) != nil || l.claim("branch", 2) != nil || l.claim("nowhere", 1) != nil {
		t.Fatal("claim of an empty slot must find nothing")
	}
	if l.release(hq[2]) {
		t.Fatal("a claimed call was released again")
	}
	if got := l.byDialog("br"); got != branch {
		t.Fatalf("byDialog = %v", got)
	}
	all := l.all()
	if len(all) != 3 || all[0] != branch || all[1] != hq[0] || all[2] != again {
		t.Fatalf("all = %v", all)
	}
}
