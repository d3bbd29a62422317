package account

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// describeJSONError turns encoding/json's errors into a message with a line
// and column, and a path where one is known, that the admin can look up.
func describeJSONError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(data, int64(len(data)))
		return fmt.Sprintf("document ends early at line %d column %d: it is truncated, or a closing bracket or quote is missing", line, col)
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		line, col := position(data, syn.Offset-1)
		return fmt.Sprintf("invalid JSON at line %d column %d: %s", line, col, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Sprintf("%s: wrong type at line %d column %d: got JSON %s, want %s",
			typ.Field, line, col, typ.Value, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		if path, off, ok := findUnknownField(data); ok {
			line, col := position(data, off)
			return fmt.Sprintf("unknown field %s at line %d column %d: remove it or fix its spelling", path, line, col)
		}
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return strings.TrimPrefix(err.Error(), "json: ")
	}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	line = 1 + bytes.Count(data[:offset], []byte("\n"))
	col = int(offset) - bytes.LastIndexByte(data[:offset], '\n')
	return line, col
}

// skipSpace returns the offset of the first non-whitespace byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// findUnknownField walks the document's tokens alongside the Snapshot type
// and returns the path and offset of the first object key that names no
// field. It runs only after decoding has already failed.
func findUnknownField(data []byte) (path string, offset int64, found bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := fieldWalker{dec: dec, data: data}
	w.value(reflect.TypeFor[Snapshot](), "")
	return w.path, w.offset, w.found
}

type fieldWalker struct {
	dec    *json.Decoder
	data   []byte
	path   string
	offset int64
	found  bool
	failed bool
}

// value consumes one JSON value expected to be of type t (nil: anything).
func (w *fieldWalker) value(t reflect.Type, path string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.dec.Token()
	if err != nil {
		w.failed = true
		return
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return
	}
	switch d {
	case '{':
		for w.dec.More() && !w.found && !w.failed {
			before := w.dec.InputOffset()
			tok, err := w.dec.Token()
			key, ok := tok.(string)
			if err != nil || !ok {
				w.failed = true
				return
			}
			var child reflect.Type
			childPath := path
			switch {
			case t != nil && t.Kind() == reflect.Struct:
				f, known := structField(t, key)
				childPath = path + keyPath(key)
				if path == "" {
					childPath = strings.TrimPrefix(childPath, ".")
				}
				if !known {
					w.path, w.found = childPath, true
					w.offset = int64(skipSeparators(w.data, int(before)))
					return
				}
				child = f
			case t != nil && t.Kind() == reflect.Map:
				child = t.Elem()
				childPath = path + keyPath(key)
			}
			w.value(child, childPath)
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More() && !w.found && !w.failed; i++ {
			w.value(elem, path+"["+strconv.Itoa(i)+"]")
		}
	default:
		return
	}
	if !w.found && !w.failed {
		if _, err := w.dec.Token(); err != nil { // the closing delimiter
			w.failed = true
		}
	}
}

// structField finds the field of struct type t that encoding/json would
// decode key into: the exact JSON name, else a case-insensitive match.
func structField(t reflect.Type, key string) (reflect.Type, bool) {
	var folded reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = f.Type
		}
	}
	return folded, folded != nil
}

// skipSeparators moves past whitespace and the comma before an object key.
func skipSeparators(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r', ',':
			i++
		default:
			return i
		}
	}
	return i
}
