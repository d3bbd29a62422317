package calls

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// The park lot: the slots and each parked call's state machine, without
// SIP (park.go does the SIP). A parked call goes
//
//	parking ──publish──▶ parked ──timeout──▶ ringing ──unanswered──▶ parked …
//	   │                   │                   │
//	   └───────────────────┴───────────────────┴──▶ retrieved | answered | ended
//
// parking: on its slot while the music starts, not yet retrievable;
// parked: the ring-back timer runs; ringing: the parker's phones ring for
// RingFor; retrieved: a phone dialled the slot; answered: the parker
// answered a ring-back; ended: the parked party hung up, or MaxRingbacks
// ring-backs went unanswered. The last three are final and the slot is
// free from the moment the call reaches one. Every change happens under
// the lot's lock, then the call's (always in that order), so a ring-back
// firing, a retrieval and a hang-up racing each other find exactly one
// winner. The clock is injected (afterFunc), so tests drive the timeouts.

// stopper stops a timer (*time.Timer is one).
type stopper interface{ Stop() bool }

func timeAfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// parkState is where a parked call is in its life.
type parkState int

const (
	parkParking parkState = iota
	parkParked
	parkRinging
	parkRetrieved
	parkAnswered
	parkEnded
)

var parkStateNames = [...]string{"parking", "parked", "ringing", "retrieved", "answered", "ended"}

func (s parkState) String() string { return parkStateNames[s] }

// onSlot reports whether a call in state s holds its slot.
func (s parkState) onSlot() bool { return s <= parkRinging }

// ErrParkFull: every slot of the site holds a call.
var ErrParkFull = errors.New("every park slot of the site is in use")

// parked is one parked call. The fields above mu are set before the call
// is taken onto a slot (slot by take) and never change.
type parked struct {
	site   string
	slot   int
	p      *party       // the parked party
	parker account.User // who parked it (rung back)
	since  time.Time
	rec    *store.CallRecord
	ctx    context.Context // the parked party's dialog: ringing ends with it

	mu    sync.Mutex
	state parkState
	music *music             // the music the parked party hears
	timer stopper            // the ring-back timer (parked)
	ring  context.CancelFunc // ends the ringing (ringing)
	rings int                // ring-backs so far
}

// setMusic notes the music the parked party hears; false (and the music
// is the caller's to stop) when the call already left its slot.
func (pk *parked) setMusic(m *music) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if !pk.state.onSlot() {
		return false
	}
	pk.music = m
	return true
}

// takeMusic hands the music over to the caller (to stop, or to play a
// goodbye on first); nil: none.
func (pk *parked) takeMusic() *music {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	m := pk.music
	pk.music = nil
	return m
}

// current is the call's state and ring-backs so far.
func (pk *parked) current() (parkState, int) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return pk.state, pk.rings
}

// parkLot holds a node's parked calls, and the slots reserved for
// attended parks, by site and slot.
type parkLot struct {
	mu    sync.Mutex
	cfg   ParkConfig
	slots map[string]map[int]*parked
	held  map[string]map[int]*reservation // slots announced to a call to the park code

	// reserveFor is how long a reservation waits for its call
	// (parkReserveFor).
	reserveFor time.Duration

	// afterFunc is the clock (time.AfterFunc).
	afterFunc func(time.Duration, func()) stopper
	// ringback rings pk's parker until ctx ends; on an answer it calls
	// settle(pk, parkAnswered) and connects the call when that succeeds.
	ringback func(ctx context.Context, pk *parked)
	// expire ends pk after its last unanswered ring-back (pk is off its
	// slot, state ended).
	expire func(pk *parked)
}

func newParkLot(cfg ParkConfig) *parkLot {
	return &parkLot{cfg: cfg, slots: map[string]map[int]*parked{}, held: map[string]map[int]*reservation{},
		reserveFor: parkReserveFor, afterFunc: timeAfterFunc,
		ringback: func(context.Context, *parked) {}, expire: func(*parked) {}}
}

