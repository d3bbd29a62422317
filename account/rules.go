package account

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Limits the rules enforce.
const (
	MinExtensionDigits = 2
	MaxExtensionDigits = 8
	// MaxSDGDepth is the most SDGs one call may pass through, counting the
	// first: an SDG routing to an SDG routing to an SDG is three deep.
	MaxSDGDepth = 8
)

// checker walks one snapshot and collects every problem. It indexes ids
// first so references resolve whatever the order of the document.
type checker struct {
	s        *Snapshot
	problems []Problem

	sites map[string]int // id -> index of the first element with it
	users map[string]int
	sdgs  map[string]int

	// accountNumbers maps a numbers[] entry to its index: a route to such a
	// number is followed internally, so it is an edge of the loop graph.
	accountNumbers map[string]int
	extensions     map[string]holder // extension -> who has it
	numbers        map[string]holder // user DIDs and numbers[] entries
	emergency      map[string]int    // emergency dial string -> site index

	graph graph
	route []pathElem // path of the route being checked
}

// holder names the element owning an extension or a number, for messages.
// Paths are built only when a problem is reported: a large valid account
// allocates none.
type holder struct {
	list string // "users", "sdgs", "numbers"
	i, j int    // j >= 0: users[i].numbers[j]
}

func (h holder) String() string {
	p := index(h.list, h.i)
	if h.j >= 0 {
		p += index(".numbers", h.j)
	}
	return p
}

// numberPath is where the holder's number is written.
func (h holder) numberPath() string {
	if h.list == "numbers" {
		return h.String() + ".number"
	}
	return h.String()
}

func index(list string, i int) string { return list + "[" + strconv.Itoa(i) + "]" }

func (c *checker) add(path, msg string) {
	c.problems = append(c.problems, Problem{Path: path, Message: msg})
}

func (c *checker) addf(path, format string, args ...any) {
	c.add(path, fmt.Sprintf(format, args...))
}

func validate(s *Snapshot, currentRevision int64) error {
	if s == nil {
		return &ValidationError{Problems: []Problem{{Path: "", Message: "no snapshot: the document is empty"}}}
	}
	c := &checker{
		s:              s,
		sites:          make(map[string]int, len(s.Sites)),
		users:          make(map[string]int, len(s.Users)),
		sdgs:           make(map[string]int, len(s.SDGs)),
		accountNumbers: make(map[string]int, len(s.Numbers)),
		extensions:     make(map[string]holder, len(s.Users)+len(s.SDGs)),
		numbers:        make(map[string]holder, len(s.Users)+len(s.Numbers)),
		emergency:      make(map[string]int),
	}
	c.graph.init(len(s.SDGs), len(s.Numbers))

	c.checkRevision(currentRevision)
	c.checkAccount()
	c.indexIDs()
	c.checkSites()
	c.checkUsers()
	c.checkSDGs()
	c.checkUsernameClashes()
	c.checkNumbers()
	c.checkTrunks()
	c.checkCallout()
	c.checkAdmins()
	c.checkEmbed()
	c.checkPrompts()
	c.checkLoops()

	if len(c.problems) == 0 {
		return nil
	}
	sortProblems(c.problems)
	return &ValidationError{Problems: c.problems}
}

func (c *checker) checkRevision(current int64) {
	rev := c.s.Revision
	switch {
	case rev <= current:
		c.addf("revision", "revision %d is not greater than the current revision %d; publish with revision %d or higher",
			rev, current, max(current+1, 1))
	case rev < 1:
		c.addf("revision", "revision %d is not allowed; revisions start at 1", rev)
	}
}

func (c *checker) checkAccount() {
	a := c.s.Account
	switch {
	case a.ID == "":
		c.add("account.id", "required: set the account id")
	case !isID(a.ID):
		c.addf("account.id", "%q is not a valid id; %s", a.ID, idRule)
	}
	switch {
	case a.SIPRealm == "":
		c.add("account.sip_realm", "required: set the SIP digest realm, a host name such as acme.example")
	case !isHostname(a.SIPRealm):
		c.addf("account.sip_realm", "%q is not a valid host name; use letters, digits, hyphens and dots, e.g. acme.example", a.SIPRealm)
	}
}

