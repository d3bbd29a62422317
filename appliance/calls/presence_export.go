package calls

import (
	"context"
	"errors"

	"github.com/outpost-voice/outpost/appliance/store"
)

// OnCallUser reports whether the user with this SIP username is a party
// of a connected call (or a conference) on this node: what the registrar's
// failback asks before it disturbs a phone (registrar.Options.InCall).
// When the user cannot be looked up for another reason than not being in
// the account, it answers true: better to leave a phone alone than to
// send it away mid-call.
func (b *B2BUA) OnCallUser(username string) bool {
	u, err := b.userByName(context.Background(), username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		return true
	}
	return b.onCall(u.ID)
}
