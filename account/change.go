package account

import (
	"errors"
	"fmt"
	"slices"
)

// Kinds of change: the snapshot's collections (keyed by id, numbers by
// number, admins by username, prompts by name) and its singletons.
const (
	KindSites   = "sites"
	KindUsers   = "users"
	KindSDGs    = "sdgs"
	KindNumbers = "numbers"
	KindTrunks  = "trunks"
	KindAdmins  = "admins"
	KindPrompts = "prompts" // an extension of the contract, keyed by name
	KindAccount = "account"
	KindCallout = "callout"
	KindEmbed   = "embed"
)

// Change is one edit of a snapshot, decoded: the object of a collection
// put (inserted, or replaced in place) or deleted, or a singleton set. It
// is the typed form of the sync protocol's op (cloudsync/protocol.Op).
//
// Value is, by Kind: Site, User, SDG, Number, Trunk, Admin or Prompt for a
// put (nil for a delete); Account, Callout or Embed for a set. For a put,
// the object's key (id; number; username; name) must be ID.
type Change struct {
	Kind   string
	ID     string // the object's key; "" for a singleton
	Delete bool
	Value  any
}

// ErrBadChange marks a change that does not fit the snapshot: an unknown
// kind, a value of the wrong type or with another key, a delete of an
// object the snapshot does not hold.
var ErrBadChange = errors.New("change does not apply")

// WithChanges returns a new snapshot: s with changes applied in order, as
// the sync protocol's Apply does to the document (a put replaces an
// existing object in place and appends a new one; a delete keeps the
// others' order; deleting the last prompt leaves none, nil, as decoding
// the encoded result would). s is not modified: the result shares the
// objects the changes leave alone. Revision is left as it is. An error wraps
// ErrBadChange and names the change; then the result is nil.
func (s *Snapshot) WithChanges(changes []Change) (*Snapshot, error) {
	out := *s
	copied := map[string]bool{} // collections already copied for out
	for i, c := range changes {
		if err := out.change(c, copied); err != nil {
			what := c.Kind
			if c.ID != "" {
				what += "/" + c.ID
			}
			return nil, fmt.Errorf("%w: change %d (%s): %w", ErrBadChange, i, what, err)
		}
	}
	out.normalize()
	return &out, nil
}

func (s *Snapshot) change(c Change, copied map[string]bool) error {
	switch c.Kind {
	case KindSites:
		return edit(&s.Sites, c, copied, func(v Site) string { return v.ID })
	case KindUsers:
		return edit(&s.Users, c, copied, func(v User) string { return v.ID })
	case KindSDGs:
		return edit(&s.SDGs, c, copied, func(v SDG) string { return v.ID })
	case KindNumbers:
		return edit(&s.Numbers, c, copied, func(v Number) string { return v.Number })
	case KindTrunks:
		return edit(&s.Trunks, c, copied, func(v Trunk) string { return v.ID })
	case KindAdmins:
		return edit(&s.Admins, c, copied, func(v Admin) string { return v.Username })
	case KindPrompts:
		return edit(&s.Prompts, c, copied, func(v Prompt) string { return v.Name })
	case KindAccount:
		return set(&s.Account, c)
	case KindCallout:
		return set(&s.Callout, c)
	case KindEmbed:
		return set(&s.Embed, c)
	}
	return fmt.Errorf("unknown kind %q", c.Kind)
}

// edit applies a put or delete to one collection, copying it first (once)
// so the snapshot it came from keeps its own.
func edit[T any](list *[]T, c Change, copied map[string]bool, key func(T) string) error {
	if c.ID == "" {
		return errors.New("no id")
	}
	at := slices.IndexFunc(*list, func(v T) bool { return key(v) == c.ID })
	if c.Delete {
		if c.Value != nil {
			return errors.New("a delete carries no value")
		}
		if at < 0 {
			return fmt.Errorf("no %s %q to delete", c.Kind, c.ID)
		}
		// A new slice, so the one shared with the old snapshot is untouched;
		// deleting the last object leaves [] (not null), as Apply does.
		out := make([]T, 0, len(*list)-1)
		out = append(out, (*list)[:at]...)
		*list = append(out, (*list)[at+1:]...)
		copied[c.Kind] = true
		return nil
	}
	v, ok := c.Value.(T)
	if !ok {
		var want T
		return fmt.Errorf("put wants a %T, not %T", want, c.Value)
	}
	if k := key(v); k != c.ID {
		return fmt.Errorf("the object's key is %q, not the change's id", k)
	}
	if !copied[c.Kind] {
		out := make([]T, len(*list), len(*list)+1)
		copy(out, *list)
		*list = out
		copied[c.Kind] = true
	}
	if at >= 0 {
		(*list)[at] = v
	} else {
		*list = append(*list, v)
	}
	return nil
}

// set replaces a singleton.
func set[T any](field *T, c Change) error {
	if c.ID != "" || c.Delete {
		return fmt.Errorf("%s is a singleton: it is set, with no id", c.Kind)
	}
	v, ok := c.Value.(T)
	if !ok {
		var want T
		return fmt.Errorf("set wants a %T, not %T", want, c.Value)
	}
	*field = v
	return nil
}