const idRule = "use 1 to 128 letters, digits, '.', '_', '-', ':' or '@'"

// indexIDs records every site, user and SDG id and every numbers[] entry,
// reporting missing, malformed and duplicate ids.
func (c *checker) indexIDs() {
	s := c.s
	for i := range s.Sites {
		c.indexID(c.sites, "sites", "site", s.Sites[i].ID, i)
	}
	for i := range s.Users {
		c.indexID(c.users, "users", "user", s.Users[i].ID, i)
	}
	for i := range s.SDGs {
		c.indexID(c.sdgs, "sdgs", "sdg", s.SDGs[i].ID, i)
	}
	for i := range s.Numbers {
		if n := s.Numbers[i].Number; n != "" {
			if _, ok := c.accountNumbers[n]; !ok {
				c.accountNumbers[n] = i
			}
		}
	}
}

func (c *checker) indexID(m map[string]int, list, noun, id string, i int) {
	path := func() string { return index(list, i) + ".id" }
	switch {
	case id == "":
		c.addf(path(), "required: give the %s an id", noun)
		return
	case !isID(id):
		c.addf(path(), "%q is not a valid id; %s", id, idRule)
	}
	if first, dup := m[id]; dup {
		c.addf(path(), "duplicate id %q: %s has it already; ids must be unique", id, index(list, first))
		return
	}
	m[id] = i
}

// siteRef checks the site field of list[i].
func (c *checker) siteRef(list string, i int, id string) {
	if id == "" {
		c.add(index(list, i)+".site", "required: name the site (a sites[].id)")
		return
	}
	if _, ok := c.sites[id]; !ok {
		c.addf(index(list, i)+".site", "no site has id %q; use one of the sites[].id", id)
	}
}

func (c *checker) checkSites() {
	mains := make(map[string]int, len(c.s.Sites))
	elins := make(map[string]string)
	for i := range c.s.Sites {
		st := &c.s.Sites[i]
		p := index("sites", i)
		switch {
		case st.Country == "":
			c.add(p+".country", "required: the ISO 3166 alpha-2 country code, e.g. US")
		case !isCountry(st.Country):
			c.addf(p+".country", "%q is not an ISO 3166 alpha-2 code; use two upper-case letters, e.g. US", st.Country)
		}
		if st.Timezone != "" && !isTimezone(st.Timezone) {
			c.addf(p+".timezone", "%q is not a time zone name; use an IANA name such as America/Chicago", st.Timezone)
		}
		if st.AreaCode != "" && !isDigits(st.AreaCode, 1, 6) {
			c.addf(p+".area_code", "%q is not an area code; use 1 to 6 digits, e.g. 650", st.AreaCode)
		}
		if st.MainNumber != "" {
			if !isE164(st.MainNumber) {
				c.add(p+".main_number", e164Message(st.MainNumber))
			} else if first, dup := mains[st.MainNumber]; dup {
				c.addf(p+".main_number", "%s is already the main number of %s; each site needs its own", st.MainNumber, index("sites", first))
			} else {
				mains[st.MainNumber] = i
			}
		}
		c.checkEmergency(&st.Emergency, p+".emergency", i, elins)
		c.checkOutbound(st.Outbound, p+".outbound")
		if a := st.Emergency.Address.Country; a != "" && !isCountry(a) {
			c.addf(p+".emergency.address.country", "%q is not an ISO 3166 alpha-2 code; use two upper-case letters, e.g. US", a)
		}
	}
}