// config is the lot's configuration.
func (l *parkLot) config() ParkConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// configure changes the configuration: calls parked already keep their
// slots (even beyond a smaller Slots) and timers; new ones get the new
// values.
func (l *parkLot) configure(cfg ParkConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
}

// take puts pk on the lowest free slot of its site (state parking) that
// is not in elsewhere (the slots other nodes of the cluster hold).
func (l *parkLot) take(pk *parked, elsewhere map[int]bool) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.freeLocked(pk.site, elsewhere)
	if !ok {
		return 0, ErrParkFull
	}
	l.placeLocked(pk, s)
	return s, nil
}

// freeLocked is the lowest slot of site holding neither a call nor a
// reservation here, nor held elsewhere.
func (l *parkLot) freeLocked(site string, elsewhere map[int]bool) (int, bool) {
	for s := 1; s <= l.cfg.Slots; s++ {
		if l.slots[site][s] == nil && l.held[site][s] == nil && !elsewhere[s] {
			return s, true
		}
	}
	return 0, false
}

// placeLocked puts pk on slot s of its site (state parking).
func (l *parkLot) placeLocked(pk *parked, s int) {
	site := l.slots[pk.site]
	if site == nil {
		site = map[int]*parked{}
		l.slots[pk.site] = site
	}
	site[s], pk.slot, pk.state = pk, s, parkParking
}

// publish makes pk retrievable and starts its ring-back timer; false
// when it ended while parking.
func (l *parkLot) publish(pk *parked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.state != parkParking {
		return false
	}
	l.armLocked(pk)
	return true
}

// armLocked puts pk back to parked with a fresh ring-back timer.
func (l *parkLot) armLocked(pk *parked) {
	pk.state, pk.ring = parkParked, nil
	pk.timer = l.afterFunc(l.cfg.Timeout, func() { l.fire(pk) })
}

