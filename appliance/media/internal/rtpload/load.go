// Package rtpload generates G.711-like RTP through a relay and measures
// what the relay does to it: loss, misrouting and the delay it adds. It
// drives any relay through an Anchor (in-process media.Relay, or rtpengine
// and the Outpost relay over the NG protocol), so both see the same load.
//
// Every call has two endpoints, A and B, each its own loopback address
// (127.64.0.0/16) that sends its stream to the relay and receives the
// other's; the endpoints share two sockets and batch their I/O so that the
// generator takes little of the CPU it shares with the relay. Packets
// carry their send time; the kernel stamps their arrival (SO_TIMESTAMPNS),
// so the delay measured is the relay's plus loopback's, not the
// generator's scheduling. All on one machine: one clock. Linux only.
package rtpload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Anchor sets up the relay for one call.
type Anchor interface {
	// Open anchors call i whose endpoints receive (and send from) a and b.
	// It returns where A must send (the relay's address for A) and where
	// B must send.
	Open(ctx context.Context, i int, a, b netip.AddrPort) (aTo, bTo netip.AddrPort, err error)
	// Close tears call i down.
	Close(ctx context.Context, i int) error
}

// Config is the load to generate.
type Config struct {
	Calls       int
	Duration    time.Duration // measured sending time, after Warmup
	Warmup      time.Duration // sent and counted, not in the delay figures
	Rate        int           // packets per second per direction (50)
	PayloadSize int           // bytes of payload (160 for G.711 at 20 ms)
	// Sockets is how many shared sockets carry the endpoints (2).
	Sockets int
	// TargetPID is the relay's process for the CPU figure; 0 measures none.
	TargetPID int
	// Drain is how long to wait for packets in flight after sending stops.
	Drain time.Duration
}

func (c *Config) defaults() {
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.PayloadSize < payloadHeader {
		c.PayloadSize = 160
	}
	if c.Drain <= 0 {
		c.Drain = time.Second
	}
	if c.Sockets <= 0 {
		c.Sockets = 2
	}
}

// Result is what one run measured.
type Result struct {
	Calls int
	// Duration is how long sending took, warm-up included: more than asked
	// when the generator fell behind (see SendLateP99).
	Duration time.Duration
	// Sent and Received count packets A->B ([0]) and B->A ([1]).
	Sent, Received [2]uint64
	Misrouted      uint64 // arrived at the wrong endpoint
	// MinTransit is the smallest send-to-arrival time seen; the Added
	// figures are transit minus MinTransit: the spread the relay added.
	MinTransit         time.Duration
	AddedP50, AddedP99 time.Duration
	AddedMax           time.Duration
	Measured           uint64        // packets in the delay figures
	SendLateP99        time.Duration // how late the generator sent, p99
	TargetCPU, SelfCPU float64       // percent of one core, over Duration
	// OtherCPU is what the rest of the machine used meanwhile (percent of
	// one core): the figures are trustworthy only when it is near zero.
	OtherCPU float64
	// StealCPU is the CPU the hypervisor gave to other guests meanwhile.
	StealCPU     float64
	TargetCPUErr string
	// Relay is how long packets stayed in the relay over the measured
	// window, as the relay measured it (ResidenceMeter); RelayErr says
	// why not when it could not.
	Relay    Dist
	RelayErr string
}

// LossPct is the share of sent packets that never arrived, in percent.
func (r Result) LossPct() float64 {
	sent := r.Sent[0] + r.Sent[1]
	if sent == 0 {
		return 0
	}
	recv := r.Received[0] + r.Received[1]
	if recv >= sent {
		return 0
	}
	return 100 * float64(sent-recv) / float64(sent)
}

// Behind reports that the generator could not keep its pace (p99 of its
// lateness over 2 ms): packets it sent late left together, a burst a
// relay must queue (about 12 µs a packet on the project's VMs: a 2 ms
// burst at 500 calls is 100 packets, over a millisecond for the last),
// which phones sending on their own clocks do not cause. The delay
// figures of such a run, in-relay ones included, overstate what the
// relay adds.
func (r Result) Behind() bool { return r.SendLateP99 > 2*time.Millisecond }

// PPS is the packets per second offered to the relay (both directions).
func (r Result) PPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Sent[0]+r.Sent[1]) / r.Duration.Seconds()
}

