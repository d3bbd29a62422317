package main

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// phoneConfig is one phone configuration file as the checker sees it: its
// keys and the outpost-check lines of its comments.
type phoneConfig struct {
	format string           // "yealink", "poly", "cisco-mpp" or "grandstream"
	keys   map[string]entry // by key
	notes  []note           // outpost-check lines, in file order
}

type entry struct {
	value string
	line  int
}

type note struct {
	text string // after "outpost-check:"
	line int
}

const marker = "outpost-check:"

// parsePhoneConfig reads a Yealink key = value file, or a Poly, Cisco MPP
// or Grandstream XML file (told apart by the root element). A key set twice
// is an error: which one the phone uses differs between vendors.
func parsePhoneConfig(data []byte) (*phoneConfig, error) {
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '<' {
		return parseXML(data)
	}
	return parseKeyValue(data)
}

func (p *phoneConfig) set(key, value string, line int) error {
	if prev, ok := p.keys[key]; ok {
		return fmt.Errorf("line %d: %s is set twice (first on line %d)", line, key, prev.line)
	}
	p.keys[key] = entry{value, line}
	return nil
}

// addNotes takes the comment's lines that start with the marker (after
// blanks and, in key = value files, the "#" that opens the comment).
func (p *phoneConfig) addNotes(comment string, firstLine int) {
	for i, l := range strings.Split(comment, "\n") {
		l = strings.TrimLeft(l, "# \t")
		if after, ok := strings.CutPrefix(l, marker); ok {
			p.notes = append(p.notes, note{strings.TrimSpace(after), firstLine + i})
		}
	}
}

// parseKeyValue reads Yealink's format: "key = value" lines, "#" comments
// (the first line is "#!version:1.0.0.1"). A value may be quoted.
func parseKeyValue(data []byte) (*phoneConfig, error) {
	p := &phoneConfig{format: "yealink", keys: map[string]entry{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			p.addNotes(line, n)
		default:
			key, value, ok := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return nil, fmt.Errorf("line %d: want key = value, got %q", n, line)
			}
			value = strings.TrimSpace(value)
			if u, err := strconv.Unquote(value); err == nil && strings.HasPrefix(value, `"`) {
				value = u
			}
			if err := p.set(key, value, n); err != nil {
				return nil, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseXML reads the three XML dialects:
//   - Poly (<polycomConfig>): every attribute of every element is a
//     parameter (reg.1.server.2.address="...").
//   - Cisco MPP (<flat-profile>): each child element of the root is a
//     parameter, its text the value; attributes (ua="na") are not values.
//   - Grandstream (<gs_provision><config>): each child element of <config>
//     is a P-value, its text the value.
func parseXML(data []byte) (*phoneConfig, error) {
	p := &phoneConfig{keys: map[string]entry{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []string
	var text strings.Builder
	leafDepth := 0 // depth of the elements that are parameters; 0 for Poly
	start := int64(0)
	leafLine := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		end := dec.InputOffset()
		line := lineAt(data, start)
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			if len(stack) == 1 {
				switch t.Name.Local {
				case "polycomConfig":
					p.format = "poly"
				case "flat-profile":
					p.format, leafDepth = "cisco-mpp", 2
				case "gs_provision":
					p.format, leafDepth = "grandstream", 3
				default:
					return nil, fmt.Errorf("line %d: root element <%s> is not a Poly, Cisco MPP or Grandstream configuration", line, t.Name.Local)
				}
			}
			if p.format == "poly" {
				raw := data[start:end]
				for _, a := range t.Attr {
					at := line + bytes.Count(raw[:max(0, bytes.Index(raw, []byte(a.Name.Local+"=")))], []byte("\n"))
					if err := p.set(a.Name.Local, a.Value, at); err != nil {
						return nil, err
					}
				}
			}
			if len(stack) == leafDepth && (p.format == "cisco-mpp" || stack[1] == "config") {
				text.Reset()
				leafLine = line
			}
		case xml.CharData:
			if len(stack) == leafDepth {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == leafDepth && (p.format == "cisco-mpp" || stack[1] == "config") {
				if err := p.set(t.Name.Local, strings.TrimSpace(text.String()), leafLine); err != nil {
					return nil, err
				}
			}
			stack = stack[:len(stack)-1]
		case xml.Comment:
			// The comment's text starts 4 bytes ("<!--") after start.
			p.addNotes(string(t), lineAt(data, start+4))
		}
		start = end
	}
	if p.format == "" {
		return nil, errors.New("no XML root element")
	}
	return p, nil
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	return 1 + bytes.Count(data[:off], []byte("\n"))
}