func (c *checker) checkEmergency(e *Emergency, p string, site int, elins map[string]string) {
	seen := make(map[string]bool, len(e.Numbers))
	for j, n := range e.Numbers {
		np := index(p+".numbers", j)
		switch {
		case !isDigits(n, 2, 6):
			c.addf(np, "%q is not an emergency dial string; use 2 to 6 digits, e.g. 911", n)
		case seen[n]:
			c.addf(np, "emergency number %s is listed twice; remove one", n)
		default:
			seen[n] = true
			if _, ok := c.emergency[n]; !ok {
				c.emergency[n] = site
			}
		}
	}
	if len(e.Numbers) > 0 && len(e.ELINPool) == 0 {
		c.add(p+".elin_pool", "required when emergency numbers are set: add at least one E.164 number to present as caller ID on emergency calls")
	}
	for j, n := range e.ELINPool {
		np := index(p+".elin_pool", j)
		if !isE164(n) {
			c.add(np, e164Message(n))
			continue
		}
		if other, dup := elins[n]; dup {
			c.addf(np, "%s is already in %s; an ELIN must identify one site", n, other)
			continue
		}
		elins[n] = np
	}
}

func e164Message(n string) string {
	if n == "" {
		return "empty number; use E.164: +, country code, number, e.g. +16505550100"
	}
	return fmt.Sprintf("%q is not an E.164 number; write +, the country code and the number, digits only, e.g. +16505550100", n)
}

// claimExtension checks an extension and records its holder.
func (c *checker) claimExtension(ext string, h holder) {
	path := func() string { return h.String() + ".extension" }
	switch {
	case ext == "":
		c.add(path(), "required: give it an extension of 2 to 8 digits")
		return
	case !isDigits(ext, MinExtensionDigits, MaxExtensionDigits):
		c.addf(path(), "%q is not an extension; use 2 to 8 digits", ext)
		return
	}
	if site, ok := c.emergency[ext]; ok {
		c.addf(path(), "extension %s is an emergency number of %s; dialling it must reach emergency services, so pick another extension",
			ext, index("sites", site))
		return
	}
	if other, dup := c.extensions[ext]; dup {
		c.addf(path(), "extension %s is already used by %s; extensions must be unique across users and sdgs", ext, other)
		return
	}
	c.extensions[ext] = h
}

// claimNumber checks an account number (a user's DID or a numbers[] entry)
// and records its holder.
func (c *checker) claimNumber(n string, h holder) {
	if !isE164(n) {
		c.add(h.numberPath(), e164Message(n))
		return
	}
	if other, dup := c.numbers[n]; dup {
		c.addf(h.numberPath(), "number %s is already assigned to %s; a number can be routed to one place only", n, other)
		return
	}
	c.numbers[n] = h
}

func (c *checker) checkUsers() {
	usernames := make(map[string]int, len(c.s.Users))
	for i := range c.s.Users {
		u := &c.s.Users[i]
		c.siteRef("users", i, u.Site)
		if u.Email != "" && !isEmail(u.Email) {
			c.addf(index("users", i)+".email", "%q is not an e-mail address; use name@domain or leave it empty", u.Email)
		}
		c.claimExtension(u.Extension, holder{"users", i, -1})
		for j, n := range u.Numbers {
			c.claimNumber(n, holder{"users", i, j})
		}
		c.checkUsername(i, usernames)
		switch u.Priority {
		case "", PriorityNormal, PriorityEmergency, PriorityCommonArea:
		default:
			c.addf(index("users", i)+".priority", "unknown priority %q; use %s (the default), %s or %s (lower case)",
				u.Priority, PriorityNormal, PriorityEmergency, PriorityCommonArea)
		}
		c.checkVoicemail(i, u.Voicemail)
		switch {
		case u.SIP.HA1MD5 == "":
			c.add(index("users", i)+".sip.ha1_md5", "required: MD5(username:realm:password) as 32 lower-case hex digits")
		case !isLowerHex(u.SIP.HA1MD5, 32):
			c.add(index("users", i)+".sip.ha1_md5", "not an MD5 HA1: want exactly 32 lower-case hex digits, MD5(username:realm:password)")
		}
		switch {
		case u.SIP.HA1SHA256 == "":
			c.add(index("users", i)+".sip.ha1_sha256", "required: SHA-256(username:realm:password) as 64 lower-case hex digits")
		case !isLowerHex(u.SIP.HA1SHA256, 64):
			c.add(index("users", i)+".sip.ha1_sha256", "not a SHA-256 HA1: want exactly 64 lower-case hex digits, SHA-256(username:realm:password)")
		}
	}
}

