package lockout

import (
	"testing"
	"time"
)

func TestLockoutWindowForgetsOldFailures(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(func() time.Time { return now })
	for range MaxFailures - 1 {
		l.Fail("user:a")
	}
	now = now.Add(FailureWindow)
	if l.Fail("user:a") {
		t.Error("failures older than the window counted")
	}
	if locked, _ := l.Locked("user:a"); locked {
		t.Error("locked out")
	}
}
