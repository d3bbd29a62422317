package media

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// On Linux the relay drives its sockets itself: each poller owns an epoll
// set (level-triggered) holding the sockets of some sessions, and one
// goroutine that, when Go's netpoller says the set is ready, takes every
// ready socket in turn, reads one datagram and forwards it, with raw
// non-blocking system calls. A packet costs a recvfrom and a sendto; the
// goroutine wakes once per burst, not once per packet, and no thread is
// woken per system call. On the project's 2-core VMs this cut the relay's
// CPU by a quarter to a third against one goroutine per socket (whose cost
// was mostly scheduler wake-ups and context switches: perf showed them
// above the network stack) at 250 and 500 relayed calls.

// udpSocket is a non-blocking UDP socket.
type udpSocket struct {
	fd int
	v6 bool
}

// listenUDP binds a non-blocking socket; stamp turns on the kernel's
// arrival stamps (SO_TIMESTAMPNS), read by recvStamped.
func listenUDP(ip netip.Addr, port, sockBuf int, stamp bool) (udpSocket, error) {
	family := syscall.AF_INET
	if ip.Is6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return udpSocket{}, fmt.Errorf("UDP socket: %w", err)
	}
	s := udpSocket{fd: fd, v6: ip.Is6()}
	var sa syscall.Sockaddr
	if s.v6 {
		err = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
		sa = &syscall.SockaddrInet6{Port: port, Addr: ip.As16()}
	} else {
		sa = &syscall.SockaddrInet4{Port: port, Addr: ip.As4()}
	}
	if err == nil {
		err = syscall.Bind(fd, sa)
	}
	if err == nil && sockBuf > 0 {
		err = errors.Join(
			syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, sockBuf),
			syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sockBuf))
	}
	if err == nil && stamp {
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}
	if err != nil {
		_ = syscall.Close(fd)
		return udpSocket{}, fmt.Errorf("bind %s port %d: %w", ip, port, err)
	}
	return s, nil
}

func (s udpSocket) close() error { return syscall.Close(s.fd) }

// recv reads one waiting datagram into b. n may exceed len(b): the
// datagram was cut (MSG_TRUNC). ok is false when nothing is waiting.
func (s udpSocket) recv(b []byte) (n int, from netip.AddrPort, ok bool, err error) {
	var rsa syscall.RawSockaddrAny
	l := uint32(syscall.SizeofSockaddrAny)
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd),
			uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT|syscall.MSG_TRUNC,
			uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, netip.AddrPort{}, false, nil
		default:
			return 0, netip.AddrPort{}, false, e
		}
		return int(r), sockaddrPort(&rsa), true, nil
	}
}

func sockaddrPort(rsa *syscall.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		a := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(p[0])<<8|uint16(p[1]))
	case syscall.AF_INET6:
		a := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&a.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// stampedRead is the recvmsg state of a poller that reads arrival stamps
// (Config.Residence), kept across calls so that a read allocates nothing.
type stampedRead struct {
	msg syscall.Msghdr
	iov syscall.Iovec
	rsa syscall.RawSockaddrAny
	oob [64]byte
}

// recvStamped is recv that also returns the kernel's arrival stamp (Unix
// ns; zero if the datagram had none).
func (s udpSocket) recvStamped(b []byte, st *stampedRead) (n int, from netip.AddrPort, at int64, ok bool, err error) {
	st.iov.Base, st.iov.Len = &b[0], uint64(len(b))
	st.msg.Name = (*byte)(unsafe.Pointer(&st.rsa))
	st.msg.Namelen = syscall.SizeofSockaddrAny
	st.msg.Iov, st.msg.Iovlen = &st.iov, 1
	st.msg.Control, st.msg.Controllen = &st.oob[0], uint64(len(st.oob))
	st.msg.Flags = 0
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(s.fd),
			uintptr(unsafe.Pointer(&st.msg)), syscall.MSG_DONTWAIT|syscall.MSG_TRUNC)
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, netip.AddrPort{}, 0, false, nil
		default:
			return 0, netip.AddrPort{}, 0, false, e
		}
		return int(r), sockaddrPort(&st.rsa), arrival(st.oob[:st.msg.Controllen]), true, nil
	}
}

// arrival finds SCM_TIMESTAMPNS in control messages.
func arrival(oob []byte) int64 {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < hdr || h.Len > uint64(len(oob)) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && h.Len >= hdr+16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[hdr]))
			return ts.Nano()
		}
		oob = oob[min((h.Len+7)&^7, uint64(len(oob))):]
	}
	return 0
}

