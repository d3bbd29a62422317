package account

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDemoSnapshotValidates(t *testing.T) {
	if err := Validate(demo(t), 0); err != nil {
		t.Fatalf("the reference snapshot must validate: %v", err)
	}
}

// ruleCase mutates a fresh reference snapshot and names the problems
// Validate must report, exactly.
type ruleCase struct {
	name    string
	current int64 // the cluster's revision
	mutate  func(s *Snapshot)
	want    []string // problem paths, in order; nil: valid
	msg     string   // if set, the first message contains it
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := demo(t)
			tc.mutate(s)
			err := Validate(s, tc.current)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			checkProblems(t, err, tc.want, tc.msg)
		})
	}
}

func TestRulesRevisionAndAccount(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "revision above current", current: 0, mutate: func(s *Snapshot) { s.Revision = 7 }},
		{name: "revision equal to current", current: 1, mutate: func(s *Snapshot) {},
			want: []string{"revision"}, msg: "revision 1 is not greater than the current revision 1"},
		{name: "revision below current", current: 9, mutate: func(s *Snapshot) { s.Revision = 3 },
			want: []string{"revision"}, msg: "revision 3 is not greater than the current revision 9"},
		{name: "revision zero", mutate: func(s *Snapshot) { s.Revision = 0 },
			want: []string{"revision"}, msg: "revision 0"},
		{name: "revision negative", current: -5, mutate: func(s *Snapshot) { s.Revision = -1 },
			want: []string{"revision"}, msg: "revisions start at 1"},
		{name: "account id missing", mutate: func(s *Snapshot) { s.Account.ID = "" },
			want: []string{"account.id"}},
		{name: "account id with space", mutate: func(s *Snapshot) { s.Account.ID = "acme corp" },
			want: []string{"account.id"}},
		{name: "sip realm missing", mutate: func(s *Snapshot) { s.Account.SIPRealm = "" },
			want: []string{"account.sip_realm"}},
		{name: "sip realm not a host name", mutate: func(s *Snapshot) { s.Account.SIPRealm = "acme..example" },
			want: []string{"account.sip_realm"}},
		{name: "sip realm with underscore", mutate: func(s *Snapshot) { s.Account.SIPRealm = "acme_corp.example" },
			want: []string{"account.sip_realm"}},
	})
}

func TestRulesIDs(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "site id duplicate", mutate: func(s *Snapshot) { addSite(s, "hq") },
			want: []string{"sites[2].id"}, msg: "sites[0] has it already"},
		{name: "site id missing", mutate: func(s *Snapshot) { addSite(s, "") },
			want: []string{"sites[2].id"}},
		{name: "user id missing leaves its references dangling", mutate: func(s *Snapshot) { s.Users[0].ID = "" },
			want: []string{"users[0].id", "sdgs[0].route.members[0]"}},
		{name: "user id with slash", mutate: func(s *Snapshot) { addUser(s, "u/zed", "zed", "1005") },
			want: []string{"users[5].id"}},
		{name: "user id duplicate", mutate: func(s *Snapshot) { addUser(s, "u-alice", "alice2", "1005") },
			want: []string{"users[5].id"}, msg: "users[0]"},
		{name: "sdg id duplicate", mutate: func(s *Snapshot) { addSDG(s, "sdg-operator", "1950", userRoute("u-carol")) },
			want: []string{"sdgs[4].id"}},
		{name: "sdg id missing", mutate: func(s *Snapshot) { addSDG(s, "", "1950", userRoute("u-carol")) },
			want: []string{"sdgs[4].id"}},
		{name: "trunk id duplicate", mutate: func(s *Snapshot) { s.Trunks = append(s.Trunks, s.Trunks[0]) },
			want: []string{"trunks[2].id"}},
		{name: "trunk id missing", mutate: func(s *Snapshot) { s.Trunks[1].ID = "" },
			want: []string{"trunks[1].id"}},
	})
}

