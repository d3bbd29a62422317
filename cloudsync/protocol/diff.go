package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// ErrDiffInput marks a document Diff cannot compare: not a JSON object,
// a collection that is not an array of objects, an object without its key,
// or a key used twice in one collection.
var ErrDiffInput = errors.New("not a snapshot document")

// Kinds of the snapshot document (docs/sync-protocol.md, the ops table),
// in the order Diff emits their ops.
var diffOrder = []string{"account", "sites", "users", "sdgs", "numbers", "trunks", "callout", "admins", "embed", "prompts"}

// diffCollectionKeys maps each known collection kind to the field that keys its
// objects. Known kinds absent here are singletons.
var diffCollectionKeys = map[string]string{
	"sites":   "id",
	"users":   "id",
	"sdgs":    "id",
	"trunks":  "id",
	"numbers": "number",
	"admins":  "username",
	"prompts": "name",
}

// diffUnknownKey keys the objects of an unknown top-level array whose
// every element is an object with a string "id".
const diffUnknownKey = "id"

// Diff returns the ops that turn the snapshot document old into new:
//
//   - for each collection (sites, users, sdgs, trunks by id; numbers by
//     number; admins by username; prompts by name), a delete for every key of old missing
//     from new, in old's order, then a put for every object of new that is
//     missing from old or differs from it, in new's order;
//   - for each singleton (account, callout, embed), a set when the values
//     differ; a singleton present in old and missing from new is set to
//     null;
//   - "revision" is ignored;
//   - an unknown top-level key holding, on both sides where present, an
//     array of objects each with a string "id" is a collection keyed by id;
//     anything else is a singleton.
//
// Kinds come in a fixed order (account, sites, users, sdgs, numbers, trunks,
// callout, admins, embed, prompts, then unknown keys sorted), so the result is
// deterministic. Values are compared semantically: both are decoded and
// re-encoded canonically (object keys sorted, numbers normalised), so
// formatting and key order produce no op. An object that did not change
// produces nothing. A put's or set's Data is the new value, compacted.
//
// An empty old (no bytes, or only white space) is the empty document: every
// object of new is put. Diff is pure. Errors wrap ErrDiffInput.
func Diff(old, new []byte) ([]Op, error) {
	od, err := diffTopLevel(old, "old")
	if err != nil {
		return nil, err
	}
	nd, err := diffTopLevel(new, "new")
	if err != nil {
		return nil, err
	}
	var ops []Op
	for _, kind := range diffKinds(od, nd) {
		ov, nv := od[kind], nd[kind]
		if field, ok := diffCollectionKeys[kind]; ok {
			ops, err = diffCollectionOps(ops, kind, field, ov, nv)
		} else if !diffKnownKind(kind) && diffIsIDCollection(ov) && diffIsIDCollection(nv) {
			ops, err = diffCollectionOps(ops, kind, diffUnknownKey, ov, nv)
		} else {
			ops, err = diffSingletonOp(ops, kind, ov, nv)
		}
		if err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// diffTopLevel decodes a document's top-level object, keeping its values raw.
func diffTopLevel(doc []byte, which string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("%w: %s document: %v", ErrDiffInput, which, err)
	}
	if m == nil { // the document was null
		return nil, fmt.Errorf("%w: %s document is null; want a JSON object", ErrDiffInput, which)
	}
	return m, nil
}

func diffKnownKind(kind string) bool { return slices.Contains(diffOrder, kind) }

// diffKinds lists the kinds to compare: the known ones in diffOrder, then
// every other key of either document, sorted; never "revision".
func diffKinds(od, nd map[string]json.RawMessage) []string {
	kinds := slices.Clone(diffOrder)
	var extra []string
	for _, m := range []map[string]json.RawMessage{od, nd} {
		for k := range m {
			if k != "revision" && !diffKnownKind(k) && !slices.Contains(extra, k) {
				extra = append(extra, k)
			}
		}
	}
	slices.Sort(extra)
	return append(kinds, extra...)
}

// diffIsNull reports whether raw is absent or the JSON null.
func diffIsNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// diffIsIDCollection reports whether raw is absent, null, or an array whose
// every element is an object with a non-empty string "id".
func diffIsIDCollection(raw json.RawMessage) bool {
	if diffIsNull(raw) {
		return true
	}
	elems, err := diffSplitArray(raw)
	if err != nil {
		return false
	}
	for _, e := range elems {
		if _, err := diffObjectKey(e, diffUnknownKey); err != nil {
			return false
		}
	}
	return true
}

// diffElement is one object of a collection with its key.
type diffElement struct {
	key string
	raw json.RawMessage
}

// diffElements splits a collection into its keyed objects, refusing a key used
// twice.
func diffElements(kind, field string, raw json.RawMessage, which string) ([]diffElement, map[string]int, error) {
	if diffIsNull(raw) {
		return nil, map[string]int{}, nil
	}
	elems, err := diffSplitArray(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s document: %s: want an array of objects", ErrDiffInput, which, kind)
	}
	out := make([]diffElement, len(elems))
	index := make(map[string]int, len(elems))
	for i, e := range elems {
		key, err := diffObjectKey(e, field)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s document: %s[%d]: %v", ErrDiffInput, which, kind, i, err)
		}
		if j, dup := index[key]; dup {
			return nil, nil, fmt.Errorf("%w: %s document: %s[%d]: %s %q is already used by %s[%d]",
				ErrDiffInput, which, kind, i, field, key, kind, j)
		}
		index[key] = i
		out[i] = diffElement{key: key, raw: e}
	}
	return out, index, nil
}

