package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the file in a data directory that a node holds locked while
// it runs (LockDir).
const LockFile = "outpost.lock"

// ErrLocked says another process holds a data directory: a node is
// running on it.
var ErrLocked = errors.New("another outpost process holds this data directory (a node is running on it)")

// LockDir takes the exclusive lock of data directory dir: an advisory
// flock on dir/outpost.lock, released by unlock or when the process ends
// (a crash cannot leave it held). A node holds it while it runs, so a
// second node, or `outpost migrate`, on the same directory is refused with
// ErrLocked instead of corrupting the store under the first.
func LockDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, LockFile)
	// Read-only and world-readable: whoever makes it (root running
	// `outpost migrate`), the node's own user can still open and lock it.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return f.Close, nil // closing the file releases the lock
}
