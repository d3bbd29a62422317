// Package ng speaks the subset of rtpengine's NG control protocol the load
// generator needs: bencoded dictionaries over UDP, each message prefixed by
// a cookie ("COOKIE d...e"), with the offer, answer, delete and ping
// commands. It has a client (for rtpengine and for the Outpost relay's
// test server) and the codec a server uses.
package ng

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Dict is a bencoded dictionary. Values are string, int64, []any or Dict.
type Dict = map[string]any

// Encode bencodes v: a string, []byte, int, int64, []any or Dict.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.WriteString(x)
	case []byte:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.Write(x)
	case int:
		fmt.Fprintf(b, "i%de", x)
	case int64:
		fmt.Fprintf(b, "i%de", x)
	case []any:
		b.WriteByte('l')
		for _, e := range x {
			if err := encode(b, e); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case []string:
		b.WriteByte('l')
		for _, e := range x {
			_ = encode(b, e)
		}
		b.WriteByte('e')
	case Dict:
		b.WriteByte('d')
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			_ = encode(b, k)
			if err := encode(b, x[k]); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
		b.WriteByte('e')
	default:
		return fmt.Errorf("bencode: cannot encode %T", v)
	}
	return nil
}

var errTruncated = errors.New("bencode: truncated")

// Decode reads one bencoded value from b and returns it with the bytes
// after it.
func Decode(b []byte) (any, []byte, error) {
	return decode(b, 0)
}

func decode(b []byte, depth int) (any, []byte, error) {
	if depth > 32 {
		return nil, nil, errors.New("bencode: nested too deep")
	}
	if len(b) == 0 {
		return nil, nil, errTruncated
	}
	switch c := b[0]; {
	case c == 'i':
		end := bytes.IndexByte(b, 'e')
		if end < 0 {
			return nil, nil, errTruncated
		}
		n, err := strconv.ParseInt(string(b[1:end]), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("bencode: integer %q: %w", b[1:end], err)
		}
		return n, b[end+1:], nil
	case c == 'l':
		var out []any
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			v, rest, err := decode(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			out, b = append(out, v), rest
		}
		if len(b) == 0 {
			return nil, nil, errTruncated
		}
		return out, b[1:], nil
	case c == 'd':
		out := Dict{}
		b = b[1:]
		for len(b) > 0 && b[0] != 'e' {
			k, rest, err := decode(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, nil, fmt.Errorf("bencode: dictionary key is %T, want string", k)
			}
			v, rest, err := decode(rest, depth+1)
			if err != nil {
				return nil, nil, fmt.Errorf("key %q: %w", ks, err)
			}
			out[ks], b = v, rest
		}
		if len(b) == 0 {
			return nil, nil, errTruncated
		}
		return out, b[1:], nil
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return nil, nil, errTruncated
		}
		n, err := strconv.Atoi(string(b[:colon]))
		if err != nil || n < 0 || colon+1+n > len(b) {
			return nil, nil, fmt.Errorf("bencode: bad string length %q", b[:colon])
		}
		return string(b[colon+1 : colon+1+n]), b[colon+1+n:], nil
	default:
		return nil, nil, fmt.Errorf("bencode: unexpected byte %q", c)
	}
}

// Str returns d[key] as a string ("" when absent or not a string).
func Str(d Dict, key string) string {
	s, _ := d[key].(string)
	return s
}

// Int returns d[key] as an integer (0 when absent or not an integer).
func Int(d Dict, key string) int64 {
	n, _ := d[key].(int64)
	return n
}