// claim takes the call parked on slot of site (retrieved); nil when the
// slot holds no call that can be retrieved.
func (l *parkLot) claim(site string, slot int) *parked {
	l.mu.Lock()
	defer l.mu.Unlock()
	pk := l.slots[site][slot]
	if pk == nil {
		return nil
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.state != parkParked && pk.state != parkRinging {
		return nil
	}
	l.settleLocked(pk, parkRetrieved)
	return pk
}

// settle moves pk to the final state to (answered only from ringing,
// retrieved from parked or ringing, ended from any state on a slot):
// off its slot, timer stopped, ringing ended. False when pk is past that
// already (another path won).
func (l *parkLot) settle(pk *parked, to parkState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	pk.mu.Lock()
	defer pk.mu.Unlock()
	switch {
	case !pk.state.onSlot(),
		to == parkAnswered && pk.state != parkRinging,
		to == parkRetrieved && pk.state == parkParking:
		return false
	}
	l.settleLocked(pk, to)
	return true
}

func (l *parkLot) settleLocked(pk *parked, to parkState) {
	if l.slots[pk.site][pk.slot] == pk {
		delete(l.slots[pk.site], pk.slot)
	}
	pk.state = to
	if pk.timer != nil {
		pk.timer.Stop()
		pk.timer = nil
	}
	if pk.ring != nil {
		pk.ring()
		pk.ring = nil
	}
}

// fire is the ring-back timer: pk rings its parker for RingFor, then,
// unanswered and still on its slot, goes back to parked or, after
// MaxRingbacks, ends.
func (l *parkLot) fire(pk *parked) {
	l.mu.Lock()
	pk.mu.Lock()
	if pk.state != parkParked {
		pk.mu.Unlock()
		l.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(pk.ctx)
	pk.state, pk.timer, pk.ring = parkRinging, nil, cancel
	pk.rings++
	ringFor := l.afterFunc(l.cfg.RingFor, cancel)
	pk.mu.Unlock()
	l.mu.Unlock()

	l.ringback(ctx, pk)
	ringFor.Stop()
	cancel()

	l.mu.Lock()
	pk.mu.Lock()
	if pk.state != parkRinging { // answered, retrieved or hung up meanwhile
		pk.mu.Unlock()
		l.mu.Unlock()
		return
	}
	if pk.rings < l.cfg.MaxRingbacks {
		l.armLocked(pk)
		pk.mu.Unlock()
		l.mu.Unlock()
		return
	}
	l.settleLocked(pk, parkEnded)
	pk.mu.Unlock()
	l.mu.Unlock()
	l.expire(pk)
}

// all lists the parked calls by site and slot.
func (l *parkLot) all() []*parked {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*parked
	for _, site := range l.slots {
		for _, pk := range site {
			out = append(out, pk)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].site != out[j].site {
			return out[i].site < out[j].site
		}
		return out[i].slot < out[j].slot
	})
	return out
}

// Reservations: a phone that dials the park code itself (attended park)
// is told a slot before any call is on it. The slot is reserved for the
// call the phone then transfers to that dialog; nothing else takes it
// until the reservation is used, released (the phone hung up) or expires
// (reserveFor without a transfer).

// parkReserveFor is how long a reserved slot waits for its call.
const parkReserveFor = 30 * time.Second

// reservationState is where a reservation is in its life: held, then
// exactly one of used, released or expired.
type reservationState int

const (
	resHeld reservationState = iota
	resUsed
	resReleased
	resExpired
)

// reservation is a slot announced to a call to the park code. The fields
// above state are set by reserve and never change; state and timer
// change under the lot's lock.
type reservation struct {
	site   string
	slot   int
	dialog string       // the call to the park code (its dialog ID)
	by     account.User // who dialled it: only they may use it

	state reservationState
	timer stopper
}

// reserve holds the lowest free slot of site not in elsewhere (held by
// other nodes) for the call to the park code dialog (dialled by by);
// after reserveFor unused, the reservation expires and expired is called
// (outside the lock).
func (l *parkLot) reserve(site, dialog string, by account.User, elsewhere map[int]bool, expired func(*reservation)) (*reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.freeLocked(site, elsewhere)
	if !ok {
		return nil, ErrParkFull
	}
	r := &reservation{site: site, slot: s, dialog: dialog, by: by}
	if l.held[site] == nil {
		l.held[site] = map[int]*reservation{}
	}
	l.held[site][s] = r
	r.timer = l.afterFunc(l.reserveFor, func() {
		if _, ended := l.endReservation(r, resExpired); ended {
			expired(r)
		}
	})
	return r, nil
}

// endReservation takes r off its slot as to (released or expired) if it
// is still held (ended), and returns its state after.
func (l *parkLot) endReservation(r *reservation, to reservationState) (reservationState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.state != resHeld {
		return r.state, false
	}
	l.dropReservationLocked(r, to)
	return to, true
}

// release frees r's slot when it is still held (the phone hung up the
// call to the park code); it returns r's final state: released, or used
// or expired before.
func (l *parkLot) release(r *reservation) reservationState {
	s, _ := l.endReservation(r, resReleased)
	return s
}

func (l *parkLot) dropReservationLocked(r *reservation, to reservationState) {
	delete(l.held[r.site], r.slot)
	r.state = to
	if r.timer != nil {
		r.timer.Stop()
	}
}

// fill puts pk on r's slot (state parking; pk's site is r's); false when r
// is no longer held (expired or released).
func (l *parkLot) fill(r *reservation, pk *parked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.state != resHeld {
		return false
	}
	l.dropReservationLocked(r, resUsed)
	pk.site = r.site
	l.placeLocked(pk, r.slot)
	return true
}

// reservedFor is the reservation held for the call to the park code
// dialog; nil when there is none.
func (l *parkLot) reservedFor(dialog string) *reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, site := range l.held {
		for _, r := range site {
			if r.dialog == dialog {
				return r
			}
		}
	}
	return nil
}

// slotsOf lists the slots of site this node holds, by slot: each call's
// state, or "reserved".
func (l *parkLot) slotsOf(site string) []HeldSlot {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []HeldSlot
	for s, pk := range l.slots[site] {
		pk.mu.Lock()
		out = append(out, HeldSlot{Slot: s, State: pk.state.String()})
		pk.mu.Unlock()
	}
	for s := range l.held[site] {
		out = append(out, HeldSlot{Slot: s, State: slotReserved})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}
