package account

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Route limits.
const (
	MaxRingTimeoutS = 600
	MaxIVRTimeoutS  = 60
	MaxIVRRetries   = 10
)

const routeTypes = "user, group, ivr, number, sdg, conference or voicemail"
const strategies = "simultaneous, sequential, rotating or longest_idle"

// routeField is one optional field of a Route, as a bit.
type routeField uint16

const (
	fieldID routeField = 1 << iota
	fieldMembers
	fieldStrategy
	fieldRingTimeout
	fieldNoAnswer
	fieldPrompt
	fieldTimeout
	fieldRetries
	fieldOptions
	fieldNoInput
	fieldNumber
)

var routeFieldNames = []struct {
	f    routeField
	name string
}{
	{fieldID, "id"}, {fieldMembers, "members"}, {fieldStrategy, "strategy"},
	{fieldRingTimeout, "ring_timeout_s"}, {fieldNoAnswer, "no_answer"},
	{fieldPrompt, "prompt"}, {fieldTimeout, "timeout_s"}, {fieldRetries, "retries"},
	{fieldOptions, "options"}, {fieldNoInput, "no_input"}, {fieldNumber, "number"},
}

// allowedFields says which fields each route type uses.
var allowedFields = map[string]routeField{
	RouteUser:   fieldID,
	RouteSDG:    fieldID,
	RouteNumber: fieldNumber,
	RouteGroup:  fieldMembers | fieldStrategy | fieldRingTimeout | fieldNoAnswer,
	RouteIVR:    fieldPrompt | fieldTimeout | fieldRetries | fieldOptions | fieldNoInput,
	// A conference route is its type alone: it ends the route (the caller
	// joins a live call by its PIN), so it makes no graph edge and cannot
	// loop.
	RouteConference: 0,
	// A voicemail route names a mailbox (a user or an SDG) and ends the
	// route like a conference route: no graph edge, no loop.
	RouteVoicemail: fieldID,
}

// presentFields lists the fields set on r. An empty list or object counts as
// set: it was written in the document.
func presentFields(r *Route) routeField {
	var f routeField
	set := func(ok bool, bit routeField) {
		if ok {
			f |= bit
		}
	}
	set(r.ID != "", fieldID)
	set(r.Members != nil, fieldMembers)
	set(r.Strategy != "", fieldStrategy)
	set(r.RingTimeoutS != 0, fieldRingTimeout)
	set(r.NoAnswer != nil, fieldNoAnswer)
	set(r.Prompt != "", fieldPrompt)
	set(r.TimeoutS != 0, fieldTimeout)
	set(r.Retries != 0, fieldRetries)
	set(r.Options != nil, fieldOptions)
	set(r.NoInput != nil, fieldNoInput)
	set(r.Number != "", fieldNumber)
	return f
}

// A route's path is kept as a stack of elements in the checker and spelled
// out only when a problem is reported: a large valid account allocates no
// path strings.
type pathElem struct {
	name   string // appended as is: "sdgs", ".route", ".options"
	i      int    // appended as [i] when >= 0
	key    string // an options key, appended by keyPath when hasKey
	hasKey bool
}

func elem(name string, i int) pathElem { return pathElem{name: name, i: i} }
func optionElem(key string) pathElem {
	return pathElem{name: ".options", i: -1, key: key, hasKey: true}
}

func render(elems []pathElem) string {
	var b strings.Builder
	for _, e := range elems {
		b.WriteString(e.name)
		if e.i >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.i))
			b.WriteByte(']')
		}
		if e.hasKey {
			b.WriteString(keyPath(e.key))
		}
	}
	return b.String()
}

func (c *checker) push(e pathElem) { c.route = append(c.route, e) }
func (c *checker) pop()            { c.route = c.route[:len(c.route)-1] }

// here is the path of the route being checked.
func (c *checker) here() string { return render(c.route) }

// field is the path of a field of the route being checked.
func (c *checker) field(name string) string { return render(c.route) + "." + name }

// MaxRouteNesting bounds how deep routes may be written inside one another
// (no_answer, no_input, options), however they are linked.
const MaxRouteNesting = 16

// checkRoute checks the route r at the path on c.route, nested in nesting routes, adding the
// graph edges it makes to the current node.
func (c *checker) checkRoute(r *Route, nesting int) {
	if nesting >= MaxRouteNesting {
		c.addf(c.here(), "routes are nested more than %d deep; move the inner routes into sdgs and route to them", MaxRouteNesting)
		return
	}
	allowed, known := allowedFields[r.Type]
	if !known {
		if r.Type == "" {
			c.add(c.field("type"), "required: the route type, one of "+routeTypes)
		} else {
			c.addf(c.field("type"), "unknown route type %q; use one of %s", r.Type, routeTypes)
		}
		return
	}
	if extra := presentFields(r) &^ allowed; extra != 0 {
		for _, fn := range routeFieldNames {
			if extra&fn.f != 0 {
				c.addf(c.field(fn.name), "not used by a %s route; remove it", r.Type)
			}
		}
	}
	switch r.Type {
	case RouteUser:
		if r.ID == "" {
			c.add(c.field("id"), "required: the id of the user to ring")
		} else if _, ok := c.users[r.ID]; !ok {
			c.addf(c.field("id"), "no user has id %q; use one of the users[].id", r.ID)
		}
	case RouteSDG:
		c.sdgRoute(r)
	case RouteVoicemail:
		c.voicemailRoute(r)
	case RouteNumber:
		if !isE164(r.Number) {
			c.add(c.field("number"), e164Message(r.Number))
		} else if to, ok := c.accountNumbers[r.Number]; ok {
			// A route to one of the account's numbers[] is followed internally.
			c.graph.addEdge(c.graph.numberNode(to), r)
		}
	case RouteGroup:
		c.groupRoute(r, nesting)
	case RouteIVR:
		c.ivrRoute(r, nesting)
	}
}

