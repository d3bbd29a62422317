package player_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"
)

// rawUDP is a non-blocking loopback UDP socket driven with raw system
// calls, as the appliance's relay drives its sockets: a send never gives
// up the goroutine's P, so the pacing goroutine is not rescheduled behind
// other goroutines after each packet.
type rawUDP struct {
	fd   int
	addr netip.AddrPort
}

func listenRaw() (rawUDP, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return rawUDP{}, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return rawUDP{}, fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return rawUDP{}, fmt.Errorf("getsockname: %w", err)
	}
	in4 := sa.(*syscall.SockaddrInet4)
	return rawUDP{fd: fd, addr: netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))}, nil
}

func (r rawUDP) close() { syscall.Close(r.fd) }

func (r rawUDP) sendTo(b []byte, to netip.AddrPort) error {
	var sa syscall.RawSockaddrInet4
	sa.Family = syscall.AF_INET
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], to.Port())
	sa.Addr = to.Addr().As4()
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(r.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet4)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return e
	}
}

var errAgain = errors.New("no datagram waiting")

func (r rawUDP) recv(b []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(r.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, errAgain
		}
		return 0, e
	}
}

// rawWriter is a player.PacketWriter sending from sock to to.
type rawWriter struct {
	sock rawUDP
	to   netip.AddrPort
}

func (w rawWriter) WritePacket(b []byte) error { return w.sock.sendTo(b, w.to) }
