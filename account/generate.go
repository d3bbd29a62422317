package account

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// GenerateOptions sizes a synthetic account. Negative counts are zero; counts
// over the generator's limits are clamped to them (Users 1,000,000, SDGs
// 100,000, Numbers 2,000,000, Trunks 10,000, Sites 400).
type GenerateOptions struct {
	Users int
	// Numbers counts the users' DIDs (one per user while they last) and the
	// numbers[] entries (the rest: each site's main number first) together.
	Numbers int
	SDGs    int
	// Trunks is the total, spread over the sites in turn.
	Trunks int
	// Sites defaults, when zero, to one per 500 users, between 1 and 40.
	Sites int
	// Seed seeds the PCG generator: the same options give the same account.
	Seed uint64
}

// Generator limits and constants.
const (
	genMaxUsers   = 1_000_000
	genMaxSDGs    = 100_000
	genMaxNumbers = 2_000_000
	genMaxTrunks  = 10_000
	genMaxSites   = 400

	// DemoAdminBcrypt is bcrypt("outpost-admin"), the password of the demo
	// and generated accounts' admin user.
	DemoAdminBcrypt = "$2a$10$zRhThOuENffcJ.NMSccrMe6cDQs99SZV8v48//nIRcWZ4/.5AEwjS"
)

// GeneratedPassword is the SIP password Generate gives a user: pw-<username>,
// as in the demo account.
func GeneratedPassword(username string) string { return "pw-" + username }

// Generate builds a realistic account that validates: sites with emergency
// settings, users with extensions, DIDs and digest credentials, SDGs of
// every route type and group strategy (nesting at most MaxSDGDepth, never
// looping), routed numbers, trunks, call-out caller IDs, an admin (admin /
// outpost-admin) and embed origins. The same options give the same account.
func Generate(o GenerateOptions) *Snapshot {
	o = o.normalize()
	g := &generator{
		o:   o,
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		s: &Snapshot{
			Revision: 1,
			Account:  Account{ID: "acme", Name: "Acme Corp", SIPRealm: "acme.example"},
		},
	}
	// Extensions: users from 10^(w-1), SDGs from 9*10^(w-1), w digits wide.
	w := min(max(4, len(strconv.Itoa(o.Users+o.SDGs))+1), MaxExtensionDigits)
	g.extBase = 1
	for range w - 1 {
		g.extBase *= 10
	}
	g.sites()
	g.users()
	g.sdgs()
	g.numbers()
	g.trunks()
	g.extras()
	return g.s
}

func (o GenerateOptions) normalize() GenerateOptions {
	clamp := func(v, hi int) int { return min(max(v, 0), hi) }
	o.Users = clamp(o.Users, genMaxUsers)
	o.SDGs = clamp(o.SDGs, genMaxSDGs)
	o.Numbers = clamp(o.Numbers, genMaxNumbers)
	o.Trunks = clamp(o.Trunks, genMaxTrunks)
	if o.Sites <= 0 {
		o.Sites = min(max(1, o.Users/500), len(genCities))
	}
	o.Sites = clamp(o.Sites, genMaxSites)
	return o
}

type generator struct {
	o   GenerateOptions
	rng *rand.Rand
	s   *Snapshot

	extBase   int
	areaCodes []string
	nextLine  []int   // per site: next line number to hand out
	siteUsers [][]int // per site: indexes of its users
	dids      []string
	sdgDepth  []int // per SDG: how many SDGs a call to it passes through
}

