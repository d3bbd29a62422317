package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A check is one "outpost-check:" line. Three forms:
//
//	KEY = TEMPLATE
//	    The value equals TEMPLATE, where {name} stands for an Outpost value
//	    (realm, site, dns.domain, sip.host, sip.udp.port, sip.tcp.port,
//	    sip.tls.port, conference.factory) and * for any text. Without braces it is a fixed
//	    value the guide requires (Dual_Registration_1_ = Yes).
//	KEY in LO..HI [seconds|minutes]
//	    The value is a whole number of seconds (or minutes) from LO to HI
//	    inclusive; each bound is a Go duration (10m) or an Outpost
//	    duration setting (sip.min_expires, sip.max_expires,
//	    sip.survivability_expires, cloud.probe_interval,
//	    cloud.outage_after, cloud.recover_after).
//	KEY transport VALUE=T, VALUE=T...
//	    The value is one of the VALUEs, and its transport T (udp, tcp, tls
//	    or dns: NAPTR/SRV lookups) is one the node serves.
type check struct {
	key  string
	op   string // "=", "in" or "transport"
	arg  string
	line int
}

func parseCheck(n note) (check, error) {
	key, rest, _ := strings.Cut(n.text, " ")
	rest = strings.TrimSpace(rest)
	op, arg, _ := strings.Cut(rest, " ")
	arg = strings.TrimSpace(arg)
	if key == "" || (op != "=" && op != "in" && op != "transport") {
		return check{}, fmt.Errorf("want KEY = TEMPLATE, KEY in LO..HI [seconds|minutes] or KEY transport VALUE=T,...; got %q", n.text)
	}
	if op != "=" && arg == "" {
		return check{}, fmt.Errorf("%s: %q needs an argument", key, op)
	}
	return check{key: key, op: op, arg: arg, line: n.line}, nil
}

// checkFile runs every check of one file. It returns how many checks ran
// and one line per problem: "FILE:LINE: KEY: got ..., want ...".
func checkFile(path string, set settings) (int, []string) {
	name := displayPath(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: %v", name, err)}
	}
	pc, err := parsePhoneConfig(data)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: %v", name, err)}
	}
	if len(pc.notes) == 0 {
		return 0, []string{fmt.Sprintf("%s: no %q lines: nothing ties this %s configuration to Outpost's settings", name, marker, pc.format)}
	}
	var problems []string
	for _, n := range pc.notes {
		c, err := parseCheck(n)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %s %v", name, n.line, marker, err))
			continue
		}
		e, ok := pc.keys[c.key]
		if !ok {
			want, err := c.describe(set)
			if err != nil {
				want = err.Error()
			}
			problems = append(problems, fmt.Sprintf("%s:%d: %s: missing from the file, want %s", name, c.line, c.key, want))
			continue
		}
		if msg := c.eval(e.value, set); msg != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", name, e.line, c.key, msg))
		}
	}
	return len(pc.notes), problems
}

// eval returns "" when value passes, else "got ..., want ...".
func (c check) eval(value string, set settings) string {
	switch c.op {
	case "=":
		re, want, err := c.template(set)
		if err != nil {
			return fmt.Sprintf("got %q, want %s, but %v", value, c.arg, err)
		}
		if !re.MatchString(value) {
			return fmt.Sprintf("got %q, want %s", value, want)
		}
	case "in":
		lo, hi, unit, err := c.bounds(set)
		if err != nil {
			return fmt.Sprintf("got %q, but the check is wrong: %v", value, err)
		}
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return fmt.Sprintf("got %q, want a whole number of %s from %v to %v (%s)", value, unitName(unit), lo, hi, c.arg)
		}
		d := time.Duration(n) * unit
		if d < lo || d > hi {
			return fmt.Sprintf("got %q (%v), want %v to %v (%s)", value, d, lo, hi, c.arg)
		}
	case "transport":
		m, err := transportMap(c.arg)
		if err != nil {
			return fmt.Sprintf("got %q, but the check is wrong: %v", value, err)
		}
		t, ok := m.lookup(value)
		if !ok {
			return fmt.Sprintf("got %q, want one of %s", value, strings.Join(m.values, ", "))
		}
		if on, why := set.served(t); !on {
			return fmt.Sprintf("got %q (%s), want a transport the node serves (%s): %s", value, t, set.servedList(), why)
		}
	}
	return ""
}