const (
	magic         = 0x4f504c44 // "OPLD"
	headerLen     = 12
	payloadHeader = 16 // magic, stream id, send time
	// batch bounds a sendmmsg, so that the packets of one batch, stamped
	// together, leave within a few microseconds of their stamp.
	batch = 16
)

type endpoint struct {
	sock   int            // index of the shared socket it uses
	addr   netip.AddrPort // its address (127.64.x.y, the socket's port)
	sendTo *net.UDPAddr
	oob    []byte // sends from addr
	stream uint32 // id of the stream it sends; it receives stream^1
	pkt    []byte
	seq    uint16
	ts     uint32
}

// Run sets up cfg.Calls calls through anchor, sends for Warmup+Duration,
// waits for the stragglers, tears the calls down and reports.
func Run(ctx context.Context, anchor Anchor, cfg Config) (Result, error) {
	cfg.defaults()
	res := Result{Calls: cfg.Calls}
	conns := make([]*net.UDPConn, 0, cfg.Sockets)
	pcs := make([]*ipv4.PacketConn, 0, cfg.Sockets)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range cfg.Sockets {
		c, pc, err := listenShared()
		if err != nil {
			return res, err
		}
		conns, pcs = append(conns, c), append(pcs, pc)
	}
	eps := make([]*endpoint, 0, 2*cfg.Calls)
	for k := range 2 * cfg.Calls {
		eps = append(eps, newEndpoint(cfg, k, conns))
	}
	opened := 0
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := range opened {
			_ = anchor.Close(cctx, i)
		}
	}()
	for i := range cfg.Calls {
		a, b := eps[2*i], eps[2*i+1]
		aTo, bTo, err := anchor.Open(ctx, i, a.addr, b.addr)
		if err != nil {
			return res, fmt.Errorf("open call %d: %w", i, err)
		}
		opened++
		a.sendTo, b.sendTo = net.UDPAddrFromAddrPort(aTo), net.UDPAddrFromAddrPort(bTo)
	}

	m := &meter{delay: newHist(), late: newHist(), eps: eps}
	var readers sync.WaitGroup
	for _, pc := range pcs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			m.receive(pc)
		}()
	}

	start := time.Now().Add(10 * time.Millisecond)
	m.measureFrom.Store(start.Add(cfg.Warmup).UnixNano())
	end := start.Add(cfg.Warmup + cfg.Duration)
	cpu := startCPU(cfg.TargetPID)
	meter, _ := anchor.(ResidenceMeter)
	resetErr := make(chan error, 1)
	go func() {
		// Start the CPU and residence windows when the measured part
		// begins.
		t := time.NewTimer(time.Until(start.Add(cfg.Warmup)))
		defer t.Stop()
		select {
		case <-t.C:
			cpu.mark()
			if meter != nil {
				resetErr <- meter.ResetResidence(ctx)
			}
		case <-ctx.Done():
		}
	}()
	if err := m.send(ctx, cfg, pcs, start, end); err != nil {
		return res, err
	}
	cpu.stop()
	res.Duration = time.Since(start)

	// Wait for what is in flight, then stop the readers.
	deadline := time.Now().Add(cfg.Drain)
	for time.Now().Before(deadline) && m.received() < m.sent() {
		time.Sleep(10 * time.Millisecond) // polling a counter, not synchronising
	}
	for _, c := range conns {
		_ = c.Close()
	}
	readers.Wait()
	switch {
	case meter == nil:
		res.RelayErr = "the relay does not report residence"
	default:
		var err error
		select {
		case err = <-resetErr:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil {
			res.Relay, err = meter.Residence(ctx)
		}
		if err != nil {
			res.RelayErr = err.Error()
		}
	}

	for d := range 2 {
		res.Sent[d] = m.sentDir[d].Load()
		res.Received[d] = m.recvDir[d].Load()
	}
	res.Misrouted = m.misrouted.Load()
	res.Measured = m.delay.n.Load()
	res.MinTransit = time.Duration(m.delay.min.Load())
	if res.Measured > 0 {
		res.AddedP50 = m.delay.quantile(0.50) - res.MinTransit
		res.AddedP99 = m.delay.quantile(0.99) - res.MinTransit
		res.AddedMax = time.Duration(m.delay.max.Load()) - res.MinTransit
	}
	res.SendLateP99 = m.late.quantile(0.99)
	res.TargetCPU, res.SelfCPU, res.OtherCPU, res.StealCPU = cpu.percent()
	if cpu.err != nil {
		res.TargetCPUErr = cpu.err.Error()
	}
	return res, nil
}

