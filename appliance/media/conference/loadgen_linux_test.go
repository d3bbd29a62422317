package conference

import (
	"bufio"
	"encoding/hex"
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

	"golang.org/x/net/ipv4"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// The benchmarks' far ends (the participants' phones) are a load
// generator in a child process: this test binary again, running
// TestLoadGenerator. So their sending and receiving neither share the
// bridge's Go scheduler nor count in its CPU (getrusage of this process).
// One socket stands for every phone: it sends each participant its own
// tone, 50 packets/s paced by the clock, counts what the bridge sends
// back, and keeps a few frames of what chosen participants hear so that
// the benchmark can check the mix.
//
// The parent writes lines to the child's stdin, the child answers on its
// stdout:
//
//	child:  addr <addr:port>                       where the phones receive
//	parent: part <participant addr> <pt> <freq>    one per participant
//	parent: watch <participant addr>               keep what it hears
//	parent: run <duration> <capture after>         send for that long
//	child:  sent <packets> <times behind> <cpu ns> <elapsed ns>
//	parent: stop
//	child:  received <packets>
//	child:  heard <participant addr> <hex payloads>   one per watch

const loadgenEnv = "CONFERENCE_LOADGEN"

// heardFrames is how many frames the generator keeps of what a watched
// participant hears: 200 ms, the tests' Goertzel window.
const heardFrames = window

// loadgen is the parent's end of the load generator.
type loadgen struct {
	tb    testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
	addr  netip.AddrPort // where the phones receive: every participant's peer
}

// startLoadgen starts the generator; it is killed at the end of the
// benchmark if still running.
func startLoadgen(tb testing.TB) *loadgen {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadGenerator$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), loadgenEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	g := &loadgen{tb: tb, cmd: cmd, in: in, lines: bufio.NewScanner(out)}
	g.lines.Buffer(make([]byte, 64<<10), 1<<20)
	if g.addr, err = netip.ParseAddrPort(g.expect("addr")); err != nil {
		tb.Fatal(err)
	}
	return g
}

// expect returns the rest of the child's next line starting with prefix.
func (g *loadgen) expect(prefix string) string {
	g.tb.Helper()
	for g.lines.Scan() {
		if v, ok := strings.CutPrefix(g.lines.Text(), prefix+" "); ok {
			return v
		}
	}
	g.tb.Fatalf("load generator: no %q line: %v", prefix, g.lines.Err())
	return ""
}

func (g *loadgen) send(format string, args ...any) {
	if _, err := fmt.Fprintf(g.in, format+"\n", args...); err != nil {
		g.tb.Fatalf("load generator: %v", err)
	}
}

// part makes a phone for p: it sends p a freq Hz tone in codec.
func (g *loadgen) part(p *Participant, codec g711.Codec, freq float64) {
	g.send("part %s %d %g", p.Addr(), codec.PayloadType(), freq)
}

// watch keeps heardFrames of what p sends its phone, from the capture
// time of run.
func (g *loadgen) watch(p *Participant) { g.send("watch %s", p.Addr()) }

// run starts sending for d; the watched participants' frames are kept
// from capture on.
func (g *loadgen) run(d, capture time.Duration) { g.send("run %s %s", d, capture) }

// sent waits for the end of sending: the packets sent, how many times
// the generator was a frame or more behind its pace, and its CPU over
// the sending, in % of one core.
func (g *loadgen) sent() (sent, behind int, cpuPct float64) {
	g.tb.Helper()
	var cpu, elapsed int64
	if _, err := fmt.Sscanf(g.expect("sent"), "%d %d %d %d", &sent, &behind, &cpu, &elapsed); err != nil {
		g.tb.Fatal(err)
	}
	return sent, behind, 100 * float64(cpu) / float64(max(elapsed, 1))
}

// stop ends the generator: the packets it received from the bridge and
// the payloads of the watched participants.
func (g *loadgen) stop() (received uint64, heard map[netip.AddrPort][]byte) {
	g.tb.Helper()
	g.send("stop")
	_ = g.in.Close() // the child reads to the end of its input before it exits
	if _, err := fmt.Sscanf(g.expect("received"), "%d", &received); err != nil {
		g.tb.Fatal(err)
	}
	heard = map[netip.AddrPort][]byte{}
	for g.lines.Scan() {
		v, ok := strings.CutPrefix(g.lines.Text(), "heard ")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		addr, err := netip.ParseAddrPort(f[0])
		if err != nil {
			g.tb.Fatal(err)
		}
		if len(f) > 1 {
			if heard[addr], err = hex.DecodeString(f[1]); err != nil {
				g.tb.Fatal(err)
			}
		} else {
			heard[addr] = nil
		}
	}
	return received, heard
}

