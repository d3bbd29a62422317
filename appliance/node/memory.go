package node

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Go keeps the heap it grew under load and gives it back to the system
// only slowly (and when the load stops, no collection runs to find the
// garbage): after a burst of registrations a node would sit at its peak
// RSS for minutes. trimMemoryLoop collects and returns the heap the node
// does not use, when that is more than trimAbove, every trimEvery: a
// node's RSS follows what it holds (bindings, calls) soon after a load.
const (
	trimEvery = 10 * time.Second
	trimAbove = 32 << 20 // bytes of reclaimable heap worth a collection
)

func (n *Node) trimMemoryLoop(ctx context.Context) {
	every(ctx, trimEvery, func() bool {
		if reclaimableHeap() > trimAbove {
			debug.FreeOSMemory()
		}
		return false
	})
}

// reclaimableHeap is the heap a collection and a release would give back:
// the objects and free space held, less what was live at the last
// collection.
func reclaimableHeap() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return 0
		}
	}
	held := s[0].Value.Uint64() + s[1].Value.Uint64()
	if live := s[2].Value.Uint64(); held > live {
		return held - live
	}
	return 0
}
