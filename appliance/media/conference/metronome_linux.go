package conference

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// On Linux the clock sleeps on a timerfd (CLOCK_MONOTONIC, time.Now's
// monotonic clock) that its goroutine waits for in the runtime's
// netpoller: the kernel wakes it to the microsecond, where a runtime
// timer in a process otherwise idle waits in the netpoller by whole
// milliseconds and wakes up to one late. Arming it and reading it are raw
// system calls on buffers made once: nothing allocates.
type metronome struct {
	f      *os.File // owns fd
	fd     uintptr
	rc     syscall.RawConn
	spec   struct{ interval, value syscall.Timespec } // struct itimerspec
	buf    [8]byte
	readFn func(fd uintptr) bool
	timer  *sleeper // when no timerfd could be made
}

const clockMonotonic = 1 // CLOCK_MONOTONIC

func newMetronome() *metronome {
	fd, _, e := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		return &metronome{timer: newSleeper()}
	}
	m := &metronome{f: os.NewFile(fd, "conference-clock"), fd: fd}
	rc, err := m.f.SyscallConn()
	if err != nil {
		_ = m.f.Close()
		return &metronome{timer: newSleeper()}
	}
	m.rc = rc
	m.readFn = func(fd uintptr) bool {
		for {
			_, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&m.buf[0])), uintptr(len(m.buf)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // not yet: wait in the netpoller
			}
			return true
		}
	}
	return m
}

// sleep returns d from now (at once if d <= 0).
func (m *metronome) sleep(d time.Duration) {
	if m.timer != nil {
		m.timer.sleep(d)
		return
	}
	if d <= 0 {
		return
	}
	m.spec.value = syscall.NsecToTimespec(int64(d))
	if _, _, e := syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, m.fd, 0, uintptr(unsafe.Pointer(&m.spec)), 0, 0, 0); e != 0 {
		m.timer = newSleeper() // cannot happen with a valid spec; keep time anyway
		m.timer.sleep(d)
		return
	}
	_ = m.rc.Read(m.readFn)
}

func (m *metronome) close() {
	if m.f != nil {
		_ = m.f.Close()
	}
	if m.timer != nil {
		m.timer.close()
	}
}
