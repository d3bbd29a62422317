package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/media/internal/ng"
	"github.com/outpost-voice/outpost/appliance/media/internal/rtpload"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ngAddr := fs.String("ng", "", "NG control address of the relay (rtpengine or rtpload serve)")
	inproc := fs.Bool("inproc", false, "relay in this process (Outpost) instead of over NG")
	direct := fs.Bool("direct", false, "no relay: A sends straight to B (the generator's and the machine's own floor)")
	calls := fs.Int("calls", 500, "concurrent calls")
	dur := fs.Duration("duration", 20*time.Second, "measured sending time")
	warmup := fs.Duration("warmup", 2*time.Second, "sending time before measuring")
	pid := fs.Int("pid", 0, "relay process to measure CPU of (0: none; -inproc: this one)")
	ip := fs.String("ip", "127.0.0.1", "address of the -inproc relay")
	label := fs.String("label", "", "first column of the markdown row")
	row := fs.Bool("row", false, "print one markdown table row instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := netip.ParseAddr(*ip)
	if err != nil {
		return fmt.Errorf("-ip: %w", err)
	}
	cfg := rtpload.Config{Calls: *calls, Duration: *dur, Warmup: *warmup, TargetPID: *pid}

	var anchor rtpload.Anchor
	switch {
	case *direct:
		anchor = rtpload.DirectAnchor{}
	case *inproc:
		rec := rtpload.NewResidence()
		r, err := media.New(media.Config{IP: addr, PortMin: 20000, PortMax: 29999, InactivityTimeout: time.Hour,
			Residence: rec.Record})
		if err != nil {
			return err
		}
		defer r.Close()
		anchor = &rtpload.RelayAnchor{Relay: r, Recorder: rec}
		cfg.TargetPID = os.Getpid()
	case *ngAddr != "":
		c, err := ng.Dial(*ngAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Do(ctx, ng.Dict{"command": "ping"}); err != nil {
			return fmt.Errorf("relay at %s does not answer ping: %w", *ngAddr, err)
		}
		anchor = ngAnchor{Anchor: ng.NewAnchor(c, "load-"+strconv.FormatInt(time.Now().UnixNano(), 36)), c: c}
	default:
		return errors.New("give -ng ADDR, -inproc or -direct")
	}

	res, err := rtpload.Run(ctx, anchor, cfg)
	if err != nil {
		return err
	}
	if res.TargetCPUErr != "" {
		fmt.Fprintf(stderr, "rtpload: CPU not measured: %s\n", res.TargetCPUErr)
	}
	if *row {
		printRow(stdout, *label, res, cfg.TargetPID > 0)
		fmt.Fprintf(stderr, "%s, %d calls: generator %.0f%% of one core, other processes %.0f%%, steal %.0f%%, sender late p99 %s ms%s%s\n",
			*label, res.Calls, res.SelfCPU, res.OtherCPU, res.StealCPU, ms(res.SendLateP99), behind(res), residenceNote(res))
		return nil
	}
	printText(stdout, res)
	return nil
}

func ping(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ngAddr := fs.String("ng", "127.0.0.1:2223", "NG control address")
	wait := fs.Duration("wait", 10*time.Second, "how long to keep trying")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := ng.Dial(*ngAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	for {
		_, err := c.Do(ctx, ng.Dict{"command": "ping"})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no pong from %s within %v: %w", *ngAddr, *wait, err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func cpuWait(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cpuwait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("duration", 5*time.Second, "how long to spin")
	short := fs.Bool("short", false, "print p99 in ms only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w := rtpload.MeasureCPUWait(*dur)
	if *short {
		fmt.Fprintln(stdout, ms(w.P99))
		return nil
	}
	fmt.Fprintf(stdout, "over %v the CPU was unavailable %.1f%% of the time (longest %s ms); a packet arriving at random would wait p99 %s ms, p99.9 %s ms\n",
		w.Duration.Round(time.Millisecond), 100*w.Unavailable, ms(w.Longest), ms(w.P99), ms(w.P999))
	return nil
}

func behind(r rtpload.Result) string {
	if r.Behind() {
		return " (GENERATOR BEHIND: it sent in bursts, which the relay had to queue; the delays overstate the relay's)"
	}
	return ""
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func residenceNote(r rtpload.Result) string {
	if r.RelayErr != "" {
		return "" // the row says n/a
	}
	return fmt.Sprintf("; in-relay time over %d packets", r.Relay.N)
}

// printRow prints "| label | calls | pps | loss % | added p50 | p99 | max |
// in relay p50 | p99 | max | CPU% |".
func printRow(w io.Writer, label string, r rtpload.Result, haveCPU bool) {
	cpu := "n/a"
	if haveCPU {
		cpu = strconv.FormatFloat(r.TargetCPU, 'f', 0, 64)
	}
	in := "n/a | n/a | n/a"
	if r.RelayErr == "" {
		in = ms(r.Relay.P50) + " | " + ms(r.Relay.P99) + " | " + ms(r.Relay.Max)
	}
	fmt.Fprintf(w, "| %s | %d | %.0f | %.3f | %s | %s | %s | %s | %s |\n",
		label, r.Calls, r.PPS(), r.LossPct(), ms(r.AddedP50), ms(r.AddedP99), ms(r.AddedMax), in, cpu)
}

func printText(w io.Writer, r rtpload.Result) {
	fmt.Fprintf(w, "calls %d for %v: %.0f packets/s offered\n", r.Calls, r.Duration, r.PPS())
	fmt.Fprintf(w, "A->B sent %d received %d; B->A sent %d received %d; loss %.3f%%; misrouted %d\n",
		r.Sent[0], r.Received[0], r.Sent[1], r.Received[1], r.LossPct(), r.Misrouted)
	fmt.Fprintf(w, "added delay over %d packets: p50 %s ms, p99 %s ms, max %s ms (min transit %v)\n",
		r.Measured, ms(r.AddedP50), ms(r.AddedP99), ms(r.AddedMax), r.MinTransit)
	if r.RelayErr == "" {
		fmt.Fprintf(w, "time in the relay (kernel arrival stamp to send) over %d packets: p50 %s ms, p99 %s ms, max %s ms\n",
			r.Relay.N, ms(r.Relay.P50), ms(r.Relay.P99), ms(r.Relay.Max))
	}
	fmt.Fprintf(w, "CPU (%% of one core): relay %.0f, generator %.0f, other processes %.0f, stolen by the hypervisor %.0f; sender late p99 %s ms%s\n",
		r.TargetCPU, r.SelfCPU, r.OtherCPU, r.StealCPU, ms(r.SendLateP99), behind(r))
}
