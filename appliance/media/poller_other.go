//go:build !linux

package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Outside Linux (development machines) each socket has a goroutine that
// blocks reading it: simpler and slower than the epoll poller.

type udpSocket struct {
	conn *net.UDPConn
}

// listenUDP binds a socket; stamp is ignored (Config.Residence is Linux
// only).
func listenUDP(ip netip.Addr, port, sockBuf int, _ bool) (udpSocket, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	if err != nil {
		return udpSocket{}, fmt.Errorf("bind %s port %d: %w", ip, port, err)
	}
	if sockBuf > 0 {
		if err := errors.Join(c.SetReadBuffer(sockBuf), c.SetWriteBuffer(sockBuf)); err != nil {
			_ = c.Close()
			return udpSocket{}, fmt.Errorf("socket buffers on port %d: %w", port, err)
		}
	}
	return udpSocket{conn: c}, nil
}

func (s udpSocket) close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (s udpSocket) send(b []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(b, to)
	return err
}

type poller struct {
	mu      sync.Mutex
	readers map[*endpoint]chan struct{}
}

func newPoller(func(time.Duration)) (*poller, error) {
	return &poller{readers: make(map[*endpoint]chan struct{})}, nil
}

func (p *poller) attach(eps []*endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range eps {
		done := make(chan struct{})
		p.readers[e] = done
		go func() {
			defer close(done)
			read(e)
		}()
	}
	return nil
}

func read(e *endpoint) {
	sc := newScratch()
	errs := 0
	for {
		n, src, err := e.sock.conn.ReadFromUDPAddrPort(sc.buf)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			if errs++; errs == maxReadErrors {
				e.side.s.log.Error("media socket failing, no longer read", "side", e.side.name,
					"port", e.local.Port(), "err", err)
				return
			}
		case n >= len(sc.buf):
			e.drops.invalid.Add(1)
		default:
			errs = 0
			e.handle(&sc, sc.buf[:n], src)
		}
	}
}

// detach closes the sockets' reads and waits for their goroutines.
func (p *poller) detach(eps []*endpoint) {
	for _, e := range eps {
		_ = e.sock.conn.Close()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range eps {
		if done, ok := p.readers[e]; ok {
			<-done
			delete(p.readers, e)
		}
	}
}

func (p *poller) close() error { return nil }