func newEndpoint(cfg Config, k int, conns []*net.UDPConn) *endpoint {
	sock := k % len(conns)
	port := conns[sock].LocalAddr().(*net.UDPAddr).AddrPort().Port()
	ip := endpointIP(k)
	stream := uint32(k)
	e := &endpoint{sock: sock, addr: netip.AddrPortFrom(ip, port), oob: sourceOOB(ip), stream: stream,
		pkt: make([]byte, headerLen+cfg.PayloadSize), seq: uint16(stream * 7919)}
	e.pkt[0] = 0x80 // V=2, PT 0 (PCMU)
	binary.BigEndian.PutUint32(e.pkt[8:], 0x10000+stream)
	binary.BigEndian.PutUint32(e.pkt[headerLen:], magic)
	binary.BigEndian.PutUint32(e.pkt[headerLen+4:], stream)
	for i := headerLen + payloadHeader; i < len(e.pkt); i++ {
		e.pkt[i] = 0xff // PCMU silence
	}
	return e
}

type meter struct {
	eps         []*endpoint
	measureFrom atomic.Int64 // unix ns: earlier packets are not in delay
	sentDir     [2]atomic.Uint64
	recvDir     [2]atomic.Uint64
	misrouted   atomic.Uint64
	delay, late *hist
}

func (m *meter) sent() uint64     { return m.sentDir[0].Load() + m.sentDir[1].Load() }
func (m *meter) received() uint64 { return m.recvDir[0].Load() + m.recvDir[1].Load() }

// minPause is the shortest sleep of the sender: each wake-up costs a
// nanosleep and a sendmmsg per socket, and waking every 20 µs (the packet
// spacing at 500 calls) would take more CPU than the sending. At most a
// dozen packets at 500 calls leave together.
const minPause = 200 * time.Microsecond

// send paces every endpoint at cfg.Rate from start to end, the streams'
// phases spread evenly over the packet interval. It sleeps until the next
// due time, then sends everything due in batches per socket; each packet
// carries the time its batch left. It runs on its own thread and sleeps
// with nanosleep (see pause): time.Sleep wakes a millisecond late or more
// with one P, and every wake-up would then send a burst of 50 packets or
// more (at 500 calls), which the relay must queue; calls from real phones
// arrive spread out.
func (m *meter) send(ctx context.Context, cfg Config, pcs []*ipv4.PacketConn, start, end time.Time) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	interval := time.Second / time.Duration(cfg.Rate)
	n := len(m.eps)
	phase := func(k int) time.Duration { return interval * time.Duration(k) / time.Duration(n) }
	batches := make([][]ipv4.Message, len(pcs))
	owners := make([][]*endpoint, len(pcs))
	for i := range batches {
		batches[i] = make([]ipv4.Message, 0, batch)
		owners[i] = make([]*endpoint, 0, batch)
	}
	flush := func(i int) error {
		now := time.Now()
		for _, e := range owners[i] {
			binary.BigEndian.PutUint64(e.pkt[headerLen+8:], uint64(now.UnixNano()))
		}
		for msgs := batches[i]; len(msgs) > 0; {
			sent, err := pcs[i].WriteBatch(msgs, 0)
			if err != nil {
				return fmt.Errorf("send batch: %w", err)
			}
			msgs = msgs[sent:]
		}
		for _, e := range owners[i] {
			e.seq++
			e.ts += uint32(cfg.PayloadSize)
			m.sentDir[e.stream&1].Add(1)
		}
		batches[i], owners[i] = batches[i][:0], owners[i][:0]
		return nil
	}
	round, k, samples := 0, 0, 0
	for {
		due := start.Add(time.Duration(round)*interval + phase(k))
		if !due.Before(end) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			for i := range batches {
				if err := flush(i); err != nil {
					return err
				}
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("load stopped: %w", err)
			}
			pause(max(wait, minPause))
		}
		e := m.eps[k]
		binary.BigEndian.PutUint16(e.pkt[2:], e.seq)
		binary.BigEndian.PutUint32(e.pkt[4:], e.ts)
		i := e.sock
		batches[i] = append(batches[i], ipv4.Message{Buffers: [][]byte{e.pkt}, OOB: e.oob, Addr: e.sendTo})
		owners[i] = append(owners[i], e)
		if len(batches[i]) == batch {
			if err := flush(i); err != nil {
				return err
			}
		}
		if samples++; samples%16 == 0 {
			m.late.add(time.Since(due))
		}
		if k++; k == n {
			k = 0
			round++
		}
	}
	for i := range batches {
		if err := flush(i); err != nil {
			return err
		}
	}
	return nil
}

