package calls

import (
	"errors"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func sipUser(name string) account.User {
	return account.User{SIP: account.SIPCredentials{Username: name}}
}

// TestParkReserve: a reservation holds the lowest free slot (a call
// parked meanwhile takes the next); used, its call is on that slot; the
// slot of a released reservation is free again; a site full of calls and
// reservations refuses clearly; a reservation is found by its dialog
// only while it is held.
func TestParkReserve(t *testing.T) {
	l, clock := newTestLot(t, testParkConfig(3))
	expired := func(r *reservation) { t.Errorf("slot %d expired", r.slot) }
	r1, err := l.reserve("hq", "d1", sipUser("bob"), nil, expired)
	if err != nil || r1.slot != 1 {
		t.Fatalf("reserve: %v, %v; want slot 1", r1, err)
	}
	t1 := clock.timer(t, parkReserveFor)
	blind := parkOne(t, l, "hq") // a blind park meanwhile
	clock.timer(t, DefaultPark.Timeout)
	if blind.slot != 2 {
		t.Fatalf("a blind park beside a reservation took slot %d, want 2", blind.slot)
	}
	if l.claim("hq", 1) != nil {
		t.Fatal("a reserved slot was retrieved")
	}
	if got := l.reservedFor("d1"); got != r1 {
		t.Fatalf("reservedFor(d1) = %v", got)
	}
	if l.reservedFor("d2") != nil {
		t.Fatal("reservedFor found a dialog that reserved nothing")
	}

	r3, err := l.reserve("hq", "d3", sipUser("carol"), nil, expired)
	if err != nil || r3.slot != 3 {
		t.Fatalf("reserve: %v, %v; want slot 3", r3, err)
	}
	clock.timer(t, parkReserveFor)
	if _, err := l.reserve("hq", "d4", sipUser("dave"), nil, expired); !errors.Is(err, ErrParkFull) {
		t.Fatalf("a fourth on 3 slots: %v, want ErrParkFull", err)
	}
	if _, err := l.take(&parked{site: "hq", p: &party{}}, nil); !errors.Is(err, ErrParkFull) {
		t.Fatalf("a blind park with every slot called or reserved: %v, want ErrParkFull", err)
	}

	pk := &parked{p: &party{id: "alice"}, ctx: t.Context()}
	if !l.fill(r1, pk) || pk.slot != 1 || pk.site != "hq" {
		t.Fatalf("fill: slot %d site %q", pk.slot, pk.site)
	}
	if !t1.stopped.Load() {
		t.Error("a used reservation's timer still runs")
	}
	if l.fill(r1, &parked{p: &party{}}) {
		t.Fatal("a reservation was used twice")
	}
	if l.release(r1) != resUsed || l.reservedFor("d1") != nil {
		t.Fatal("a used reservation was released, or is still found")
	}
	wantState(t, l, pk, parkParking, true)
	if !l.publish(pk) || l.claim("hq", 1) != pk {
		t.Fatal("the call put on its reserved slot is not retrievable once published")
	}
	clock.timer(t, DefaultPark.Timeout)

	first := l.release(r3)
	if again := l.release(r3); first != resReleased || again != resReleased {
		t.Fatalf("release: %v then %v, want released both times", first, again)
	}
	if l.fill(r3, &parked{p: &party{}}) {
		t.Fatal("a released reservation was used")
	}
	if r, err := l.reserve("hq", "d5", sipUser("erin"), nil, expired); err != nil || r.slot != 1 {
		t.Fatalf("after slot 1 was retrieved and 3 released: %v, %v; want slot 1", r, err)
	}
	clock.timer(t, parkReserveFor)
	clock.quiet(t)
}

// TestParkReservationExpires: unused for reserveFor, a reservation frees
// its slot and says so once; its call then finds it gone, and a release
// after it changes nothing.
func TestParkReservationExpires(t *testing.T) {
	l, clock := newTestLot(t, testParkConfig(1))
	gone := make(chan *reservation, 2)
	r, err := l.reserve("hq", "d1", sipUser("bob"), nil, func(r *reservation) { gone <- r })
	if err != nil {
		t.Fatal(err)
	}
	ft := clock.timer(t, parkReserveFor)
	wait(t, fire(ft), "the expiry")
	select {
	case got := <-gone:
		if got != r {
			t.Fatalf("expired %v, want %v", got, r)
		}
	default:
		t.Fatal("the expiry was not reported")
	}
	if l.fill(r, &parked{p: &party{}}) {
		t.Fatal("an expired reservation was used")
	}
	if l.release(r) != resExpired {
		t.Fatal("a release after the expiry changed the outcome")
	}
	if l.reservedFor("d1") != nil {
		t.Fatal("an expired reservation is still found")
	}
	wait(t, fire(ft), "a second firing")
	if len(gone) != 0 {
		t.Fatal("the expiry was reported twice")
	}
	pk := parkOne(t, l, "hq")
	if pk.slot != 1 {
		t.Fatalf("after the expiry a call took slot %d, want 1", pk.slot)
	}
}

// TestParkReservationReleasedBeforeExpiry: the phone hanging up first
// stops the timer; firing it anyway reports nothing.
func TestParkReservationReleasedBeforeExpiry(t *testing.T) {
	l, clock := newTestLot(t, testParkConfig(1))
	gone := make(chan *reservation, 1)
	r, _ := l.reserve("hq", "d1", sipUser("bob"), nil, func(r *reservation) { gone <- r })
	ft := clock.timer(t, parkReserveFor)
	if l.release(r) != resReleased || !ft.stopped.Load() {
		t.Fatal("release did not free the reservation and stop its timer")
	}
	wait(t, fire(ft), "a late firing")
	if len(gone) != 0 {
		t.Fatal("a released reservation expired")
	}
}