func (c *checker) sdgRoute(r *Route) {
	if r.ID == "" {
		c.add(c.field("id"), "required: the id of the sdg to send calls to")
		return
	}
	to, ok := c.sdgs[r.ID]
	if !ok {
		c.addf(c.field("id"), "no sdg has id %q; use one of the sdgs[].id", r.ID)
		return
	}
	c.graph.addEdge(c.graph.sdgNode(to), r)
}

// voicemailRoute checks a voicemail route's mailbox: a user's or an SDG's.
func (c *checker) voicemailRoute(r *Route) {
	if r.ID == "" {
		c.add(c.field("id"), "required: the id of the user or sdg whose mailbox takes the message")
		return
	}
	if _, ok := c.users[r.ID]; ok {
		return
	}
	if _, ok := c.sdgs[r.ID]; ok {
		return
	}
	c.addf(c.field("id"), "no user or sdg has id %q; use one of the users[].id or sdgs[].id", r.ID)
}

func (c *checker) groupRoute(r *Route, nesting int) {
	if len(r.Members) == 0 {
		c.add(c.field("members"), "required: list the ids of the users to ring")
	}
	var seen map[string]int // only for long lists: short ones are scanned
	if len(r.Members) > 16 {
		seen = make(map[string]int, len(r.Members))
	}
	for i, m := range r.Members {
		mp := func() string { return index(c.field("members"), i) }
		if m == "" {
			c.add(mp(), "empty user id; list the ids of the users to ring")
			continue
		}
		first := -1
		if seen != nil {
			if f, dup := seen[m]; dup {
				first = f
			} else {
				seen[m] = i
			}
		} else {
			first = slices.Index(r.Members[:i], m)
		}
		if first >= 0 {
			c.addf(mp(), "user %q is already a member (members[%d]); list each user once", m, first)
			continue
		}
		if _, ok := c.users[m]; !ok {
			c.addf(mp(), "no user has id %q; use one of the users[].id", m)
		}
	}
	switch {
	case r.Strategy == "":
		c.add(c.field("strategy"), "required: how to ring the members, one of "+strategies)
	case r.Strategy != StrategySimultaneous && r.Strategy != StrategySequential &&
		r.Strategy != StrategyRotating && r.Strategy != StrategyLongestIdle:
		c.addf(c.field("strategy"), "unknown strategy %q; use one of %s", r.Strategy, strategies)
	}
	if r.RingTimeoutS < 1 || r.RingTimeoutS > MaxRingTimeoutS {
		c.addf(c.field("ring_timeout_s"), "must be 1 to %d seconds, got %d", MaxRingTimeoutS, r.RingTimeoutS)
	}
	if r.NoAnswer != nil {
		c.push(elem(".no_answer", -1))
		c.checkRoute(r.NoAnswer, nesting+1)
		c.pop()
	}
}

func (c *checker) ivrRoute(r *Route, nesting int) {
	switch {
	case r.Prompt == "":
		c.add(c.field("prompt"), "required: the name of the prompt to play, e.g. main-menu")
	case !isName(r.Prompt):
		c.addf(c.field("prompt"), "%q is not a prompt name; use letters, digits, '.', '_', '-' and '/' between parts", r.Prompt)
	}
	if r.TimeoutS < 1 || r.TimeoutS > MaxIVRTimeoutS {
		c.addf(c.field("timeout_s"), "must be 1 to %d seconds, got %d", MaxIVRTimeoutS, r.TimeoutS)
	}
	if r.Retries < 0 || r.Retries > MaxIVRRetries {
		c.addf(c.field("retries"), "must be 0 to %d, got %d", MaxIVRRetries, r.Retries)
	}
	if len(r.Options) == 0 {
		c.add(c.field("options"), "required: map at least one key (0-9, * or #) to a route")
	}
	for _, key := range slices.Sorted(maps.Keys(r.Options)) {
		c.push(optionElem(key))
		if len(key) != 1 || !isDigit(key[0]) && key[0] != '*' && key[0] != '#' {
			c.addf(c.here(), "%q is not a key; use one of 0-9, * or #", key)
		}
		if opt := r.Options[key]; opt == nil {
			c.add(c.here(), "required: the route for this key")
		} else {
			c.checkRoute(opt, nesting+1)
		}
		c.pop()
	}
	if r.NoInput != nil {
		c.push(elem(".no_input", -1))
		c.checkRoute(r.NoInput, nesting+1)
		c.pop()
	}
}

// routePath finds target in the tree under r, written at the path elems,
// and returns its path; "" if it is not there. It names the edge that
// closes a loop.
func routePath(r *Route, elems []pathElem, target *Route) string {
	if r == nil || len(elems) > MaxRouteNesting+4 {
		return ""
	}
	if r == target {
		return render(elems)
	}
	if s := routePath(r.NoAnswer, append(elems, elem(".no_answer", -1)), target); s != "" {
		return s
	}
	for key, opt := range r.Options {
		if s := routePath(opt, append(elems, optionElem(key)), target); s != "" {
			return s
		}
	}
	return routePath(r.NoInput, append(elems, elem(".no_input", -1)), target)
}

// keyPath renders an options key as a path element: ".7", or `["x y"]` for
// keys that would not read back unambiguously.
func keyPath(key string) string {
	simple := key != ""
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isAlnum(c) && strings.IndexByte("*#-_", c) < 0 {
			simple = false
			break
		}
	}
	if simple {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}