func TestRulesUsers(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "username missing", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "" },
			want: []string{"users[2].sip.username"}},
		{name: "username with space", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "carol chen" },
			want: []string{"users[2].sip.username"}},
		{name: "username with at sign", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "carol@acme" },
			want: []string{"users[2].sip.username"}},
		{name: "username with escape", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "carol%20c" }},
		{name: "username with bad escape", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "carol%2" },
			want: []string{"users[2].sip.username"}},
		{name: "username duplicate", mutate: func(s *Snapshot) { s.Users[1].SIP.Username = "alice" },
			want: []string{"users[1].sip.username"}, msg: "users[0]"},
		{name: "username equal to own extension", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "1003" }},
		{name: "username equal to another's extension", mutate: func(s *Snapshot) { s.Users[2].SIP.Username = "1900" },
			want: []string{"users[2].sip.username"}, msg: "sdgs[0]"},
		{name: "ha1 md5 upper case", mutate: func(s *Snapshot) { s.Users[0].SIP.HA1MD5 = strings.ToUpper(s.Users[0].SIP.HA1MD5) },
			want: []string{"users[0].sip.ha1_md5"}},
		{name: "ha1 md5 short", mutate: func(s *Snapshot) { s.Users[0].SIP.HA1MD5 = s.Users[0].SIP.HA1MD5[:31] },
			want: []string{"users[0].sip.ha1_md5"}},
		{name: "ha1 md5 missing", mutate: func(s *Snapshot) { s.Users[0].SIP.HA1MD5 = "" },
			want: []string{"users[0].sip.ha1_md5"}},
		{name: "ha1 sha256 missing", mutate: func(s *Snapshot) { s.Users[0].SIP.HA1SHA256 = "" },
			want: []string{"users[0].sip.ha1_sha256"}},
		{name: "ha1 sha256 is an md5", mutate: func(s *Snapshot) { s.Users[0].SIP.HA1SHA256 = s.Users[0].SIP.HA1MD5 },
			want: []string{"users[0].sip.ha1_sha256"}},
		{name: "email not an address", mutate: func(s *Snapshot) { s.Users[0].Email = "alice at acme" },
			want: []string{"users[0].email"}},
		{name: "email empty", mutate: func(s *Snapshot) { s.Users[0].Email = "" }},
	})
}

func TestRulesReferences(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "user site unknown", mutate: func(s *Snapshot) { s.Users[0].Site = "paris" },
			want: []string{"users[0].site"}, msg: `"paris"`},
		{name: "user site missing", mutate: func(s *Snapshot) { s.Users[0].Site = "" },
			want: []string{"users[0].site"}},
		{name: "sdg site unknown", mutate: func(s *Snapshot) { s.SDGs[1].Site = "paris" },
			want: []string{"sdgs[1].site"}},
		{name: "number site unknown", mutate: func(s *Snapshot) { s.Numbers[1].Site = "paris" },
			want: []string{"numbers[1].site"}},
		{name: "trunk site unknown", mutate: func(s *Snapshot) { s.Trunks[0].Site = "paris" },
			want: []string{"trunks[0].site"}},
		{name: "user route to unknown user", mutate: func(s *Snapshot) { s.SDGs[1].Route.ID = "u-zed" },
			want: []string{"sdgs[1].route.id"}, msg: `no user has id "u-zed"`},
		{name: "group member unknown", mutate: func(s *Snapshot) { s.SDGs[0].Route.Members[1] = "u-zed" },
			want: []string{"sdgs[0].route.members[1]"}},
		{name: "sdg route to unknown sdg", mutate: func(s *Snapshot) { s.SDGs[0].Route.NoAnswer.ID = "sdg-nope" },
			want: []string{"sdgs[0].route.no_answer.id"}, msg: `no sdg has id "sdg-nope"`},
		{name: "ivr option to unknown sdg", mutate: func(s *Snapshot) { s.SDGs[2].Route.Options["2"].ID = "sdg-nope" },
			want: []string{"sdgs[2].route.options.2.id"}},
		{name: "number entry to unknown sdg", mutate: func(s *Snapshot) { s.Numbers[0].Route.ID = "sdg-nope" },
			want: []string{"numbers[0].route.id"}},
	})
}

