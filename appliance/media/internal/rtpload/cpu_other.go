//go:build !linux

package rtpload

import (
	"errors"
	"time"
)

func cpuTime(int) (time.Duration, error) {
	return 0, errors.New("CPU time is read from /proc, Linux only")
}

func systemBusy() (busy, steal time.Duration, err error) {
	return 0, 0, errors.New("system CPU time is read from /proc, Linux only")
}
