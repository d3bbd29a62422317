package conference

import (
	"sync"
	"time"
)

// The node's clock: one goroutine mixes every conference of the node. A
// frame's 20 ms are cut into slots of a millisecond, and each conference
// is mixed in one slot of every frame, its phase: the slot that carried
// the fewest participants when it opened. So the node's work is spread
// over the frame instead of done in one burst at its start, and a
// conference's packets leave at its phase plus n times 20 ms whatever
// the others do. The goroutine sleeps to each slot's start by the
// monotonic clock (slot n of a run at its start plus n milliseconds, so
// no drift accumulates) on a metronome: a timerfd on Linux, where the
// runtime's timers wake up to a millisecond late. It mixes every slot
// that has begun, in order (after a delay, the ones it missed, late),
// parks while no conference has anyone in it or anything to play, and
// ends when the node has no conference.
const (
	slotDur = time.Millisecond
	slots   = int(frameDur / slotDur)
)

type clock struct {
	mu      sync.Mutex
	slots   [slots][]*Conference
	weight  [slots]int // participants, plus one per conference, in each slot
	confs   int
	running bool          // the goroutine runs
	wake    chan struct{} // a parked goroutine has work

	batch []*Conference // the slot being mixed; the goroutine's
}

func newClock() *clock { return &clock{wake: make(chan struct{}, 1)} }

// add places c in the lightest slot and starts the goroutine if need be.
func (k *clock) add(c *Conference) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := 0
	for i, w := range k.weight {
		if w < k.weight[s] {
			s = i
		}
	}
	c.slot, c.weight, c.placed = s, 1, true
	k.slots[s] = append(k.slots[s], c)
	k.weight[s]++
	k.confs++
	if !k.running {
		k.running = true
		go k.run()
	}
}

// weigh counts d more participants in c's slot.
func (k *clock) weigh(c *Conference, d int) {
	k.mu.Lock()
	if c.placed {
		k.weight[c.slot] += d
		c.weight += d
	}
	k.mu.Unlock()
}

// remove takes c out of its slot (in the goroutine).
func (k *clock) remove(c *Conference) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, x := range k.slots[c.slot] {
		if x == c {
			s := k.slots[c.slot]
			copy(s[i:], s[i+1:])
			s[len(s)-1] = nil
			k.slots[c.slot] = s[:len(s)-1]
			break
		}
	}
	k.weight[c.slot] -= c.weight
	c.placed = false
	k.confs--
}

// poke wakes a parked goroutine.
func (k *clock) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// park waits for a poke; false: the node has no conference left, and
// the goroutine must end.
func (k *clock) park() bool {
	k.mu.Lock()
	if k.confs == 0 {
		k.running = false
		k.mu.Unlock()
		return false
	}
	k.mu.Unlock()
	<-k.wake
	return true
}

func (k *clock) run() {
	met := newMetronome()
	defer met.close()
	var (
		start time.Time // slot 0 of this run
		slot  int64     // the last slot mixed
		quiet int       // slots in a row with nothing mixed
	)
	parked := true
	for {
		if parked {
			if !k.park() {
				return
			}
			parked, start, slot, quiet = false, time.Now(), -1, 0
		}
		met.sleep(time.Until(start.Add(time.Duration(k.next(slot)) * slotDur)))
		for last := int64(time.Since(start) / slotDur); slot < last; {
			slot++
			if k.mix(int(slot%int64(slots)), start.Add(time.Duration(slot)*slotDur)) {
				quiet = 0
			} else {
				quiet++
			}
		}
		parked = quiet >= slots
	}
}

// next is the first slot after slot that holds a conference (slot plus a
// frame if none does): the goroutine sleeps through empty slots, which it
// then passes over in no time.
func (k *clock) next(slot int64) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	for n := slot + 1; n < slot+int64(slots); n++ {
		if len(k.slots[n%int64(slots)]) > 0 {
			return n
		}
	}
	return slot + int64(slots)
}

// mix mixes the frame of the conferences of slot s, due at due, and
// reports whether any was busy; it takes out those closed.
func (k *clock) mix(s int, due time.Time) (busy bool) {
	k.mu.Lock()
	k.batch = append(k.batch[:0], k.slots[s]...)
	k.mu.Unlock()
	for i, c := range k.batch {
		idle, closed := c.tick(due)
		if closed {
			k.remove(c)
			c.exit()
		}
		busy = busy || !idle
		k.batch[i] = nil
	}
	return busy
}

// sleeper is a metronome of the runtime's timers (elsewhere than Linux,
// or where no timerfd could be made).
type sleeper struct{ t *time.Timer }

func newSleeper() *sleeper { return &sleeper{t: time.NewTimer(time.Hour)} }

func (s *sleeper) sleep(d time.Duration) {
	if d > 0 {
		s.t.Reset(d)
		<-s.t.C
	}
}

func (s *sleeper) close() { s.t.Stop() }
