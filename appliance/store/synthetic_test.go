package store

import (
	"fmt"

	"github.com/outpost-voice/outpost/account"
)

// bigSnapshot builds a synthetic account: users each with one DID,
// numbers[] entries routed to SDGs, and SDGs with group routes. It is shaped
// like a real account but need not pass account.Validate.
func bigSnapshot(users, numbers, sdgs int) *account.Snapshot {
	const sites = 10
	s := &account.Snapshot{
		Revision: 1000,
		Account:  account.Account{ID: "bigco", Name: "Big Co", SIPRealm: "big.example"},
		Callout: account.Callout{
			GreetingPrompt: "callout-greeting",
			RequirePress1:  true,
			CallerIDs:      []account.CallerID{{Country: "US", Number: "+12125550000", Dedicated: true}},
		},
		Admins: []account.Admin{{Username: "admin", Role: "admin", Bcrypt: "$2a$10$abcdefghijklmnopqrstuv"}},
		Embed:  account.Embed{AllowedOrigins: []string{"https://crm.big.example"}},
	}
	for i := range sites {
		id := fmt.Sprintf("site-%02d", i)
		s.Sites = append(s.Sites, account.Site{
			ID: id, Name: "Site " + id, Country: "US", Timezone: "America/New_York",
			AreaCode: "212", MainNumber: fmt.Sprintf("+1212555%04d", i),
			Emergency: account.Emergency{
				Numbers:  []string{"911", "933"},
				ELINPool: []string{fmt.Sprintf("+1212666%04d", i)},
				Address:  account.Address{Street: fmt.Sprintf("%d Main St", i), City: "New York", Region: "NY", PostalCode: "10001", Country: "US"},
			},
		})
		s.Trunks = append(s.Trunks, account.Trunk{
			ID: "sbc-" + id, Site: id, Name: "SBC " + id, Host: fmt.Sprintf("10.0.%d.1", i), Port: 5060,
			Transport: "udp", Priority: 10, Weight: 100, OptionsIntervalS: 10, MaxChannels: 30,
			Codecs: []string{"PCMU", "PCMA"},
		})
	}
	for i := range users {
		name := fmt.Sprintf("user%06d", i)
		s.Users = append(s.Users, account.User{
			ID: "u-" + name, Site: s.Sites[i%sites].ID, Name: "User " + name, Email: name + "@big.example",
			Extension: fmt.Sprintf("1%06d", i),
			Numbers:   []string{fmt.Sprintf("+1650%07d", i)},
			SIP: account.SIPCredentials{
				Username:  name,
				HA1MD5:    fmt.Sprintf("%032x", i),
				HA1SHA256: fmt.Sprintf("%064x", i),
			},
		})
	}
	for i := range sdgs {
		members := make([]string, 0, 5)
		for j := range 5 {
			if users > 0 {
				members = append(members, s.Users[(i*5+j)%users].ID)
			}
		}
		s.SDGs = append(s.SDGs, account.SDG{
			ID: fmt.Sprintf("sdg-%05d", i), Site: s.Sites[i%sites].ID, Name: fmt.Sprintf("Group %d", i),
			Extension: fmt.Sprintf("8%06d", i),
			Route: &account.Route{
				Type: account.RouteGroup, Members: members, Strategy: account.StrategySequential,
				RingTimeoutS: 20, NoAnswer: &account.Route{Type: account.RouteNumber, Number: "+12125559999"},
			},
		})
	}
	for i := range numbers {
		route := &account.Route{Type: account.RouteNumber, Number: "+12125559999"}
		if sdgs > 0 {
			route = &account.Route{Type: account.RouteSDG, ID: s.SDGs[i%sdgs].ID}
		}
		s.Numbers = append(s.Numbers, account.Number{
			Number: fmt.Sprintf("+1212%07d", i), Site: s.Sites[i%sites].ID, Route: route,
		})
	}
	return s
}

// smallSnapshot is a one-site, one-user account at the given revision.
func smallSnapshot(revision int64) *account.Snapshot {
	return &account.Snapshot{
		Revision: revision,
		Account:  account.Account{ID: "acme", Name: "Acme Corp", SIPRealm: "acme.example"},
		Sites: []account.Site{{
			ID: "hq", Name: "Headquarters", Country: "US", Timezone: "America/Los_Angeles",
			AreaCode: "650", MainNumber: "+16505550100",
			Emergency: account.Emergency{Numbers: []string{"911"}, ELINPool: []string{}},
		}},
		Users: []account.User{{
			ID: "u-zed", Site: "hq", Name: "Zed", Email: "zed@acme.example", Extension: "1500",
			Numbers: []string{"+16505550150"},
			SIP:     account.SIPCredentials{Username: "zed", HA1MD5: "00", HA1SHA256: "11"},
		}},
		SDGs:    []account.SDG{},
		Numbers: []account.Number{},
		Trunks:  []account.Trunk{},
		Callout: account.Callout{CallerIDs: []account.CallerID{}},
		Admins:  []account.Admin{},
		Embed:   account.Embed{AllowedOrigins: []string{}},
	}
}
