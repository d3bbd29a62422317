//go:build !linux

package setup

import "errors"

// isTerminal is false off Linux (the appliance runs Linux): secrets are
// read like other lines.
func isTerminal(int) bool { return false }

func echoOff(int) (func(), error) { return nil, errors.New("no terminal control on this system") }
