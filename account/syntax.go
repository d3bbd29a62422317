package account

import (
	"net/netip"
	"strconv"
	"strings"
)

// Textual checks on single values. They are hand-written rather than regular
// expressions: a 10,000-user account runs them tens of thousands of times.

// isE164 reports whether s is +, a non-zero digit, then 1 to 14 more digits.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	return allDigits(s[2:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isDigits reports whether s is between min and max decimal digits.
func isDigits(s string, min, max int) bool {
	return len(s) >= min && len(s) <= max && allDigits(s)
}

// isLowerHex reports whether s is exactly n lower-case hexadecimal digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

var lowerHex = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, 'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
}

// isCountry reports whether s looks like an ISO 3166-1 alpha-2 code.
func isCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// maxIDLen bounds object ids; they appear in URLs, logs and metrics labels.
const maxIDLen = 128

// isID reports whether s is a usable object id: 1 to maxIDLen characters from
// letters, digits and . _ - : @ (safe in a URL path segment and a log line).
func isID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' && c != ':' && c != '@' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isHostname reports whether s is a DNS host name: dot-separated labels of
// letters, digits and hyphens, each 1-63 long and not starting or ending with
// a hyphen, 253 characters at most, no trailing dot.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isHost reports whether s is a host name or an IP address literal (IPv6
// without brackets).
func isHost(s string) bool {
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		return err == nil && a.Zone() == ""
	}
	return isHostname(s)
}

// maxSIPUserLen bounds a SIP username; RFC 3261 sets no limit, phones do.
const maxSIPUserLen = 64

// isSIPUser reports whether s is a valid RFC 3261 user part:
// unreserved / escaped / user-unreserved characters.
func isSIPUser(s string) bool {
	if s == "" || len(s) > maxSIPUserLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
		case strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isBcrypt reports whether s looks like a modular-crypt bcrypt hash:
// $2a$, $2b$ or $2y$, a two-digit cost 04-31, $, then 53 characters of
// bcrypt's base64 alphabet (22 of salt, 31 of hash): 60 in all.
func isBcrypt(s string) bool {
	if len(s) != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$' {
		return false
	}
	if v := s[2]; v != 'a' && v != 'b' && v != 'y' {
		return false
	}
	if !allDigits(s[4:6]) {
		return false
	}
	if cost, _ := strconv.Atoi(s[4:6]); cost < 4 || cost > 31 {
		return false
	}
	for i := 7; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '/' {
			return false
		}
	}
	return true
}

// isName reports whether s is a name for a prompt or similar resource: a
// relative slash-separated path of segments made of letters, digits, . _ -,
// no segment empty or starting with a dot, 128 characters at most.
func isName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
	}
	return true
}

// isTimezone reports whether s looks like an IANA time zone name such as
// "America/Los_Angeles" or "UTC". The zone database is not consulted: the
// package does no I/O.
func isTimezone(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !isAlnum(c) && c != '_' && c != '-' && c != '+' {
				return false
			}
		}
	}
	return true
}

// isEmail reports whether s looks like local@domain with a host name domain.
func isEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || len(s) > 254 {
		return false
	}
	for i := 0; i < at; i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '@' || c == '"' || c == '<' || c == '>' {
			return false
		}
	}
	return isHostname(s[at+1:])
}

// originProblem explains why s is not a web origin as browsers send it in
// the Origin header ("https://host[:port]"), or returns "".
func originProblem(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "want scheme://host[:port], e.g. https://crm.example.com"
	}
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		if strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https") {
			return "write the scheme in lower case"
		}
		return "scheme must be http or https"
	}
	if rest == "" {
		return "host is missing"
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return "remove the path, query or fragment (and any trailing slash): an origin is scheme://host[:port] only"
	}
	if strings.Contains(rest, "@") {
		return "remove the user name: an origin is scheme://host[:port] only"
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "unclosed [ in IPv6 host"
		}
		host, port = rest[1:end], rest[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return "host in brackets must be an IPv6 address"
		}
		if port != "" {
			if port[0] != ':' {
				return "unexpected text after the IPv6 host"
			}
			port = port[1:]
			if port == "" {
				return "port is empty after the colon"
			}
		}
	} else {
		if h, p, ok := strings.Cut(rest, ":"); ok {
			host, port = h, p
			if port == "" {
				return "port is empty after the colon"
			}
		}
		if !isHostname(host) {
			return "host is not a valid host name or IPv4 address"
		}
		if strings.ToLower(host) != host {
			return "write the host in lower case, as browsers send it"
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || !allDigits(port) || port[0] == '0' || n > 65535 {
			return "port must be a number from 1 to 65535, without leading zeros"
		}
		if port == defaultPort {
			return "omit the default port " + port + ": browsers leave it out of the origin"
		}
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