func TestRulesExtensions(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "duplicate between users", mutate: func(s *Snapshot) { s.Users[1].Extension = "1001" },
			want: []string{"users[1].extension"}, msg: "users[0]"},
		{name: "sdg reuses a user's", mutate: func(s *Snapshot) { s.SDGs[1].Extension = "1002" },
			want: []string{"sdgs[1].extension"}, msg: "users[1]"},
		{name: "duplicate between sdgs", mutate: func(s *Snapshot) { s.SDGs[3].Extension = "1900" },
			want: []string{"sdgs[3].extension"}, msg: "sdgs[0]"},
		{name: "one digit", mutate: func(s *Snapshot) { s.Users[0].Extension = "1" },
			want: []string{"users[0].extension"}},
		{name: "two digits", mutate: func(s *Snapshot) { s.Users[0].Extension = "10" }},
		{name: "eight digits", mutate: func(s *Snapshot) { s.Users[0].Extension = "12345678" }},
		{name: "nine digits", mutate: func(s *Snapshot) { s.Users[0].Extension = "123456789" },
			want: []string{"users[0].extension"}},
		{name: "not digits", mutate: func(s *Snapshot) { s.Users[0].Extension = "10a1" },
			want: []string{"users[0].extension"}},
		{name: "sdg extension missing", mutate: func(s *Snapshot) { s.SDGs[0].Extension = "" },
			want: []string{"sdgs[0].extension"}},
		{name: "user extension missing", mutate: func(s *Snapshot) { s.Users[4].Extension = "" },
			want: []string{"users[4].extension"}},
		{name: "emergency number", mutate: func(s *Snapshot) { s.Users[0].Extension = "911" },
			want: []string{"users[0].extension"}, msg: "emergency"},
	})
}

func TestRulesNumbers(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "two users with one did", mutate: func(s *Snapshot) { s.Users[2].Numbers = []string{"+16505550101"} },
			want: []string{"users[2].numbers[0]"}, msg: "users[0].numbers[0]"},
		{name: "did twice on one user", mutate: func(s *Snapshot) {
			s.Users[0].Numbers = append(s.Users[0].Numbers, "+16505550101")
		}, want: []string{"users[0].numbers[1]"}},
		{name: "did also a numbers entry", mutate: func(s *Snapshot) { s.Users[2].Numbers = []string{"+13125550200"} },
			want: []string{"numbers[1].number"}, msg: "users[2].numbers[0]"},
		{name: "numbers entry twice", mutate: func(s *Snapshot) {
			s.Numbers = append(s.Numbers, Number{Number: "+16505550100", Site: "hq", Route: userRoute("u-carol")})
		}, want: []string{"numbers[2].number"}, msg: "numbers[0]"},
		{name: "main number is a user's did", mutate: func(s *Snapshot) { s.Sites[0].MainNumber = "+16505550101" }},
		{name: "main number routed nowhere", mutate: func(s *Snapshot) { s.Sites[0].MainNumber = "+16505550177" }},
		{name: "main number empty", mutate: func(s *Snapshot) { s.Sites[1].MainNumber = "" }},
		{name: "main number shared by sites", mutate: func(s *Snapshot) { s.Sites[1].MainNumber = "+16505550100" },
			want: []string{"sites[1].main_number"}, msg: "sites[0]"},
		{name: "did without plus", mutate: func(s *Snapshot) { s.Users[0].Numbers[0] = "16505550101" },
			want: []string{"users[0].numbers[0]"}, msg: "E.164"},
		{name: "did with spaces", mutate: func(s *Snapshot) { s.Users[0].Numbers[0] = "+1 650 555 0101" },
			want: []string{"users[0].numbers[0]"}},
		{name: "did too long", mutate: func(s *Snapshot) { s.Users[0].Numbers[0] = "+1650555010112345" },
			want: []string{"users[0].numbers[0]"}},
		{name: "did fifteen digits", mutate: func(s *Snapshot) { s.Users[0].Numbers[0] = "+165055501011234" }},
		{name: "numbers entry country code zero", mutate: func(s *Snapshot) { s.Numbers[1].Number = "+03125550200" },
			want: []string{"numbers[1].number"}},
		{name: "numbers entry empty", mutate: func(s *Snapshot) { s.Numbers[1].Number = "" },
			want: []string{"numbers[1].number"}},
		{name: "main number not e164", mutate: func(s *Snapshot) { s.Sites[0].MainNumber = "650-555-0100" },
			want: []string{"sites[0].main_number"}},
		{name: "elin not e164", mutate: func(s *Snapshot) { s.Sites[0].Emergency.ELINPool[1] = "+1650555019x" },
			want: []string{"sites[0].emergency.elin_pool[1]"}},
		{name: "route number not e164", mutate: func(s *Snapshot) { s.SDGs[2].Route.Options["3"].Number = "4155550123" },
			want: []string{"sdgs[2].route.options.3.number"}},
		{name: "route number missing", mutate: func(s *Snapshot) { s.SDGs[3].Route.NoAnswer.Number = "" },
			want: []string{"sdgs[3].route.no_answer.number"}},
		{name: "caller id not e164", mutate: func(s *Snapshot) { s.Callout.CallerIDs[1].Number = "00442075550100" },
			want: []string{"callout.caller_ids[1].number"}},
	})
}

