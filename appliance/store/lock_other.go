//go:build !unix

package store

import "os"

// flock does nothing where there is no flock: the node runs on Linux.
func flock(*os.File) error { return nil }
