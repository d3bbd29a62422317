package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A small scanner over JSON that encoding/json has already validated (the
// values of a decoded document): it splits arrays and finds an object's
// key without decoding every object into a map, which made Diff of a
// 10,000-user account three times slower. On bytes that are not valid
// JSON it returns an error, never panics.

var errDiffScan = errors.New("malformed JSON")

func diffSkipSpace(data []byte, i int) int {
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

// diffSkipString returns the index just past the string starting at
// data[i] (a '"').
func diffSkipString(data []byte, i int) (int, error) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errDiffScan
}

// diffSkipValue returns the index just past the value starting at data[i].
func diffSkipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errDiffScan
	}
	switch data[i] {
	case '"':
		return diffSkipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				j, err := diffSkipString(data, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errDiffScan
	case ',', ':', '}', ']':
		return 0, errDiffScan
	default: // a number, true, false or null
		j := i
		for j < len(data) && bytes.IndexByte([]byte(",}] \t\r\n"), data[j]) < 0 {
			j++
		}
		return j, nil
	}
}

// diffSplitArray returns the elements of a JSON array.
func diffSplitArray(raw []byte) ([]json.RawMessage, error) {
	i := diffSkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, errDiffScan
	}
	i = diffSkipSpace(raw, i+1)
	var out []json.RawMessage
	if i < len(raw) && raw[i] == ']' {
		return out, nil
	}
	for {
		end, err := diffSkipValue(raw, i)
		if err != nil {
			return nil, err
		}
		out = append(out, raw[i:end])
		i = diffSkipSpace(raw, end)
		if i >= len(raw) {
			return nil, errDiffScan
		}
		switch raw[i] {
		case ',':
			i = diffSkipSpace(raw, i+1)
		case ']':
			return out, nil
		default:
			return nil, errDiffScan
		}
	}
}

// diffString decodes a JSON string token.
func diffString(tok []byte) (string, error) {
	if len(tok) >= 2 && bytes.IndexByte(tok, '\\') < 0 && utf8.Valid(tok) {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	err := json.Unmarshal(tok, &s)
	return s, err
}

// diffObjectKey returns the string value of field in the JSON object raw
// (the last one, as encoding/json would, should the object repeat it).
func diffObjectKey(raw json.RawMessage, field string) (string, error) {
	notObject := errors.New("not a JSON object")
	i := diffSkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return "", notObject
	}
	i = diffSkipSpace(raw, i+1)
	var value []byte
	for i < len(raw) && raw[i] != '}' {
		if raw[i] != '"' {
			return "", notObject
		}
		kend, err := diffSkipString(raw, i)
		if err != nil {
			return "", notObject
		}
		key, err := diffString(raw[i:kend])
		if err != nil {
			return "", notObject
		}
		i = diffSkipSpace(raw, kend)
		if i >= len(raw) || raw[i] != ':' {
			return "", notObject
		}
		vstart := diffSkipSpace(raw, i+1)
		vend, err := diffSkipValue(raw, vstart)
		if err != nil {
			return "", notObject
		}
		if key == field {
			value = raw[vstart:vend]
		}
		i = diffSkipSpace(raw, vend)
		if i < len(raw) && raw[i] == ',' {
			i = diffSkipSpace(raw, i+1)
		}
	}
	if i >= len(raw) {
		return "", notObject
	}
	if value == nil {
		return "", fmt.Errorf("has no %q", field)
	}
	if value[0] != '"' {
		return "", fmt.Errorf("%q is not a string", field)
	}
	key, err := diffString(value)
	if err != nil {
		return "", fmt.Errorf("%q is not a string", field)
	}
	if key == "" {
		return "", fmt.Errorf("%q is empty", field)
	}
	return key, nil
}
