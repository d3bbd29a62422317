package conference

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// BenchmarkBridge runs conferences over real UDP on loopback: 33 of 3
// participants, 10 of 10 and 3 of 32, every participant talking (a tone,
// 50 packets/s, PCMU and PCMA alternately). The far ends are a load
// generator in a child process (this test binary, TestLoadGenerator):
// one socket that sends every participant's stream, paced by the clock,
// and counts what the bridge sends back. So the benchmark process's CPU
// (getrusage) is the bridge's alone: its mixing goroutines, their socket
// reads and sends, and the runtime.
//
// Reported: the bridge's CPU in % of one core and in µs per participant
// per second of call; packets lost toward the bridge (generator sent,
// never received by a participant) and from it (participants sent,
// generator never received), in %; jitter-buffer trouble in the measured
// window (frames concealed, late or dropped to keep the buffer 3 deep), in
// % of frames received. One iteration is
// one second of measured load after one second of warm-up (-benchtime 10x
// measures 10 s).
//
//	go test -run '^$' -bench Bridge -benchtime 10x ./appliance/media/conference/
func BenchmarkBridge(b *testing.B) {
	for _, s := range []struct{ confs, parts int }{{33, 3}, {10, 10}, {3, 32}} {
		b.Run(fmt.Sprintf("confs=%d/parts=%d", s.confs, s.parts), func(b *testing.B) { benchBridge(b, s.confs, s.parts) })
	}
}

const loadgenEnv = "CONFERENCE_LOADGEN"

func benchBridge(b *testing.B, confs, parts int) {
	const warmup = time.Second
	gen := exec.Command(os.Args[0], "-test.run=^TestLoadGenerator$", "-test.bench=^$", "-test.count=1")
	gen.Env = append(os.Environ(), loadgenEnv+"=1")
	gen.Stderr = os.Stderr
	stdin, err := gen.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := gen.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := gen.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gen.Process.Kill(); _ = gen.Wait() }()
	lines := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), prefix+" "); ok {
				return v
			}
		}
		b.Fatalf("load generator: no %q line: %v", prefix, lines.Err())
		return ""
	}
	peer, err := netip.ParseAddrPort(expect("addr"))
	if err != nil {
		b.Fatal(err)
	}

	br := newBridges(b)
	var all []*Participant
	var conferences []*Conference
	for i := range confs {
		c, err := br.Open(fmt.Sprint("bench-", i))
		if err != nil {
			b.Fatal(err)
		}
		conferences = append(conferences, c)
		for j := range parts {
			codec := []g711.Codec{g711.PCMU, g711.PCMA}[(i+j)%2]
			p, err := c.Join(fmt.Sprint("p", j), peer, codec, 101)
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, p)
			fmt.Fprintf(stdin, "part %s %d\n", p.Addr(), codec.PayloadType())
		}
	}
	run := warmup + time.Duration(b.N)*time.Second + 200*time.Millisecond
	fmt.Fprintf(stdin, "run %s\n", run)

	// The jitter buffers' counters over the measured window only: the
	// streams' start and end (the generator stops first) are not steady.
	window := func() (received, concealed uint64) {
		for _, p := range all {
			st := p.Stats()
			received += st.Received
			concealed += st.Concealed + st.Late + st.Dropped
		}
		return received, concealed
	}
	time.Sleep(warmup)
	received0, concealed0 := window()
	cpu0 := cpuTime()
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * time.Second)
	cpu := cpuTime() - cpu0
	elapsed := b.Elapsed()
	b.StopTimer()
	received1, concealed1 := window()

	var sentToBridge, behind int
	if _, err := fmt.Sscanf(expect("sent"), "%d %d", &sentToBridge, &behind); err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the last packets mixed
	for _, c := range conferences {
		c.Close()
	}
	var received, sentByBridge uint64
	for _, p := range all {
		st := p.Stats()
		received += st.Received
		sentByBridge += st.Sent
	}
	fmt.Fprintln(stdin, "stop")
	var got uint64
	if _, err := fmt.Sscanf(expect("received"), "%d", &got); err != nil {
		b.Fatal(err)
	}
	_ = stdin.Close()

	n := float64(len(all))
	b.ReportMetric(100*float64(cpu)/float64(elapsed), "cpu-%")
	b.ReportMetric(float64(cpu.Microseconds())/elapsed.Seconds()/n, "cpu-µs/participant/s")
	b.ReportMetric(100*(1-float64(received)/float64(sentToBridge)), "loss-in-%")
	b.ReportMetric(100*(1-float64(got)/float64(sentByBridge)), "loss-out-%")
	b.ReportMetric(100*float64(concealed1-concealed0)/float64(max(received1-received0, 1)), "concealed-%")
	if behind > 0 {
		b.Logf("the load generator fell behind its pace %d times: the figures describe a machine short of CPU", behind)
	}
}

// TestLoadGenerator is BenchmarkBridge's far ends, run in a child process
// (skipped otherwise). It reads "part <addr> <payload type>" lines, then
// "run <duration>": it sends each participant a tone, 50 packets/s, for
// that long, counting what comes back; prints "sent <packets> <times
// behind>", and after a "stop" line "received <packets>".
func TestLoadGenerator(t *testing.T) {
	if os.Getenv(loadgenEnv) == "" {
		t.Skip("the load generator of BenchmarkBridge, run by it in a child process")
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if raw, err := conn.SyscallConn(); err == nil { // root may pass rmem_max
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 8<<20)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, 8<<20)
		})
	}
	fmt.Println("addr", conn.LocalAddr().(*net.UDPAddr).AddrPort())

	type target struct {
		addr netip.AddrPort
		pt   uint8
	}
	var targets []target
	in := bufio.NewScanner(os.Stdin)
	var dur time.Duration
	for dur == 0 && in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 3 && f[0] == "part":
			var tg target
			var pt int
			tg.addr, err = netip.ParseAddrPort(f[1])
			if _, serr := fmt.Sscan(f[2], &pt); err != nil || serr != nil {
				t.Fatalf("bad line %q", in.Text())
			}
			tg.pt = uint8(pt)
			targets = append(targets, tg)
		case len(f) == 2 && f[0] == "run":
			if dur, err = time.ParseDuration(f[1]); err != nil {
				t.Fatal(err)
			}
		}
	}

	var got atomic.Uint64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()

	pcmu, pcma := toneFrames(g711.PCMU, 440), toneFrames(g711.PCMA, 440)
	start := time.Now()
	sent, behind := 0, 0
	for n := 0; time.Duration(n)*frameDur < dur; n++ {
		due := start.Add(time.Duration(n) * frameDur)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if wait < -frameDur {
			behind++
		}
		for i, tg := range targets {
			f := pcmu[(n+i)%len(pcmu)]
			if tg.pt == g711.PCMA.PayloadType() {
				f = pcma[(n+i)%len(pcma)]
			}
			stamp(f, tg.pt, uint16(n), uint32(n*frameSamples), uint32(i+1))
			if _, err := conn.WriteToUDPAddrPort(f, tg.addr); err == nil {
				sent++
			}
		}
	}
	fmt.Println("sent", sent, behind)
	for in.Scan() && in.Text() != "stop" {
	}
	time.Sleep(200 * time.Millisecond)
	fmt.Println("received", got.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// cpuTime is the CPU time this process has used (children not counted).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
