package store

import (
	"errors"
	"testing"
)

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second lock of a held data dir: %v, want ErrLocked", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := LockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = again()
	if _, err := LockDir(t.TempDir() + "/missing"); err == nil || errors.Is(err, ErrLocked) {
		t.Errorf("a missing data dir: %v, want an error other than ErrLocked", err)
	}
}