// checkUsername checks user i's SIP user name; seen maps names to users.
func (c *checker) checkUsername(i int, seen map[string]int) {
	name := c.s.Users[i].SIP.Username
	p := func() string { return index("users", i) + ".sip.username" }
	switch {
	case name == "":
		c.add(p(), "required: the SIP user name the phone registers with")
		return
	case !isSIPUser(name):
		c.addf(p(), "%q is not a valid SIP user name; use 1 to 64 letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? /", name)
		return
	}
	if first, dup := seen[name]; dup {
		c.addf(p(), "user name %q is already used by %s; SIP user names must be unique", name, index("users", first))
		return
	}
	seen[name] = i
}

// checkUsernameClashes runs once every extension is known: a numeric user
// name that is someone else's extension makes "sip:1002@realm" ambiguous.
func (c *checker) checkUsernameClashes() {
	for i := range c.s.Users {
		name := c.s.Users[i].SIP.Username
		if name == "" || !allDigits(name) {
			continue
		}
		if h, ok := c.extensions[name]; ok && (h.list != "users" || h.i != i) {
			c.addf(index("users", i)+".sip.username",
				"user name %q is the extension of %s; calls to it would be ambiguous, pick another user name", name, h)
		}
	}
}

func (c *checker) checkSDGs() {
	for i := range c.s.SDGs {
		g := &c.s.SDGs[i]
		c.siteRef("sdgs", i, g.Site)
		c.claimExtension(g.Extension, holder{"sdgs", i, -1})
		c.graph.begin(c.graph.sdgNode(i))
		if g.Route == nil {
			c.add(index("sdgs", i)+".route", "required: say where calls to this sdg go (a user, group, ivr, number, sdg, conference or voicemail route)")
			continue
		}
		c.route = append(c.route[:0], elem("sdgs", i), elem(".route", -1))
		c.checkRoute(g.Route, 0)
	}
}

func (c *checker) checkNumbers() {
	for i := range c.s.Numbers {
		n := &c.s.Numbers[i]
		c.claimNumber(n.Number, holder{"numbers", i, -1})
		c.siteRef("numbers", i, n.Site)
		c.graph.begin(c.graph.numberNode(i))
		if n.Route == nil {
			c.add(index("numbers", i)+".route", "required: say where calls to this number go")
			continue
		}
		c.route = append(c.route[:0], elem("numbers", i), elem(".route", -1))
		c.checkRoute(n.Route, 0)
	}
}

// sortProblems orders problems as the document is laid out: by top-level key
// in document order, then by the index of the element they are in (users[9]
// before users[10]). Problems within one element keep the order they were
// found in, which follows the element's fields.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		ra, ia := elementOf(a.Path)
		rb, ib := elementOf(b.Path)
		if ra != rb {
			return ra - rb
		}
		return ia - ib
	})
}

var topKeys = []string{"revision", "account", "sites", "users", "sdgs", "numbers", "trunks", "callout", "admins", "embed", "prompts"}

// elementOf returns the rank of the path's top-level key and the first index
// in the path (-1 if none).
func elementOf(path string) (rank, idx int) {
	key := path
	if i := strings.IndexAny(path, ".["); i >= 0 {
		key = path[:i]
	}
	rank = slices.Index(topKeys, key)
	if rank < 0 {
		rank = len(topKeys)
	}
	idx = -1
	if open := strings.IndexByte(path, '['); open >= 0 {
		if end := strings.IndexByte(path[open:], ']'); end > 0 {
			if n, err := strconv.Atoi(path[open+1 : open+end]); err == nil {
				idx = n
			}
		}
	}
	return rank, idx
}