func TestRulesSites(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "country three letters", mutate: func(s *Snapshot) { s.Sites[0].Country = "USA" },
			want: []string{"sites[0].country"}},
		{name: "country lower case", mutate: func(s *Snapshot) { s.Sites[0].Country = "us" },
			want: []string{"sites[0].country"}},
		{name: "country missing", mutate: func(s *Snapshot) { s.Sites[1].Country = "" },
			want: []string{"sites[1].country"}},
		{name: "address country", mutate: func(s *Snapshot) { s.Sites[1].Emergency.Address.Country = "United States" },
			want: []string{"sites[1].emergency.address.country"}},
		{name: "area code with letter", mutate: func(s *Snapshot) { s.Sites[0].AreaCode = "65O" },
			want: []string{"sites[0].area_code"}},
		{name: "area code empty", mutate: func(s *Snapshot) { s.Sites[0].AreaCode = "" }},
		{name: "timezone with space", mutate: func(s *Snapshot) { s.Sites[0].Timezone = "America/Los Angeles" },
			want: []string{"sites[0].timezone"}},
		{name: "timezone utc", mutate: func(s *Snapshot) { s.Sites[0].Timezone = "UTC" }},
		{name: "emergency number with dashes", mutate: func(s *Snapshot) { s.Sites[0].Emergency.Numbers[1] = "9-3-3" },
			want: []string{"sites[0].emergency.numbers[1]"}},
		{name: "emergency number one digit", mutate: func(s *Snapshot) { s.Sites[0].Emergency.Numbers[0] = "9" },
			want: []string{"sites[0].emergency.numbers[0]"}},
		{name: "emergency number seven digits", mutate: func(s *Snapshot) { s.Sites[0].Emergency.Numbers[0] = "1234567" },
			want: []string{"sites[0].emergency.numbers[0]"}},
		{name: "emergency number twice", mutate: func(s *Snapshot) { s.Sites[0].Emergency.Numbers[1] = "911" },
			want: []string{"sites[0].emergency.numbers[1]"}},
		{name: "emergency numbers optional", mutate: func(s *Snapshot) {
			s.Sites[0].Emergency.Numbers = nil
			s.Sites[0].Emergency.ELINPool = nil
		}},
		{name: "emergency numbers without elins", mutate: func(s *Snapshot) { s.Sites[1].Emergency.ELINPool = nil },
			want: []string{"sites[1].emergency.elin_pool"}},
		{name: "elin in two sites", mutate: func(s *Snapshot) { s.Sites[1].Emergency.ELINPool[0] = "+16505550191" },
			want: []string{"sites[1].emergency.elin_pool[0]"}, msg: "sites[0].emergency.elin_pool[1]"},
	})
}