// sites makes the offices: real cities first, then synthetic ones with
// unused area codes.
func (g *generator) sites() {
	n := g.o.Sites
	g.s.Sites = make([]Site, n)
	g.areaCodes = make([]string, n)
	g.nextLine = make([]int, n)
	g.siteUsers = make([][]int, n)
	used := map[string]bool{genExternalArea: true, "555": true}
	for _, c := range genCities {
		used[c.areaCode] = true
	}
	synthetic := 200
	for i := range n {
		var c genCity
		if i < len(genCities) {
			c = genCities[i]
		} else {
			for {
				synthetic++
				code := strconv.Itoa(synthetic)
				if code[1:] != "11" && code[1] != '9' && !used[code] {
					used[code] = true
					c = genCity{
						slug: "office-" + strconv.Itoa(i+1), city: "Springfield", region: "IL",
						areaCode: code, timezone: "America/Chicago", postal: "62701", street: "Commerce Dr",
					}
					break
				}
			}
		}
		g.areaCodes[i] = c.areaCode
		name := c.city + " Office"
		if i == 0 {
			name = "Headquarters"
		}
		g.s.Sites[i] = Site{
			ID:       c.slug,
			Name:     name,
			Country:  "US",
			Timezone: c.timezone,
			AreaCode: c.areaCode,
			Emergency: Emergency{
				Numbers: []string{"911", "933"},
				// ELINs come from the 555 exchange, which lineNumber skips.
				ELINPool: []string{"+1" + c.areaCode + "5550190", "+1" + c.areaCode + "5550191"},
				Address: Address{
					Street:     strconv.Itoa(100+g.rng.IntN(900)) + " " + c.street,
					City:       c.city,
					Region:     c.region,
					PostalCode: c.postal,
					Country:    "US",
				},
			},
		}
	}
}

// lineNumber hands out the site's next number: +1, the area code, an
// exchange from 200 up (555 excepted) and four digits.
func (g *generator) lineNumber(site int) string {
	k := g.nextLine[site]
	g.nextLine[site]++
	exchange := 200 + k/10000
	if exchange >= 555 {
		exchange++
	}
	return fmt.Sprintf("+1%s%03d%04d", g.areaCodes[site], exchange, k%10000)
}

func (g *generator) users() {
	n := g.o.Users
	realm := g.s.Account.SIPRealm
	g.s.Users = make([]User, n)
	taken := make(map[string]int, n)
	for i := range n {
		first := genFirstNames[g.rng.IntN(len(genFirstNames))]
		last := genLastNames[g.rng.IntN(len(genLastNames))]
		base := strings.ToLower(first + "." + last)
		username := base
		if k := taken[base]; k > 0 {
			username = base + strconv.Itoa(k+1)
		}
		taken[base]++
		site := g.rng.IntN(g.o.Sites)
		g.siteUsers[site] = append(g.siteUsers[site], i)
		u := User{
			ID:        "u-" + username,
			Site:      g.s.Sites[site].ID,
			Name:      first + " " + last,
			Email:     username + "@" + realm,
			Extension: strconv.Itoa(g.extBase + i),
			Numbers:   []string{},
			SIP: SIPCredentials{
				Username:  username,
				HA1MD5:    HA1(DigestMD5, username, realm, GeneratedPassword(username)),
				HA1SHA256: HA1(DigestSHA256, username, realm, GeneratedPassword(username)),
			},
		}
		if i < g.o.Numbers {
			did := g.lineNumber(site)
			u.Numbers = []string{did}
			g.dids = append(g.dids, did)
		}
		g.s.Users[i] = u
	}
}

var genStrategies = []string{StrategySimultaneous, StrategySequential, StrategyRotating, StrategyLongestIdle}

