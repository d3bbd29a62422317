package conference

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// On Linux a participant's socket is connected to its peer and has no
// goroutine: the mixing goroutine drains it with raw non-blocking reads at
// the start of every frame and writes the frame's packet with a raw
// non-blocking send (the ivr package's reason: no scheduler hand-off per
// packet). The callbacks handed to RawConn are made once, so a read or a
// write allocates nothing.
type sock struct {
	conn *net.UDPConn
	raw  syscall.RawConn

	rbuf    []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wbuf    []byte
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

func (s *sock) open(ip netip.Addr, peer netip.AddrPort) error {
	conn, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)), net.UDPAddrFromAddrPort(peer))
	if err != nil {
		return err
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		_ = conn.Close()
		return err
	}
	s.conn, s.raw = conn, raw
	s.readFn = func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)),
				syscall.MSG_DONTWAIT|syscall.MSG_TRUNC, 0, 0)
			if e != syscall.EINTR {
				s.rn, s.rerr = int(r), e
				return true
			}
		}
	}
	s.writeFn = func(fd uintptr) bool {
		for {
			_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.wbuf[0])), uintptr(len(s.wbuf)),
				syscall.MSG_DONTWAIT, 0, 0)
			if e != syscall.EINTR {
				s.werr = e
				return true
			}
		}
	}
	return nil
}

func (s *sock) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// recv reads one waiting datagram into b (len(b) > 0). more is false when
// none is waiting or the socket is closed. n > len(b): the datagram was
// cut. A failed read (an ICMP error queued on the socket) returns n = -1.
func (s *sock) recv(b []byte) (n int, more bool) {
	s.rbuf = b
	if err := s.raw.Read(s.readFn); err != nil {
		return 0, false
	}
	switch s.rerr {
	case 0:
		return s.rn, true
	case syscall.EAGAIN:
		return 0, false
	}
	return -1, true
}

// send writes one packet to the peer; a full socket buffer drops it.
func (s *sock) send(b []byte) error {
	s.wbuf = b
	if err := s.raw.Write(s.writeFn); err != nil {
		return err
	}
	if s.werr != 0 {
		return s.werr
	}
	return nil
}

// setPeer connects the socket to peer instead.
func (s *sock) setPeer(peer netip.AddrPort) error {
	var sa syscall.Sockaddr
	local := s.addr().Addr()
	switch a := peer.Addr().Unmap(); {
	case local.Is4() && a.Is4():
		sa = &syscall.SockaddrInet4{Port: int(peer.Port()), Addr: a.As4()}
	case local.Is6() && !local.Is4In6():
		sa = &syscall.SockaddrInet6{Port: int(peer.Port()), Addr: peer.Addr().As16()}
	default:
		return fmt.Errorf("peer %s is not of the socket's address family (%s)", peer, local)
	}
	var cerr error
	if err := s.raw.Control(func(fd uintptr) { cerr = syscall.Connect(int(fd), sa) }); err != nil {
		return err
	}
	return cerr
}

func (s *sock) close() { _ = s.conn.Close() }