// receive reads one shared socket until it closes. It does not wait in
// the netpoller: it drains the socket, then sleeps a couple of
// milliseconds, so the relay's sends find no reader to wake (costly on a
// VM) and the kernel's arrival stamps keep the timing exact.
func (m *meter) receive(pc *ipv4.PacketConn) {
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 2048)}, OOB: make([]byte, oobSize)}
	}
	for {
		n, err := pc.ReadBatch(msgs, dontWait)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil || n == 0:
			time.Sleep(receivePoll)
		}
		for i := range n {
			m.take(&msgs[i])
		}
	}
}

// receivePoll is how long an empty socket rests; its buffer (several MB,
// up to net.core.rmem_max) holds far more than that much traffic.
const receivePoll = 2 * time.Millisecond

// take accounts for one received datagram.
func (m *meter) take(msg *ipv4.Message) {
	at, dst, ok := parseOOB(msg.OOB[:msg.NN])
	k := endpointIndex(dst, len(m.eps))
	p := msg.Buffers[0][:msg.N]
	if !ok || k < 0 || len(p) < headerLen+payloadHeader || binary.BigEndian.Uint32(p[headerLen:]) != magic ||
		binary.BigEndian.Uint32(p[headerLen+4:]) != m.eps[k].stream^1 {
		m.misrouted.Add(1)
		return
	}
	m.recvDir[(m.eps[k].stream^1)&1].Add(1)
	sentAt := int64(binary.BigEndian.Uint64(p[headerLen+8:]))
	if sentAt >= m.measureFrom.Load() {
		m.delay.add(time.Duration(at.UnixNano() - sentAt))
	}
}

// cpuMeter measures CPU time of the target and of this process over the
// measured window.
type cpuMeter struct {
	mu               sync.Mutex
	pid              int
	t0, t1           time.Time
	target0, target1 time.Duration
	self0, self1     time.Duration
	sys0, sys1       time.Duration
	steal0, steal1   time.Duration
	marked, stopped  bool
	err              error
}

func startCPU(pid int) *cpuMeter { return &cpuMeter{pid: pid} }

func (c *cpuMeter) read() (target, self, sys, steal time.Duration) {
	if c.pid > 0 {
		var err error
		if target, err = cpuTime(c.pid); err != nil && c.err == nil {
			c.err = err
		}
	}
	self, err := cpuTime(os.Getpid())
	if err != nil && c.err == nil {
		c.err = err
	}
	sys, steal, err = systemBusy()
	if err != nil && c.err == nil {
		c.err = err
	}
	return target, self, sys, steal
}

func (c *cpuMeter) mark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target0, c.self0, c.sys0, c.steal0 = c.read()
	c.t0, c.marked = time.Now(), true
}

func (c *cpuMeter) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target1, c.self1, c.sys1, c.steal1 = c.read()
	c.t1, c.stopped = time.Now(), true
}

// percent returns the CPU of the target, this process and the rest of
// the machine, and the CPU the hypervisor stole, over the window, in
// percent of one core.
func (c *cpuMeter) percent() (target, self, other, steal float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := c.t1.Sub(c.t0)
	if !c.marked || !c.stopped || wall <= 0 {
		return 0, 0, 0, 0
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	self = pct(c.self1 - c.self0)
	if c.pid > 0 && c.pid != os.Getpid() {
		target = pct(c.target1 - c.target0)
	} else if c.pid > 0 {
		target = self
	}
	other = pct(c.sys1-c.sys0) - self
	if c.pid != os.Getpid() {
		other -= target
	}
	return target, self, max(other, 0), pct(c.steal1 - c.steal0)
}
