//go:build !linux

package conference

import (
	"net"
	"net/netip"
	"sync"
)

// Outside Linux (development machines) each participant's socket has a
// goroutine that blocks reading it and queues what its peer sent for the
// mixing goroutine: simpler and slower than Linux's raw reads. The socket
// is not connected: the reader keeps what comes from the peer, and sends
// go to it.
type sock struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu   sync.Mutex
	peer netip.AddrPort
	q    [16]struct {
		n int
		b [512]byte
	}
	head, n int
}

func (s *sock) open(ip netip.Addr, peer netip.AddrPort) error {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return err
	}
	s.conn, s.peer = conn, netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	s.wg.Add(1)
	go s.read()
	return nil
}

func (s *sock) read() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.mu.Lock()
		if from == s.peer && s.n < len(s.q) && n <= len(s.q[0].b) { // larger is neither G.711 nor DTMF
			e := &s.q[(s.head+s.n)%len(s.q)]
			e.n = n
			copy(e.b[:], buf[:n])
			s.n++
		}
		s.mu.Unlock()
	}
}

func (s *sock) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// recv takes one queued datagram into b; more is false when none is
// queued.
func (s *sock) recv(b []byte) (n int, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return 0, false
	}
	e := &s.q[s.head]
	s.head = (s.head + 1) % len(s.q)
	s.n--
	return copy(b, e.b[:e.n]), true
}

func (s *sock) send(b []byte) error {
	s.mu.Lock()
	peer := s.peer
	s.mu.Unlock()
	_, err := s.conn.WriteToUDPAddrPort(b, peer)
	return err
}

func (s *sock) setPeer(peer netip.AddrPort) error {
	s.mu.Lock()
	s.peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	s.mu.Unlock()
	return nil
}

func (s *sock) close() {
	_ = s.conn.Close()
	s.wg.Wait()
}
