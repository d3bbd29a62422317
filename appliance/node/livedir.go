package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/registrar"
	"github.com/outpost-voice/outpost/appliance/store"
)

// liveDirectory is what the B2BUA reads: the store, with this node's own
// registrations taken from the registrar's memory as well. The registrar
// answers a REGISTER before its group commit writes local_bindings (about
// 20 ms later; not at all while the disk is full, when it keeps retrying),
// so the store alone would not find a phone this node has just accepted:
// a call to it would get 480 for that while, or for as long as the disk
// stays full.
type liveDirectory struct {
	*store.Reader
	loc *registrar.Location
}

// Bindings is the store's live bindings of aor merged with the ones this
// node holds in memory, one per ID, the newer winning (memory on a tie),
// sorted by ID as the store sorts them. A store that cannot be read
// leaves the ones in memory.
func (d liveDirectory) Bindings(ctx context.Context, aor string, now time.Time) ([]store.Binding, error) {
	bs, err := d.Reader.Bindings(ctx, aor, now)
	mem := d.loc.Lookup(aor, now)
	if err != nil {
		if len(mem) > 0 {
			return sortedBindings(mem), nil
		}
		return nil, err
	}
	for _, m := range mem {
		i := slices.IndexFunc(bs, func(b store.Binding) bool { return b.ID == m.ID })
		switch {
		case i < 0:
			bs = append(bs, m)
		case !m.UpdatedAt.Before(bs[i].UpdatedAt):
			bs[i] = m
		}
	}
	return sortedBindings(bs), nil
}

func sortedBindings(bs []store.Binding) []store.Binding {
	slices.SortFunc(bs, func(a, b store.Binding) int { return strings.Compare(a.ID, b.ID) })
	return bs
}

// The B2BUA asks its directory for these too; liveDirectory passes them
// to the store.
var (
	_ calls.Directory         = liveDirectory{}
	_ calls.GroupDirectory    = liveDirectory{}
	_ calls.OverrideDirectory = liveDirectory{}
	_ calls.CalloutDirectory  = liveDirectory{}
	_ calls.TrunkDirectory    = liveDirectory{}
)
