package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/outpost-voice/outpost/account"
)

// DecodeOps turns ops into typed changes of the snapshot model, decoding
// each op's data as strictly as account.DecodeBytes decodes a document
// (unknown fields and trailing data are errors). An error is an
// *ApplyError naming the op, wrapping ErrBadOp.
//
// Applying the changes to a decoded snapshot (account.Snapshot.WithChanges)
// gives what decoding Apply's document gives: the appliance applies
// revisions that way, without the whole document.
func DecodeOps(ops []Op) ([]account.Change, error) {
	out := make([]account.Change, len(ops))
	for i, op := range ops {
		c, err := decodeOp(op)
		if err != nil {
			return nil, &ApplyError{Index: i, Op: op.Op, Kind: op.Kind, ID: op.ID, Err: err}
		}
		out[i] = c
	}
	return out, nil
}

func decodeOp(op Op) (account.Change, error) {
	c := account.Change{Kind: op.Kind, ID: op.ID}
	_, collection := applyKeyFields[op.Kind]
	switch {
	case op.Kind == "":
		return c, fmt.Errorf("%w: no kind", ErrBadOp)
	case op.Op == OpSet && collection:
		return c, fmt.Errorf("%w: %s is a collection: use put and delete", ErrBadOp, op.Kind)
	case op.Op == OpSet && op.ID != "":
		return c, fmt.Errorf("%w: set takes no id", ErrBadOp)
	case (op.Op == OpPut || op.Op == OpDelete) && !collection:
		return c, fmt.Errorf("%w: %s is not a collection of the snapshot", ErrBadOp, op.Kind)
	case (op.Op == OpPut || op.Op == OpDelete) && op.ID == "":
		return c, fmt.Errorf("%w: no id", ErrBadOp)
	case op.Op == OpDelete:
		c.Delete = true
		return c, nil
	case op.Op != OpPut && op.Op != OpSet:
		return c, fmt.Errorf("%w: unknown op %q (want put, delete or set)", ErrBadOp, op.Op)
	case len(op.Data) == 0:
		return c, fmt.Errorf("%w: no data", ErrBadOp)
	case op.Op == OpPut && string(bytes.TrimSpace(op.Data)) == "null":
		return c, fmt.Errorf("%w: data is null", ErrBadOp)
	}
	var err error
	switch op.Kind {
	case account.KindSites:
		c.Value, err = decodeStrict[account.Site](op.Data)
	case account.KindUsers:
		c.Value, err = decodeStrict[account.User](op.Data)
	case account.KindSDGs:
		c.Value, err = decodeStrict[account.SDG](op.Data)
	case account.KindNumbers:
		c.Value, err = decodeStrict[account.Number](op.Data)
	case account.KindTrunks:
		c.Value, err = decodeStrict[account.Trunk](op.Data)
	case account.KindAdmins:
		c.Value, err = decodeStrict[account.Admin](op.Data)
	case account.KindPrompts:
		c.Value, err = decodeStrict[account.Prompt](op.Data)
	case account.KindAccount:
		c.Value, err = decodeStrict[account.Account](op.Data)
	case account.KindCallout:
		c.Value, err = decodeStrict[account.Callout](op.Data)
	case account.KindEmbed:
		c.Value, err = decodeStrict[account.Embed](op.Data)
	default:
		return c, fmt.Errorf("%w: %s is not a part of the snapshot", ErrBadOp, op.Kind)
	}
	if err != nil {
		return c, fmt.Errorf("%w: data: %v", ErrBadOp, err)
	}
	return c, nil
}

// decodeStrict decodes one JSON value into a T, refusing unknown fields and
// trailing data (null is T's zero value).
func decodeStrict[T any](data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

// ApplySnapshot applies ops to a decoded snapshot: DecodeOps, then
// WithChanges. s is not modified. The revision is left as it is.
func ApplySnapshot(s *account.Snapshot, ops []Op) (*account.Snapshot, error) {
	changes, err := DecodeOps(ops)
	if err != nil {
		return nil, err
	}
	return s.WithChanges(changes)
}
