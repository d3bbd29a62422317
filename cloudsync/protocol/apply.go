package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Errors of Apply and SetRevision, checked with errors.Is.
var (
	// ErrBadDocument marks a snapshot document Apply cannot work on: not a
	// JSON object, a repeated top-level key, or a collection that is not
	// an array of objects each with its key.
	ErrBadDocument = errors.New("malformed snapshot document")
	// ErrBadOp marks an op that makes no sense on its own or on its kind:
	// an unknown op, no kind, no id, no data, data without the op's key,
	// put or delete on a singleton, set on a collection.
	ErrBadOp = errors.New("malformed op")
	// ErrMissingKey marks a delete of an object the collection does not
	// hold.
	ErrMissingKey = errors.New("no such object")
)

// ApplyError is an op Apply could not apply: which op (its index in the
// list), and why.
type ApplyError struct {
	Index int
	Op    string
	Kind  string
	ID    string
	Err   error
}

func (e *ApplyError) Error() string {
	what := e.Op + " " + e.Kind
	if e.ID != "" {
		what += "/" + e.ID
	}
	return fmt.Sprintf("op %d (%s): %v", e.Index, what, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// applyKeyFields names the key of each known collection; applySingletons
// are the known singletons. An unknown top-level key is a collection keyed
// by "id" when its value is an array of objects each with a string "id",
// else a singleton.
var (
	applyKeyFields = map[string]string{
		"sites": "id", "users": "id", "sdgs": "id", "trunks": "id",
		"numbers": "number",
		"admins":  "username",
		"prompts": "name",
	}
	applySingletons = map[string]bool{"account": true, "callout": true, "embed": true}
)

// applyRevisionKey is the document's revision: the caller's to set.
const applyRevisionKey = "revision"

// Apply applies ops, in order, to a snapshot document and returns the new
// document (docs/sync-protocol.md, "The snapshot and its changes"):
//
//   - put inserts or replaces the object of a collection whose key is ID:
//     an existing object is replaced in place, a new one appended;
//   - delete removes it (deleting a key the collection does not hold is an
//     error);
//   - set replaces a top-level singleton (account, callout, embed, or any
//     unknown key), adding it at the end when the document has none.
//
// The document's other keys, their order and the order of every
// collection are kept; the result is compact JSON. Apply never sets
// "revision" (the caller does, with SetRevision) and refuses an op on it.
// An error names the op (*ApplyError) and wraps ErrBadDocument, ErrBadOp
// or ErrMissingKey. Apply is pure: it modifies neither doc nor ops, and on
// error returns nil.
func Apply(doc []byte, ops []Op) ([]byte, error) {
	d, err := parseApplyDoc(doc)
	if err != nil {
		return nil, err
	}
	for i, op := range ops {
		if err := d.apply(op); err != nil {
			return nil, &ApplyError{Index: i, Op: op.Op, Kind: op.Kind, ID: op.ID, Err: err}
		}
	}
	return d.encode()
}

// SetRevision returns doc with its top-level "revision" set to rev
// (replaced in place, or first when the document has none), as compact
// JSON. The document must be a JSON object (ErrBadDocument otherwise).
func SetRevision(doc []byte, rev int64) ([]byte, error) {
	d, err := parseApplyDoc(doc)
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(strconv.FormatInt(rev, 10))
	if i, ok := d.index[applyRevisionKey]; ok {
		d.entries[i].raw = raw
	} else {
		d.entries = append([]applyEntry{{key: applyRevisionKey, raw: raw}}, d.entries...)
	}
	return d.encode()
}

// applyDoc is a snapshot document as an ordered list of top-level keys.
type applyDoc struct {
	entries []applyEntry
	index   map[string]int // key -> position in entries
}

// applyEntry is one top-level key and its value: raw, or coll once an op
// has addressed it as a collection.
type applyEntry struct {
	key  string
	raw  json.RawMessage
	coll *applyColl
}

// applyColl is a collection being edited. Deleted objects are left as nil
// holes until encoding, so a delete costs no copy.
type applyColl struct {
	field string
	items []json.RawMessage
	index map[string]int // key -> position in items
}

func parseApplyDoc(doc []byte) (*applyDoc, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDocument, err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadDocument)
	}
	d := &applyDoc{index: make(map[string]int)}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDocument, err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder only returns a string here; be safe
			return nil, fmt.Errorf("%w: a key is not a string", ErrBadDocument)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: value of %q: %v", ErrBadDocument, key, err)
		}
		if _, dup := d.index[key]; dup {
			return nil, fmt.Errorf("%w: key %q appears twice", ErrBadDocument, key)
		}
		d.index[key] = len(d.entries)
		d.entries = append(d.entries, applyEntry{key: key, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("%w: %v", ErrBadDocument, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrBadDocument)
	}
	return d, nil
}

func (d *applyDoc) apply(op Op) error {
	switch {
	case op.Kind == "":
		return fmt.Errorf("%w: no kind", ErrBadOp)
	case op.Kind == applyRevisionKey:
		return fmt.Errorf("%w: the revision is not changed by ops", ErrBadOp)
	}
	switch op.Op {
	case OpSet:
		return d.set(op)
	case OpPut, OpDelete:
		if applySingletons[op.Kind] {
			return fmt.Errorf("%w: %s is a singleton: use set", ErrBadOp, op.Kind)
		}
		if op.ID == "" {
			return fmt.Errorf("%w: no id", ErrBadOp)
		}
		c, err := d.collection(op)
		if err != nil {
			return err
		}
		if op.Op == OpPut {
			return c.put(op)
		}
		return c.delete(op)
	default:
		return fmt.Errorf("%w: unknown op %q (want put, delete or set)", ErrBadOp, op.Op)
	}
}

