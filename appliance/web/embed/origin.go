package embed

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// maxOrigin bounds an origin's length.
const maxOrigin = 256

// originProblem says why s is not a web origin as browsers serialise it
// (scheme://host[:port]: http or https, lower case, no default port, no
// path, query, fragment or user), or "" when it is one. Only an origin
// listed in embed.allowed_origins (which the snapshot's validation holds
// to the same form) is served the widget; this check makes the refusal
// say why, and keeps anything but an origin out of the CSP header.
func originProblem(s string) string {
	if len(s) > maxOrigin {
		return "longer than 256 characters"
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == ';' || r == ',' || r == '\'' || r == '"' || r == '\\' {
			return "it contains a character an origin cannot"
		}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return "want http:// or https:// then the host"
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		return "want scheme://host[:port] only, without a path, query, fragment or user"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host != rest || u.Scheme != scheme {
		return "want scheme://host[:port]"
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "the host is missing"
	}
	if strings.ToLower(host) != host {
		return "write the host in lower case, as browsers send it"
	}
	if strings.HasSuffix(rest, ":") {
		return "the port is empty"
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || port[0] == '0' || n < 1 || n > 65535 {
			return "the port must be a number from 1 to 65535"
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			return "omit the default port: browsers leave it out of the origin"
		}
	}
	if strings.Contains(host, ":") { // IPv6: must be a bracketed address
		if ip := net.ParseIP(host); ip == nil || !strings.HasPrefix(rest, "[") {
			return "an IPv6 host must be an address in brackets"
		}
		return ""
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' && c != '.' {
			return "the host must be a host name or an address"
		}
	}
	return ""
}
