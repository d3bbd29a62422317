// Command outpost is the Outpost appliance: it runs a node and talks to
// running nodes (shared/CONTRACT.md, "The appliance CLI").
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// udpTimerJ is how long a finished non-INVITE server transaction over UDP
// is kept to absorb retransmissions of its request (RFC 3261 Timer J,
// 64*T1 = 32 s by default). A phone retransmits only when our final
// response was lost, at 0.5, 1.5 and 3.5 s, so 5 s absorbs all of those;
// a later one is handled anew. At thousands of REGISTERs a second, 32 s of
// finished transactions is most of the node's memory: 5 s bounds it.
const udpTimerJ = 5 * time.Second

// memoryLimit is the heap size past which the garbage collector works
// harder (a soft limit; GOMEMLIMIT in the environment overrides it). It
// keeps a node under sustained overload within its 500 MiB budget instead
// of letting the heap double between collections.
const memoryLimit = 400 << 20

func main() {
	sip.Timer_J = udpTimerJ // process-wide, before any transaction exists
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