func diffCollectionOps(ops []Op, kind, field string, ov, nv json.RawMessage) ([]Op, error) {
	olds, oldIndex, err := diffElements(kind, field, ov, "old")
	if err != nil {
		return nil, err
	}
	news, newIndex, err := diffElements(kind, field, nv, "new")
	if err != nil {
		return nil, err
	}
	for _, o := range olds {
		if _, kept := newIndex[o.key]; !kept {
			ops = append(ops, Op{Op: OpDelete, Kind: kind, ID: o.key})
		}
	}
	for _, n := range news {
		if i, ok := oldIndex[n.key]; ok {
			same, err := diffEqualJSON(olds[i].raw, n.raw)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q: %v", ErrDiffInput, kind, n.key, err)
			}
			if same {
				continue
			}
		}
		data, err := diffCompact(n.raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q: %v", ErrDiffInput, kind, n.key, err)
		}
		ops = append(ops, Op{Op: OpPut, Kind: kind, ID: n.key, Data: data})
	}
	return ops, nil
}

func diffSingletonOp(ops []Op, kind string, ov, nv json.RawMessage) ([]Op, error) {
	if len(ov) == 0 && len(nv) == 0 {
		return ops, nil
	}
	if len(nv) == 0 {
		nv = json.RawMessage("null")
	}
	if len(ov) != 0 {
		same, err := diffEqualJSON(ov, nv)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDiffInput, kind, err)
		}
		if same {
			return ops, nil
		}
	}
	data, err := diffCompact(nv)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDiffInput, kind, err)
	}
	return append(ops, Op{Op: OpSet, Kind: kind, Data: data}), nil
}

func diffCompact(raw json.RawMessage) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// diffEqualJSON compares two JSON values semantically: equal bytes first (the
// common case: both documents written by the same encoder), else their
// canonical encodings.
func diffEqualJSON(a, b json.RawMessage) (bool, error) {
	if bytes.Equal(a, b) {
		return true, nil
	}
	ca, err := diffCanonical(a)
	if err != nil {
		return false, err
	}
	cb, err := diffCanonical(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ca, cb), nil
}

// diffCanonical re-encodes a JSON value with object keys sorted, no
// insignificant white space and numbers normalised (1.0 and 1e0 are 1).
func diffCanonical(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(diffNormalizeNumbers(v))
}

// diffNormalizeNumbers rewrites every json.Number in v to one spelling per
// value: integers in decimal, other values as Go's shortest float form.
func diffNormalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = diffNormalizeNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = diffNormalizeNumbers(e)
		}
	case json.Number:
		return diffNormalizeNumber(t)
	}
	return v
}

func diffNormalizeNumber(n json.Number) json.Number {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10))
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return n // out of float range: compared as written
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return json.Number(strconv.FormatInt(int64(f), 10))
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}
