package account

import (
	"slices"
	"strings"
)

// Trunk limits.
const (
	MaxTrunkWeight           = 65535
	MaxTrunkOptionsIntervalS = 3600
)

// MaxCallsPerUserLimit bounds a site's outbound max_calls_per_user.
const MaxCallsPerUserLimit = 1000

// codecs lists the codec names a trunk may offer, as written in SDP.
var codecs = []string{"PCMU", "PCMA", "G722", "G729", "opus", "telephone-event"}

// Codecs returns the codec names a trunk may list, as written in SDP.
func Codecs() []string { return slices.Clone(codecs) }

const codecList = "PCMU, PCMA, G722, G729, opus, telephone-event"

func knownCodec(name string) bool { return slices.Contains(codecs, name) }

func (c *checker) checkTrunks() {
	seen := make(map[string]int, len(c.s.Trunks))
	for i := range c.s.Trunks {
		t := &c.s.Trunks[i]
		p := index("trunks", i)
		c.indexID(seen, "trunks", "trunk", t.ID, i)
		c.siteRef("trunks", i, t.Site)
		switch {
		case t.Host == "":
			c.add(p+".host", "required: the SBC's host name or IP address")
		case !isHost(t.Host):
			c.addf(p+".host", "%q is not a host name or IP address", t.Host)
		}
		if t.Port < 1 || t.Port > 65535 {
			c.addf(p+".port", "must be 1 to 65535, got %d (5060 is usual for udp and tcp, 5061 for tls)", t.Port)
		}
		switch t.Transport {
		case "udp", "tcp", "tls":
		case "":
			c.add(p+".transport", "required: one of udp, tcp or tls")
		default:
			c.addf(p+".transport", "unknown transport %q; use udp, tcp or tls (lower case)", t.Transport)
		}
		if t.Priority < 0 {
			c.addf(p+".priority", "must be 0 or more (lower is tried first), got %d", t.Priority)
		}
		if t.Weight < 0 || t.Weight > MaxTrunkWeight {
			c.addf(p+".weight", "must be 0 to %d, got %d", MaxTrunkWeight, t.Weight)
		}
		if t.OptionsIntervalS < 1 || t.OptionsIntervalS > MaxTrunkOptionsIntervalS {
			c.addf(p+".options_interval_s", "must be 1 to %d seconds, got %d", MaxTrunkOptionsIntervalS, t.OptionsIntervalS)
		}
		if t.MaxChannels < 1 {
			c.addf(p+".max_channels", "must be at least 1, got %d", t.MaxChannels)
		}
		c.checkCodecs(t.Codecs, p+".codecs")
		switch t.SRTP {
		case "", SRTPOff, SRTPSDES:
		default:
			c.addf(p+".srtp", "unknown srtp setting %q; use off (plain RTP) or sdes (SRTP keyed in SDP, RFC 4568)", t.SRTP)
		}
	}
}

// checkOutbound checks a site's toll-fraud policy, at p (sites[i].outbound).
func (c *checker) checkOutbound(o *Outbound, p string) {
	if o == nil {
		return
	}
	switch o.International {
	case "", InternationalSameCountry, InternationalAll:
		if len(o.AllowedCountries) > 0 {
			c.addf(p+".allowed_countries", "only used with international %q; set international to list or remove the countries", InternationalList)
		}
	case InternationalList:
		if len(o.AllowedCountries) == 0 {
			c.add(p+".allowed_countries", `required with international "list": name the countries calls may reach, e.g. ["GB", "+353", "NANP"]`)
		}
	default:
		c.addf(p+".international", "unknown setting %q; use same_country, list or all", o.International)
	}
	for j, entry := range o.AllowedCountries {
		ep := index(p+".allowed_countries", j)
		switch {
		case !isCountryEntry(entry):
			c.addf(ep, "%q is not a country; use an ISO 3166 alpha-2 code (GB), a calling code (+353) or NANP", entry)
		case slices.Contains(o.AllowedCountries[:j], entry):
			c.addf(ep, "%s is listed twice; remove one", entry)
		}
	}
	if o.MaxCallsPerUser < -1 || o.MaxCallsPerUser > MaxCallsPerUserLimit {
		c.addf(p+".max_calls_per_user", "must be -1 (no limit), 0 (the default, 2) or up to %d, got %d", MaxCallsPerUserLimit, o.MaxCallsPerUser)
	}
}

// isCountryEntry reports whether s is an allowed_countries entry: an ISO
// alpha-2 code, "+" and a 1 to 3 digit calling code, or "NANP".
func isCountryEntry(s string) bool {
	if code, ok := strings.CutPrefix(s, "+"); ok {
		return isDigits(code, 1, 3) && code[0] != '0'
	}
	return s == "NANP" || isCountry(s)
}

func (c *checker) checkCodecs(list []string, p string) {
	if len(list) == 0 {
		c.add(p, "required: list the codecs the SBC accepts, from "+codecList)
		return
	}
	audio := false
	for j, name := range list {
		cp := index(p, j)
		switch {
		case !knownCodec(name):
			c.addf(cp, "unknown codec %q; use one of %s (names are case-sensitive)", name, codecList)
		case slices.Contains(list[:j], name):
			c.addf(cp, "codec %s is listed twice; remove one", name)
		case name != "telephone-event":
			audio = true
		}
	}
	if !audio {
		c.add(p, "no audio codec: add at least one of PCMU, PCMA, G722, G729 or opus")
	}
}

func (c *checker) checkCallout() {
	co := &c.s.Callout
	if co.GreetingPrompt != "" && !isName(co.GreetingPrompt) {
		c.addf("callout.greeting_prompt", "%q is not a prompt name; use letters, digits, '.', '_', '-' and '/' between parts", co.GreetingPrompt)
	}
	dedicated := make(map[string]int)
	for i, id := range co.CallerIDs {
		p := index("callout.caller_ids", i)
		switch {
		case id.Country == "":
			c.add(p+".country", "required: the ISO 3166 alpha-2 code of the country this caller ID is used for, e.g. US")
		case !isCountry(id.Country):
			c.addf(p+".country", "%q is not an ISO 3166 alpha-2 code; use two upper-case letters, e.g. GB", id.Country)
		}
		if !isE164(id.Number) {
			c.add(p+".number", e164Message(id.Number))
		}
		if !id.Dedicated {
			continue
		}
		if first, dup := dedicated[id.Country]; dup {
			c.addf(p+".dedicated", "country %s already has a dedicated caller ID (caller_ids[%d]); at most one per country", id.Country, first)
			continue
		}
		dedicated[id.Country] = i
	}
}
