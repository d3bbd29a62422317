package conference

import (
	"fmt"
	"testing"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Conferences are spread over the frame's slots by the participants they
// carry, and a conference closed gives its slot's weight back.
func TestClockSpreadsConferences(t *testing.T) {
	b := newBridges(t)
	ph := newPhone(t, g711.PCMU)
	var confs []*Conference
	for i := range 2 * slots {
		c := open(t, b, fmt.Sprint("spread-", i))
		if i < slots {
			for j := range 3 { // the first frame's worth carry 3 participants each
				ph.join(c, fmt.Sprint("p", j))
			}
		}
		confs = append(confs, c)
	}
	k := b.clock
	k.mu.Lock()
	for s := range slots {
		if len(k.slots[s]) != 2 || k.weight[s] != 5 {
			t.Errorf("slot %d: %d conferences, weight %d; want 2 and 5 (one of 3 participants, one empty)", s, len(k.slots[s]), k.weight[s])
		}
	}
	slot := confs[0].slot
	k.mu.Unlock()

	confs[0].Close()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.weight[slot] != 1 || len(k.slots[slot]) != 1 {
		t.Errorf("after Close, slot %d: %d conferences, weight %d; want 1 and 1", slot, len(k.slots[slot]), k.weight[slot])
	}
}
