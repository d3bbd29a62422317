// Command rtpload measures an RTP relay under G.711 call load.
//
//	rtpload run   -ng 127.0.0.1:2223 -calls 500 -duration 20s -pid PID
//	rtpload run   -inproc -calls 500 -duration 20s
//	rtpload serve -ng 127.0.0.1:2230 -ip 127.0.0.1 -ports 30000-39999
//	rtpload ping  -ng 127.0.0.1:2230 -wait 10s
//	rtpload run   -direct -calls 500 -duration 20s
//	taskset -c 0 rtpload cpuwait -duration 5s
//
// run drives a relay over rtpengine's NG protocol (offer/answer/delete),
// or an in-process Outpost relay with -inproc, sends 50 packets/s each way
// per call and prints calls, packets, loss, the delay the relay added
// (p50/p99/max) and the relay process's CPU. serve runs the Outpost relay
// behind the same NG commands, so one generator drives both relays as
// separate processes (scripts/bench-media.sh); with -residence it also
// measures how long each packet stayed in it (kernel arrival stamp to
// send), which run reports beside its own figures. run -direct sends the
// same load with no relay in the path: the generator's own floor. cpuwait
// spins on one CPU and reports how long a packet would have waited for
// that CPU (other processes, the hypervisor): the floor under any relay
// pinned there. ping waits until a relay answers.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: rtpload run|serve|ping|cpuwait [flags] (-h for each)")
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "ping":
		err = ping(ctx, args[1:], stderr)
	case "cpuwait":
		err = cpuWait(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "rtpload: unknown command %q: want run, serve, ping or cpuwait\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "rtpload %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