// phoneLoad is one participant's phone in the child.
type phoneLoad struct {
	to     netip.AddrPort
	pt     uint8
	frames [][]byte // a second of its tone
}

// TestLoadGenerator is the benchmarks' load generator, run by them in a
// child process (skipped otherwise).
func TestLoadGenerator(t *testing.T) {
	if os.Getenv(loadgenEnv) == "" {
		t.Skip("the load generator of the conference benchmarks, run by them in a child process")
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

	var phones []phoneLoad
	heard := map[netip.AddrPort]*[]byte{}
	var order []netip.AddrPort // of the watches
	in := bufio.NewScanner(os.Stdin)
	var dur, capture time.Duration
	for dur == 0 && in.Scan() {
		f := strings.Fields(in.Text())
		bad := func(err error) {
			if err != nil {
				t.Fatalf("bad line %q: %v", in.Text(), err)
			}
		}
		switch {
		case len(f) == 4 && f[0] == "part":
			addr, err := netip.ParseAddrPort(f[1])
			bad(err)
			var pt int
			var freq float64
			_, err = fmt.Sscan(f[2]+" "+f[3], &pt, &freq)
			bad(err)
			codec := g711.PCMU
			if uint8(pt) == g711.PCMA.PayloadType() {
				codec = g711.PCMA
			}
			phones = append(phones, phoneLoad{to: addr, pt: uint8(pt), frames: toneFrames(codec, freq)})
		case len(f) == 2 && f[0] == "watch":
			addr, err := netip.ParseAddrPort(f[1])
			bad(err)
			heard[addr] = new([]byte)
			order = append(order, addr)
		case len(f) == 3 && f[0] == "run":
			dur, err = time.ParseDuration(f[1])
			bad(err)
			capture, err = time.ParseDuration(f[2])
			bad(err)
		default:
			bad(fmt.Errorf("unknown"))
		}
	}

	// The receiver counts every packet and keeps the watched ones' frames
	// once capturing.
	var got atomic.Uint64
	var capturing atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			got.Add(1)
			if !capturing.Load() || n != headerSize+frameSamples {
				continue
			}
			if h, ok := heard[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]; ok && len(*h) < heardFrames*frameSamples {
				*h = append(*h, buf[headerSize:n]...)
			}
		}
	}()

	// The sender: every phone's frame n at the start plus n times 20 ms,
	// in batches (sendmmsg), so that the generator takes little CPU.
	pc := ipv4.NewPacketConn(conn)
	msgs := make([]ipv4.Message, len(phones))
	for i, ph := range phones {
		msgs[i].Addr = net.UDPAddrFromAddrPort(ph.to)
		msgs[i].Buffers = [][]byte{nil}
	}
	const batch = 64
	cpu0 := cpuTime()
	start := time.Now()
	sent, behind := 0, 0
	for n := 0; time.Duration(n)*frameDur < dur; n++ {
		due := start.Add(time.Duration(n) * frameDur)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if wait < -frameDur {
			behind++
		}
		if time.Duration(n)*frameDur >= capture {
			capturing.Store(true)
		}
		for i, ph := range phones {
			f := ph.frames[n%len(ph.frames)]
			stamp(f, ph.pt, uint16(n), uint32(n*frameSamples), uint32(i+1))
			msgs[i].Buffers[0] = f
		}
		for k := 0; k < len(msgs); {
			m, err := pc.WriteBatch(msgs[k:min(k+batch, len(msgs))], 0)
			sent, k = sent+m, k+m
			if err != nil {
				k++ // the one refused is lost
			}
		}
	}
	fmt.Println("sent", sent, behind, int64(cpuTime()-cpu0), int64(time.Since(start)))
	for in.Scan() && in.Text() != "stop" {
	}
	time.Sleep(200 * time.Millisecond) // the last packets in flight
	conn.Close()
	<-done
	fmt.Println("received", got.Load())
	for _, addr := range order {
		fmt.Println("heard", addr, hex.EncodeToString(*heard[addr]))
	}
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