// send writes b to to without blocking; a full send buffer is an error.
func (s udpSocket) send(b []byte, to netip.AddrPort) error {
	var (
		ptr unsafe.Pointer
		l   uintptr
		v4  syscall.RawSockaddrInet4
		v6  syscall.RawSockaddrInet6
	)
	if !s.v6 {
		v4.Family = syscall.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&v4.Port))
		p[0], p[1] = byte(to.Port()>>8), byte(to.Port())
		v4.Addr = to.Addr().Unmap().As4()
		ptr, l = unsafe.Pointer(&v4), syscall.SizeofSockaddrInet4
	} else {
		v6.Family = syscall.AF_INET6
		p := (*[2]byte)(unsafe.Pointer(&v6.Port))
		p[0], p[1] = byte(to.Port()>>8), byte(to.Port())
		v6.Addr = to.Addr().As16()
		ptr, l = unsafe.Pointer(&v6), syscall.SizeofSockaddrInet6
	}
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(s.fd),
			uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT, uintptr(ptr), l)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// poller relays for the sessions attached to it.
type poller struct {
	epfd int
	file *os.File // epfd, so that Go's netpoller tells when it is ready
	done chan struct{}

	// mu is held while a burst is forwarded, so that detach knows no
	// socket it removes is in use once it holds mu.
	mu     sync.Mutex
	slots  []*endpoint
	gens   []int32
	free   []int32
	sc     scratch
	events [256]syscall.EpollEvent
	// stamped is set when Config.Residence wants arrival stamps.
	stamped *stampedRead
}

func newPoller(residence func(time.Duration)) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("epoll non-blocking: %w", err)
	}
	p := &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "media-epoll"), done: make(chan struct{}),
		sc: newScratch()}
	if residence != nil {
		p.stamped = new(stampedRead)
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		_ = p.file.Close()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	go p.run(rc)
	return p, nil
}

func (p *poller) run(rc syscall.RawConn) {
	defer close(p.done)
	_ = rc.Read(func(uintptr) bool {
		for {
			n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.epfd),
				uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
			if e != 0 || n == 0 {
				return false // nothing ready: park until the set is
			}
			p.mu.Lock()
			for i := range int(n) {
				p.dispatch(&p.events[i])
			}
			p.mu.Unlock()
		}
	})
}

// dispatch forwards one datagram from the socket an event names.
func (p *poller) dispatch(ev *syscall.EpollEvent) {
	slot := int(ev.Fd)
	if slot < 0 || slot >= len(p.slots) || p.gens[slot] != ev.Pad || p.slots[slot] == nil {
		return // detached since epoll reported it
	}
	e := p.slots[slot]
	var (
		n    int
		from netip.AddrPort
		ok   bool
		err  error
	)
	if p.stamped != nil {
		n, from, p.sc.rxAt, ok, err = e.sock.recvStamped(p.sc.buf, p.stamped)
	} else {
		n, from, ok, err = e.sock.recv(p.sc.buf)
	}
	switch {
	case err != nil:
		if e.readErrs++; e.readErrs == maxReadErrors {
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, e.sock.fd, nil)
			e.side.s.log.Error("media socket failing, no longer read", "side", e.side.name,
				"port", e.local.Port(), "err", err)
		}
	case !ok:
	case n >= len(p.sc.buf):
		e.drops.invalid.Add(1) // cut: larger than any RTP we relay
	default:
		e.readErrs = 0
		e.handle(&p.sc, p.sc.buf[:n], from)
	}
}

// attach starts reading eps.
func (p *poller) attach(eps []*endpoint) error {
	p.mu.Lock()
	for _, e := range eps {
		var slot int32
		if n := len(p.free); n > 0 {
			slot, p.free = p.free[n-1], p.free[:n-1]
		} else {
			slot = int32(len(p.slots))
			p.slots, p.gens = append(p.slots, nil), append(p.gens, 0)
		}
		p.gens[slot]++
		p.slots[slot], e.slot, e.gen = e, slot, p.gens[slot]
	}
	p.mu.Unlock()
	for i, e := range eps {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: e.slot, Pad: e.gen}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, e.sock.fd, &ev); err != nil {
			p.detach(eps[:i])
			p.release(eps[i:])
			return fmt.Errorf("epoll add: %w", err)
		}
	}
	return nil
}

// detach stops reading eps; when it returns no goroutine uses their
// sockets, which the caller then closes.
func (p *poller) detach(eps []*endpoint) {
	for _, e := range eps {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, e.sock.fd, nil)
	}
	p.release(eps)
}

func (p *poller) release(eps []*endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range eps {
		if p.slots[e.slot] == e {
			p.slots[e.slot] = nil
			p.free = append(p.free, e.slot)
		}
	}
}

// close stops the poller; its sessions must be detached first.
func (p *poller) close() error {
	err := p.file.Close()
	<-p.done
	return err
}
