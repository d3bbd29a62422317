package store

import (
	"errors"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// IsFull reports whether err is the disk (or the database's file system)
// being full: SQLite's SQLITE_FULL, or ENOSPC. Nothing was written; the
// same write may succeed once space returns.
func IsFull(err error) bool {
	var serr sqlite3.Error
	if errors.As(err, &serr) && serr.Code == sqlite3.ErrFull {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}
