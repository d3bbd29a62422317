package embed

import "github.com/outpost-voice/outpost/appliance/web/lockout"

// Sign-in lockout (package lockout): MaxFailures failed sign-ins within
// FailureWindow lock the username or address out for LockoutFor.
const (
	MaxFailures   = lockout.MaxFailures
	FailureWindow = lockout.FailureWindow
	LockoutFor    = lockout.LockoutFor
)