// describe is what a check wants, for a key missing from the file.
func (c check) describe(set settings) (string, error) {
	switch c.op {
	case "=":
		_, want, err := c.template(set)
		return want, err
	case "in":
		lo, hi, unit, err := c.bounds(set)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s from %v to %v (%s)", unitName(unit), lo, hi, c.arg), nil
	}
	return "one of " + c.arg, nil
}

var braces = regexp.MustCompile(`\{([^{}]*)\}`)

// template turns the argument of "=" into an anchored pattern (literal
// text, Outpost values, * for any text) and says what it wants: "the
// value" or "the value ({setting})".
func (c check) template(set settings) (*regexp.Regexp, string, error) {
	var pat, want strings.Builder
	literal := func(s string) {
		for i, part := range strings.Split(s, "*") {
			if i > 0 {
				pat.WriteString(".*")
			}
			pat.WriteString(regexp.QuoteMeta(part))
		}
		want.WriteString(s)
	}
	last := 0
	for _, m := range braces.FindAllStringSubmatchIndex(c.arg, -1) {
		literal(c.arg[last:m[0]])
		v, err := set.value(c.arg[m[2]:m[3]])
		if err != nil {
			return nil, "", err
		}
		pat.WriteString(regexp.QuoteMeta(v))
		want.WriteString(v)
		last = m[1]
	}
	literal(c.arg[last:])
	re, err := regexp.Compile("^" + pat.String() + "$")
	if err != nil {
		return nil, "", err
	}
	if last == 0 {
		return re, strconv.Quote(want.String()), nil
	}
	return re, fmt.Sprintf("%q (%s)", want.String(), c.arg), nil
}

// bounds parses "LO..HI [seconds|minutes]".
func (c check) bounds(set settings) (lo, hi, unit time.Duration, err error) {
	fields := strings.Fields(c.arg)
	unit = time.Second
	switch {
	case len(fields) == 2 && fields[1] == "minutes":
		unit = time.Minute
	case len(fields) == 2 && fields[1] == "seconds", len(fields) == 1:
	default:
		return 0, 0, 0, fmt.Errorf("want LO..HI [seconds|minutes], got %q", c.arg)
	}
	l, h, ok := strings.Cut(fields[0], "..")
	if !ok {
		return 0, 0, 0, fmt.Errorf("want LO..HI, got %q", fields[0])
	}
	if lo, err = set.duration(l); err != nil {
		return 0, 0, 0, err
	}
	if hi, err = set.duration(h); err != nil {
		return 0, 0, 0, err
	}
	if lo > hi {
		return 0, 0, 0, fmt.Errorf("%s (%v) is above %s (%v)", l, lo, h, hi)
	}
	return lo, hi, unit, nil
}

func unitName(unit time.Duration) string {
	if unit == time.Minute {
		return "minutes"
	}
	return "seconds"
}

type tmap struct {
	values []string          // vendor values, in the check's order
	to     map[string]string // vendor value -> transport
}

func (m tmap) lookup(v string) (string, bool) {
	t, ok := m.to[v]
	return t, ok
}

// transportMap parses "VALUE=T, VALUE=T...".
func transportMap(arg string) (tmap, error) {
	m := tmap{to: map[string]string{}}
	for _, pair := range strings.Split(arg, ",") {
		v, t, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || v == "" {
			return tmap{}, fmt.Errorf("want VALUE=TRANSPORT, got %q", pair)
		}
		if _, known := map[string]bool{"udp": true, "tcp": true, "tls": true, "dns": true}[t]; !known {
			return tmap{}, fmt.Errorf("%q: transport must be one of %s", pair, strings.Join(transports, ", "))
		}
		m.values = append(m.values, v)
		m.to[v] = t
	}
	return m, nil
}