// sdgs makes the groups. SDG j routes only to SDGs before it whose depth
// leaves room, so the graph is acyclic and no deeper than MaxSDGDepth.
func (g *generator) sdgs() {
	n := g.o.SDGs
	g.s.SDGs = make([]SDG, n)
	g.sdgDepth = make([]int, n)
	groups := 0
	for j := range n {
		site := j % g.o.Sites
		if j >= g.o.Sites {
			site = g.rng.IntN(g.o.Sites)
		}
		dept := genDepartments[g.rng.IntN(len(genDepartments))]
		if j < g.o.Sites {
			dept = "Reception"
		}
		siteID := g.s.Sites[site].ID
		depth := 0 // deepest SDG this one routes to
		var r *Route
		switch k := g.rng.IntN(100); {
		case k < 45 && len(g.s.Users) > 0:
			r = g.groupRoute(site, genStrategies[groups%len(genStrategies)], j, &depth)
			groups++
		case k < 65:
			r = g.ivrRoute(site, j, &depth)
		case k < 75:
			if t := g.sdgTarget(j, &depth); t != nil {
				r = t
				break
			}
			fallthrough
		default:
			r = g.target(site, j, &depth)
		}
		g.sdgDepth[j] = depth + 1
		g.s.SDGs[j] = SDG{
			ID:        fmt.Sprintf("sdg-%s-%s-%d", siteID, slug(dept), j+1),
			Site:      siteID,
			Name:      dept + " (" + g.s.Sites[site].Emergency.Address.City + ")",
			Extension: strconv.Itoa(9*g.extBase + j),
			Route:     r,
		}
	}
}

func slug(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, " ", "-"))
}

func (g *generator) groupRoute(site int, strategy string, j int, depth *int) *Route {
	pool := g.siteUsers[site]
	if len(pool) == 0 {
		pool = nil
		for i := range g.s.Users {
			pool = append(pool, i)
			if len(pool) == 16 {
				break
			}
		}
	}
	want := min(len(pool), 2+g.rng.IntN(7))
	members := make([]string, 0, want)
	seen := make(map[int]bool, want)
	for len(members) < want {
		u := pool[g.rng.IntN(len(pool))]
		if !seen[u] {
			seen[u] = true
			members = append(members, g.s.Users[u].ID)
		}
	}
	r := &Route{Type: RouteGroup, Members: members, Strategy: strategy, RingTimeoutS: 15 + 5*g.rng.IntN(4)}
	if g.rng.IntN(2) == 0 {
		r.NoAnswer = g.target(site, j, depth)
	}
	return r
}

var genIVRKeys = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#"}

func (g *generator) ivrRoute(site, j int, depth *int) *Route {
	r := &Route{
		Type:     RouteIVR,
		Prompt:   fmt.Sprintf("menu-%d", j+1),
		TimeoutS: 5 + g.rng.IntN(6),
		Retries:  1 + g.rng.IntN(3),
		Options:  make(map[string]*Route),
	}
	for _, key := range genIVRKeys[:2+g.rng.IntN(5)] {
		r.Options[key] = g.target(site, j, depth)
	}
	if g.rng.IntN(10) < 6 {
		r.NoInput = g.target(site, j, depth)
	}
	return r
}

// target picks somewhere simple for a call to go from SDG j (or from a
// numbers[] entry, j = -1): an earlier SDG, a user, or a number.
func (g *generator) target(site, j int, depth *int) *Route {
	k := g.rng.IntN(10)
	if k < 4 {
		if r := g.sdgTarget(j, depth); r != nil {
			return r
		}
	}
	if k < 8 && len(g.s.Users) > 0 {
		pool := g.siteUsers[site]
		if len(pool) == 0 {
			return &Route{Type: RouteUser, ID: g.s.Users[g.rng.IntN(len(g.s.Users))].ID}
		}
		return &Route{Type: RouteUser, ID: g.s.Users[pool[g.rng.IntN(len(pool))]].ID}
	}
	// A user's DID is followed internally to the user; the 202 numbers are
	// outside the account and go out through a trunk.
	if len(g.dids) > 0 && k == 8 {
		return &Route{Type: RouteNumber, Number: g.dids[g.rng.IntN(len(g.dids))]}
	}
	return &Route{Type: RouteNumber, Number: fmt.Sprintf("+1%s55501%02d", genExternalArea, g.rng.IntN(100))}
}

