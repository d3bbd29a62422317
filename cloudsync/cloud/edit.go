package cloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// errNoObject: the object a DELETE names is not in the snapshot.
var errNoObject = errors.New("no such object")

// badObject is a per-object body that is not the object: 400 with its
// problems.
type badObject struct{ problems []protocol.Problem }

func (e *badObject) Error() string { return "bad object" }

// objectKind is one collection of the snapshot the admin API edits object
// by object.
type objectKind struct {
	name     string // path segment and snapshot key: users, sdgs...
	keyField string // the JSON field keying its objects
	// get returns the object's JSON, if any.
	get func(s *account.Snapshot, id string) ([]byte, bool)
	// put decodes body strictly as one object keyed id and inserts it
	// (appended) or replaces it (in place).
	put func(s *account.Snapshot, id string, body []byte) error
	// del removes the object keyed id, reporting whether there was one.
	del func(s *account.Snapshot, id string) bool
	// arrange orders s's objects as the ops from old give them (see
	// arrange).
	arrange func(old, s *account.Snapshot)
}

// objectKinds are the collections of PUT|DELETE /v1/admin/{kind}/{id}.
var objectKinds = []objectKind{
	kindOf("sites", "id", func(s *account.Snapshot) *[]account.Site { return &s.Sites },
		func(o *account.Site) *string { return &o.ID }),
	kindOf("users", "id", func(s *account.Snapshot) *[]account.User { return &s.Users },
		func(o *account.User) *string { return &o.ID }),
	kindOf("sdgs", "id", func(s *account.Snapshot) *[]account.SDG { return &s.SDGs },
		func(o *account.SDG) *string { return &o.ID }),
	kindOf("numbers", "number", func(s *account.Snapshot) *[]account.Number { return &s.Numbers },
		func(o *account.Number) *string { return &o.Number }),
	kindOf("trunks", "id", func(s *account.Snapshot) *[]account.Trunk { return &s.Trunks },
		func(o *account.Trunk) *string { return &o.ID }),
	kindOf("admins", "username", func(s *account.Snapshot) *[]account.Admin { return &s.Admins },
		func(o *account.Admin) *string { return &o.Username }),
	kindOf("prompts", "name", func(s *account.Snapshot) *[]account.Prompt { return &s.Prompts },
		func(o *account.Prompt) *string { return &o.Name }),
}

func kindOf[T any](name, field string, list func(*account.Snapshot) *[]T, key func(*T) *string) objectKind {
	find := func(s *account.Snapshot, id string) int {
		return slices.IndexFunc(*list(s), func(o T) bool { return *key(&o) == id })
	}
	return objectKind{
		name:     name,
		keyField: field,
		get: func(s *account.Snapshot, id string) ([]byte, bool) {
			i := find(s, id)
			if i < 0 {
				return nil, false
			}
			data, err := json.Marshal((*list(s))[i])
			return data, err == nil
		},
		put: func(s *account.Snapshot, id string, body []byte) error {
			var o T
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&o); err != nil {
				return &badObject{[]protocol.Problem{{Path: name + "/" + id, Message: "not a valid object: " + err.Error()}}}
			}
			if dec.More() {
				return &badObject{[]protocol.Problem{{Path: name + "/" + id, Message: "unexpected data after the object; send exactly one"}}}
			}
			switch k := key(&o); *k {
			case "":
				*k = id
			case id:
			default:
				return &badObject{[]protocol.Problem{{Path: field,
					Message: fmt.Sprintf("is %q but the path names %q: they must match", *k, id)}}}
			}
			l := list(s)
			if i := find(s, id); i >= 0 {
				(*l)[i] = o
			} else {
				*l = append(*l, o)
			}
			return nil
		},
		del: func(s *account.Snapshot, id string) bool {
			i := find(s, id)
			if i < 0 {
				return false
			}
			l := list(s)
			*l = slices.Delete(*l, i, i+1)
			return true
		},
		arrange: func(old, s *account.Snapshot) {
			*list(s) = arrangeList(*list(old), *list(s), func(o *T) string { return *key(o) })
		},
	}
}

// objectID is the key the path of /v1/admin/{kind}/{id} names (a prompt
// name may hold '/', so prompts take the rest of the path).
func objectID(c *gin.Context) string {
	return strings.TrimPrefix(c.Param("id"), "/")
}

// arrangeList orders cur as applying the ops from old to it gives it: the
// objects old had, in old's order, then the new ones in cur's order. The
// ops (protocol.Diff) cannot express a move, so without this a snapshot
// fetched whole and one built from changes could list the same objects in
// different orders.
func arrangeList[T any](old, cur []T, key func(*T) string) []T {
	pos := make(map[string]int, len(old))
	for i := range old {
		pos[key(&old[i])] = i
	}
	out := slices.Clone(cur)
	slices.SortStableFunc(out, func(a, b T) int {
		pa, oka := pos[key(&a)]
		pb, okb := pos[key(&b)]
		switch {
		case oka && okb:
			return pa - pb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return out
}

// arrange orders every collection of s as the ops from old give them.
func arrange(old, s *account.Snapshot) {
	for _, k := range objectKinds {
		k.arrange(old, s)
	}
}
