package rtpload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// The generator's endpoints share a few sockets bound to the wildcard
// address: endpoint k is 127.64.0.0+k+1 on its socket's port. It sends
// with IP_PKTINFO naming its address as the source and learns which
// endpoint a datagram is for from IP_PKTINFO on receipt, so the whole load
// moves through sendmmsg/recvmmsg on a handful of sockets and the
// generator leaves the CPU to the relay. The kernel stamps every arrival
// (SO_TIMESTAMPNS).

var endpointBase = netip.MustParseAddr("127.64.0.0").As4()

func endpointIP(k int) netip.Addr {
	v := binary.BigEndian.Uint32(endpointBase[:]) + uint32(k) + 1
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// endpointIndex is the inverse of endpointIP; -1 when ip is not one.
func endpointIndex(ip [4]byte, n int) int {
	k := int(binary.BigEndian.Uint32(ip[:])) - int(binary.BigEndian.Uint32(endpointBase[:])) - 1
	if k < 0 || k >= n {
		return -1
	}
	return k
}

// listenShared binds a wildcard UDP socket with arrival stamps and
// destination addresses turned on, and a large receive buffer.
func listenShared() (*net.UDPConn, *ipv4.PacketConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, nil, fmt.Errorf("bind load socket: %w", err)
	}
	_ = c.SetReadBuffer(8 << 20) // capped by net.core.rmem_max
	_ = c.SetWriteBuffer(8 << 20)
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("raw load socket: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1),
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1))
	}); err != nil {
		serr = err
	}
	if serr != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("set SO_TIMESTAMPNS and IP_PKTINFO: %w", serr)
	}
	return c, ipv4.NewPacketConn(c), nil
}

const (
	cmsgHdr = 16 // struct cmsghdr on 64-bit Linux: len, level, type
	oobSize = 128
)

// sourceOOB is the control message that sends a datagram from ip.
func sourceOOB(ip netip.Addr) []byte {
	const pktinfo = 12 // struct in_pktinfo: ifindex, spec_dst, addr
	b := make([]byte, cmsgHdr+16)
	binary.NativeEndian.PutUint64(b[0:], cmsgHdr+pktinfo)
	binary.NativeEndian.PutUint32(b[8:], syscall.IPPROTO_IP)
	binary.NativeEndian.PutUint32(b[12:], syscall.IP_PKTINFO)
	a := ip.As4()
	copy(b[cmsgHdr+4:], a[:]) // ipi_spec_dst: the source to use
	return b
}

// parseOOB finds the arrival time and the destination address of a
// received datagram.
func parseOOB(oob []byte) (at time.Time, dst [4]byte, ok bool) {
	var haveTime, haveDst bool
	for len(oob) >= cmsgHdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < cmsgHdr || l > len(oob) {
			break
		}
		data := oob[cmsgHdr:l]
		switch {
		case level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && len(data) >= 16:
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			at, haveTime = time.Unix(sec, nsec), true
		case level == syscall.IPPROTO_IP && typ == syscall.IP_PKTINFO && len(data) >= 12:
			copy(dst[:], data[8:12]) // ipi_addr: the header's destination
			haveDst = true
		}
		oob = oob[min((l+7)&^7, len(oob)):]
	}
	if !haveTime {
		at = time.Now()
	}
	return at, dst, haveDst
}

const dontWait = syscall.MSG_DONTWAIT

// pause sleeps for d with nanosleep, on the caller's thread (locked):
// about 0.1-0.2 ms late on the project's VMs, where time.Sleep, which
// waits in the netpoller with millisecond timeouts, is a millisecond late.
func pause(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); !errors.Is(err, syscall.EINTR) {
			return
		}
		ts = rem
	}
}
