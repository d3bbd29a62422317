package node

import (
	"net"
	"syscall"
	"testing"
)

// The SIP UDP socket gets large buffers, past net.core.rmem_max when the
// process is allowed to (these tests run as root, as the appliance does).
func TestGrowUDPBuffers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := growUDPBuffers(pc, udpBuffer); err != nil {
		t.Fatal(err)
	}
	raw, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rcv, snd int
	if err := raw.Control(func(fd uintptr) {
		rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		t.Fatal(err)
	}
	// The kernel reports twice what was set (its bookkeeping overhead).
	if rcv < udpBuffer || snd < udpBuffer {
		t.Errorf("buffers rcv %d snd %d, want at least %d each", rcv, snd, udpBuffer)
	}
}
