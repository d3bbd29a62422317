package node

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Go keeps the heap it grew under load and gives it back to the system
// only slowly, and when a load stops no collection runs to find its
// garbage (finished SIP transactions, for one): after a burst of
// registrations a node would sit at its peak RSS for minutes.
// trimMemoryLoop collects and returns what the node does not use every
// trimEvery, once its heap holds more than trimAbove: a node's RSS follows
// what it keeps (bindings, calls) soon after a load. Under load it adds one
// collection per period to the many the load causes.
const (
	trimEvery = 15 * time.Second
	trimAbove = 64 << 20 // bytes of heap (objects and free spans) worth a collection
)

func (n *Node) trimMemoryLoop(ctx context.Context) {
	every(ctx, trimEvery, func() bool {
		if heapHeld() > trimAbove {
			debug.FreeOSMemory()
		}
		return false
	})
}

// heapHeld is the heap the process holds from the system: its objects,
// live or not yet collected, and its free spans not yet returned.
func heapHeld() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(s)
	var held uint64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindUint64 {
			held += v.Value.Uint64()
		}
	}
	return held
}