func (d *applyDoc) set(op Op) error {
	if _, ok := applyKeyFields[op.Kind]; ok {
		return fmt.Errorf("%w: %s is a collection: use put and delete", ErrBadOp, op.Kind)
	}
	if op.ID != "" {
		return fmt.Errorf("%w: set takes no id", ErrBadOp)
	}
	if len(op.Data) == 0 {
		return fmt.Errorf("%w: no data", ErrBadOp)
	}
	if !json.Valid(op.Data) {
		return fmt.Errorf("%w: data is not JSON", ErrBadOp)
	}
	e := applyEntry{key: op.Kind, raw: op.Data}
	if i, ok := d.index[op.Kind]; ok {
		d.entries[i] = e
		return nil
	}
	d.index[op.Kind] = len(d.entries)
	d.entries = append(d.entries, e)
	return nil
}

// collection returns the collection op addresses, parsing it on first use
// and creating it (empty) for a put when the document has none.
func (d *applyDoc) collection(op Op) (*applyColl, error) {
	i, ok := d.index[op.Kind]
	if !ok {
		if op.Op == OpDelete {
			return nil, fmt.Errorf("%w: the document has no %s", ErrMissingKey, op.Kind)
		}
		i = len(d.entries)
		d.index[op.Kind] = i
		d.entries = append(d.entries, applyEntry{key: op.Kind})
	}
	e := &d.entries[i]
	if e.coll != nil {
		return e.coll, nil
	}
	c, err := parseApplyColl(op.Kind, e.raw)
	if err != nil {
		return nil, err
	}
	e.coll = c
	return c, nil
}

func parseApplyColl(kind string, raw json.RawMessage) (*applyColl, error) {
	field, known := applyKeyFields[kind]
	if !known {
		field = "id"
	}
	c := &applyColl{field: field, index: make(map[string]int)}
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c.items); err != nil {
		if known {
			return nil, fmt.Errorf("%w: %s is not an array of objects", ErrBadDocument, kind)
		}
		return nil, fmt.Errorf("%w: %s is not a collection (an array of objects with an id)", ErrBadOp, kind)
	}
	for i, item := range c.items {
		key, err := applyKeyOf(item, field)
		if err == nil {
			if _, dup := c.index[key]; dup {
				return nil, fmt.Errorf("%w: %s[%d]: %s %q appears twice", ErrBadDocument, kind, i, field, key)
			}
			c.index[key] = i
			continue
		}
		if known {
			return nil, fmt.Errorf("%w: %s[%d]: %v", ErrBadDocument, kind, i, err)
		}
		return nil, fmt.Errorf("%w: %s is not a collection (an array of objects with an id): %s[%d]: %v", ErrBadOp, kind, kind, i, err)
	}
	return c, nil
}

// applyKeyOf returns the string value of field in the JSON object raw.
func applyKeyOf(raw json.RawMessage, field string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", errors.New("not an object")
	}
	v, ok := obj[field]
	if !ok {
		return "", fmt.Errorf("no %s", field)
	}
	var key string
	if err := json.Unmarshal(v, &key); err != nil {
		return "", fmt.Errorf("%s is not a string", field)
	}
	if key == "" {
		return "", fmt.Errorf("%s is empty", field)
	}
	return key, nil
}

func (c *applyColl) put(op Op) error {
	if len(op.Data) == 0 {
		return fmt.Errorf("%w: no data", ErrBadOp)
	}
	if !json.Valid(op.Data) {
		return fmt.Errorf("%w: data is not JSON", ErrBadOp)
	}
	key, err := applyKeyOf(op.Data, c.field)
	if err != nil {
		return fmt.Errorf("%w: data: %v", ErrBadOp, err)
	}
	if key != op.ID {
		return fmt.Errorf("%w: data's %s is %q, not the op's id", ErrBadOp, c.field, key)
	}
	if i, ok := c.index[key]; ok {
		c.items[i] = op.Data
		return nil
	}
	c.index[key] = len(c.items)
	c.items = append(c.items, op.Data)
	return nil
}

func (c *applyColl) delete(op Op) error {
	i, ok := c.index[op.ID]
	if !ok {
		return fmt.Errorf("%w: %s has no %s %q", ErrMissingKey, op.Kind, c.field, op.ID)
	}
	c.items[i] = nil
	delete(c.index, op.ID)
	return nil
}

// encode writes the document back in its order, as compact JSON.
func (d *applyDoc) encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range d.entries {
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := json.Marshal(e.key)
		if err != nil {
			return nil, fmt.Errorf("encode key %q: %w", e.key, err)
		}
		b.Write(key)
		b.WriteByte(':')
		if e.coll == nil {
			b.Write(e.raw)
			continue
		}
		b.WriteByte('[')
		first := true
		for _, item := range e.coll.items {
			if item == nil {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(item)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	var out bytes.Buffer
	out.Grow(b.Len())
	if err := json.Compact(&out, b.Bytes()); err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	return out.Bytes(), nil
}