// TestValidateListsEveryProblem breaks one thing in each part of the
// document and expects all of them, in document order.
func TestValidateListsEveryProblem(t *testing.T) {
	s := demo(t)
	s.Revision = 0
	s.Account.SIPRealm = "bad realm"
	s.Sites[1].Country = "usa"
	s.Users[1].Extension = "1001"
	s.Users[4].SIP.HA1MD5 = "x"
	s.SDGs[1].Route = sdgRoute("sdg-frontdesk")
	s.SDGs[2].Route.Options["x"] = userRoute("u-nobody")
	s.Numbers[1].Route = nil
	s.Trunks[0].Port = 0
	s.Trunks[0].Codecs = nil
	s.Callout.CallerIDs[0].Number = "none"
	s.Admins[0].Role = "god"
	s.Embed.AllowedOrigins[0] = "https://x.example/"
	for range 9 {
		addUser(s, "", "", "") // users[5] .. users[13], sorted after users[4]
	}
	want := []string{
		"revision",
		"account.sip_realm",
		"sites[1].country",
		"users[1].extension",
		"users[4].sip.ha1_md5",
	}
	for i := 5; i <= 13; i++ {
		p := "users[" + itoa(i) + "]"
		want = append(want, p+".id", p+".extension", p+".sip.username")
	}
	want = append(want,
		"sdgs[1].route.id",
		"sdgs[2].route.options.x",
		"sdgs[2].route.options.x.id",
		"numbers[1].route",
		"trunks[0].port",
		"trunks[0].codecs",
		"callout.caller_ids[0].number",
		"admins[0].role",
		"embed.allowed_origins[0]",
	)
	err := Validate(s, 0)
	checkProblems(t, err, want, "")
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid snapshot ("+itoa(len(want))+" problems): revision: ") {
		t.Errorf("Error() = %q", msg)
	}
	// Validation is deterministic.
	for range 5 {
		again := problemsOf(t, Validate(s, 0))
		if got := paths(again); !slices.Equal(got, paths(problemsOf(t, err))) {
			t.Fatalf("second run differs: %q", got)
		}
		for i := range again {
			if again[i] != problemsOf(t, err)[i] {
				t.Fatalf("second run differs at %d: %v", i, again[i])
			}
		}
	}
}

func TestValidateEmptyAndNil(t *testing.T) {
	checkProblems(t, Validate(&Snapshot{}, 0), []string{"revision", "account.id", "account.sip_realm"}, "")
	if err := Validate(&Snapshot{Revision: 1, Account: Account{ID: "a", SIPRealm: "a.example"}}, 0); err != nil {
		t.Errorf("a minimal account must validate: %v", err)
	}
	if ps := problemsOf(t, Validate(nil, 0)); len(ps) != 1 {
		t.Errorf("nil snapshot: %v", ps)
	}
}

func TestSortProblems(t *testing.T) {
	want := []string{
		"revision", "account.id", "sites[0].country", "users[2].site", "users[9].id", "users[10].id",
		"users[10].extension", "users[100].id", "sdgs[0].route", "numbers[3].number", "trunks[1].port",
		"callout.caller_ids[0].country", "admins[0].role", "embed.allowed_origins[1]", "",
	}
	ps := make([]Problem, len(want))
	for i, p := range want {
		ps[i] = Problem{Path: p, Message: "m"}
	}
	// Reverse, keeping users[10].id before users[10].extension: problems in
	// one element keep the order they were found in.
	slices.Reverse(ps)
	ps[8], ps[9] = ps[9], ps[8]
	sortProblems(ps)
	if got := paths(ps); !slices.Equal(got, want) {
		t.Errorf("sorted = %q\nwant     %q", got, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
