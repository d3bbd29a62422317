package ivr

import (
	"syscall"
	"unsafe"
)

// send writes one packet with a raw non-blocking write on the connected
// socket: no scheduler hand-off in the player's pacing goroutine, which a
// blocking-style write would cost (a packet every 20 ms per call, for
// hundreds of calls, from one goroutine). A full socket buffer drops the
// packet (EAGAIN), as UDP would.
func (ep *Endpoint) send(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var errno syscall.Errno
	err := ep.raw.Write(func(fd uintptr) bool {
		for {
			_, _, errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
				syscall.MSG_DONTWAIT, 0, 0)
			if errno != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
