package dtmf

import (
	"bufio"
	"bytes"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// ParseInfo reads the key press in the body of a SIP INFO request:
// application/dtmf-relay ("Signal=5\r\nDuration=160", the duration in
// milliseconds) or application/dtmf (the key alone). A signal may be the
// key or its event code ("11" for '#'). The Digit has no timestamp or
// volume and Ended set.
func ParseInfo(contentType string, body []byte) (Digit, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return Digit{}, fmt.Errorf("parse SIP INFO: content type %q: %w", contentType, ErrPayload)
	}
	switch mt {
	case "application/dtmf-relay":
		return parseRelay(body)
	case "application/dtmf":
		k, err := parseSignal(string(bytes.TrimSpace(body)))
		if err != nil {
			return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf: %w", err)
		}
		return Digit{Key: k, Ended: true}, nil
	}
	return Digit{}, fmt.Errorf("parse SIP INFO: content type %q: want application/dtmf-relay or application/dtmf: %w", mt, ErrPayload)
}

func parseRelay(body []byte) (Digit, error) {
	var (
		d      = Digit{Ended: true}
		signal bool
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf-relay: line %q: want name=value: %w", line, ErrPayload)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "signal":
			k, err := parseSignal(value)
			if err != nil {
				return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf-relay: %w", err)
			}
			d.Key, signal = k, true
		case "duration":
			ms, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf-relay: duration %q: %w", value, ErrPayload)
			}
			d.Duration = time.Duration(ms) * time.Millisecond
		}
	}
	if err := sc.Err(); err != nil {
		return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf-relay: %w", ErrPayload)
	}
	if !signal {
		return Digit{}, fmt.Errorf("parse SIP INFO application/dtmf-relay: no Signal line: %w", ErrPayload)
	}
	return d, nil
}

func parseSignal(s string) (byte, error) {
	if len(s) == 1 {
		if k, ok := Code(s[0]); ok {
			return keys[k], nil
		}
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if k, ok := Key(uint8(n)); ok {
			return k, nil
		}
	}
	return 0, fmt.Errorf("signal %q is not a DTMF key (0-9, *, #, A-D): %w", s, ErrPayload)
}