// sdgTarget routes to an SDG before j with room under MaxSDGDepth, raising
// *depth to its depth; nil if a few tries find none.
func (g *generator) sdgTarget(j int, depth *int) *Route {
	if j < 0 {
		j = len(g.s.SDGs)
	}
	for range 4 {
		if j == 0 {
			return nil
		}
		k := g.rng.IntN(j)
		if g.sdgDepth[k] < MaxSDGDepth {
			*depth = max(*depth, g.sdgDepth[k])
			return &Route{Type: RouteSDG, ID: g.s.SDGs[k].ID}
		}
	}
	return nil
}

// numbers makes the numbers[] entries from what the users' DIDs left: each
// site's main number first, routed to its reception SDG, then the rest.
func (g *generator) numbers() {
	n := g.o.Numbers - len(g.dids)
	g.s.Numbers = make([]Number, n)
	for i := range n {
		site := i
		main := i < g.o.Sites
		if !main {
			site = g.rng.IntN(g.o.Sites)
		}
		num := g.lineNumber(site)
		var r *Route
		switch k := g.rng.IntN(10); {
		case main && site < len(g.s.SDGs):
			r = &Route{Type: RouteSDG, ID: g.s.SDGs[site].ID}
		case len(g.s.SDGs) > 0 && (k < 6 || len(g.s.Users) == 0):
			r = &Route{Type: RouteSDG, ID: g.s.SDGs[g.rng.IntN(len(g.s.SDGs))].ID}
		case len(g.s.Users) > 0:
			r = &Route{Type: RouteUser, ID: g.s.Users[g.rng.IntN(len(g.s.Users))].ID}
		default:
			r = g.target(site, -1, new(int))
		}
		if main {
			g.s.Sites[site].MainNumber = num
		}
		g.s.Numbers[i] = Number{Number: num, Site: g.s.Sites[site].ID, Route: r}
	}
}

func (g *generator) trunks() {
	n := g.o.Trunks
	g.s.Trunks = make([]Trunk, n)
	perSite := make([]int, g.o.Sites)
	transports := []string{"udp", "tcp", "tls"}
	for k := range n {
		site := k % g.o.Sites
		nth := perSite[site]
		perSite[site]++
		transport := transports[g.rng.IntN(len(transports))]
		port := 5060
		if transport == "tls" {
			port = 5061
		}
		st := &g.s.Sites[site]
		g.s.Trunks[k] = Trunk{
			ID:               fmt.Sprintf("sbc-%s-%d", st.ID, nth+1),
			Site:             st.ID,
			Name:             fmt.Sprintf("%s SBC %d", st.Emergency.Address.City, nth+1),
			Host:             fmt.Sprintf("sbc%d.%s.%s", nth+1, st.ID, g.s.Account.SIPRealm),
			Port:             port,
			Transport:        transport,
			Priority:         10 * (nth + 1),
			Weight:           100,
			OptionsIntervalS: 10 + 5*g.rng.IntN(5),
			MaxChannels:      []int{23, 30, 60, 120}[g.rng.IntN(4)],
			Codecs:           append([]string(nil), genCodecSets[g.rng.IntN(len(genCodecSets))]...),
		}
	}
}

// extras fills in the call-out settings, the admin and the embed origins.
func (g *generator) extras() {
	usCallerID := g.s.Sites[0].MainNumber
	switch {
	case usCallerID == "" && len(g.dids) > 0:
		usCallerID = g.dids[0]
	case usCallerID == "":
		usCallerID = g.s.Sites[0].Emergency.ELINPool[0]
	}
	g.s.Callout = Callout{
		GreetingPrompt: "callout-greeting",
		RequirePress1:  true,
		CallerIDs: []CallerID{
			{Country: "US", Number: usCallerID, Dedicated: true},
			{Country: "GB", Number: "+442079460100"},
			{Country: "GB", Number: "+442079460101"},
		},
	}
	g.s.Admins = []Admin{{Username: "admin", Role: RoleAdmin, Bcrypt: DemoAdminBcrypt}}
	g.s.Embed = Embed{AllowedOrigins: []string{"https://crm.acme.example", "https://intranet.acme.example"}}
}
