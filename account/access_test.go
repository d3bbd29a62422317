package account

import "testing"

func TestRulesAdmins(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "username missing", mutate: func(s *Snapshot) { s.Admins[0].Username = "" },
			want: []string{"admins[0].username"}},
		{name: "username with space", mutate: func(s *Snapshot) { s.Admins[0].Username = "site admin" },
			want: []string{"admins[0].username"}},
		{name: "username duplicate", mutate: func(s *Snapshot) {
			s.Admins = append(s.Admins, Admin{Username: "admin", Role: RoleViewer, Bcrypt: DemoAdminBcrypt})
		}, want: []string{"admins[1].username"}},
		{name: "viewer", mutate: func(s *Snapshot) {
			s.Admins = append(s.Admins, Admin{Username: "ops@acme.example", Role: RoleViewer, Bcrypt: DemoAdminBcrypt})
		}},
		{name: "role unknown", mutate: func(s *Snapshot) { s.Admins[0].Role = "root" },
			want: []string{"admins[0].role"}},
		{name: "role missing", mutate: func(s *Snapshot) { s.Admins[0].Role = "" },
			want: []string{"admins[0].role"}},
		{name: "bcrypt 2b and 2y", mutate: func(s *Snapshot) {
			s.Admins = append(s.Admins,
				Admin{Username: "b", Role: RoleAdmin, Bcrypt: "$2b$" + DemoAdminBcrypt[4:]},
				Admin{Username: "y", Role: RoleAdmin, Bcrypt: "$2y$" + DemoAdminBcrypt[4:]})
		}},
		{name: "bcrypt plaintext", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = "outpost-admin" },
			want: []string{"admins[0].bcrypt"}},
		{name: "bcrypt unknown version", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = "$2x$" + DemoAdminBcrypt[4:] },
			want: []string{"admins[0].bcrypt"}},
		{name: "bcrypt cost too low", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = "$2a$03$" + DemoAdminBcrypt[7:] },
			want: []string{"admins[0].bcrypt"}},
		{name: "bcrypt cost too high", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = "$2a$32$" + DemoAdminBcrypt[7:] },
			want: []string{"admins[0].bcrypt"}},
		{name: "bcrypt truncated", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = DemoAdminBcrypt[:59] },
			want: []string{"admins[0].bcrypt"}},
		{name: "bcrypt bad character", mutate: func(s *Snapshot) { s.Admins[0].Bcrypt = DemoAdminBcrypt[:59] + "!" },
			want: []string{"admins[0].bcrypt"}},
	})
}

func TestRulesEmbedOrigins(t *testing.T) {
	valid := []string{
		"https://crm.acme.example", "http://127.0.0.1:9000", "https://[::1]:8443", "http://localhost",
	}
	bad := []string{
		"https://crm.acme.example/", "https://crm.acme.example/widget", "https://crm.acme.example?x=1",
		"https://crm.acme.example#top", "ftp://crm.acme.example", "crm.acme.example", "*", "",
		"https://", "https://CRM.acme.example", "HTTPS://crm.acme.example", "https://crm.acme.example:443",
		"http://crm.acme.example:80", "https://crm.acme.example:0", "https://crm.acme.example:65536",
		"https://crm.acme.example:", "https://crm.acme.example:08443", "https://user@crm.acme.example",
		"https://[::1", "https://[fe80::1%eth0]", "https://crm_acme.example",
	}
	var cases []ruleCase
	for _, o := range valid {
		cases = append(cases, ruleCase{name: "valid " + o, mutate: func(s *Snapshot) { s.Embed.AllowedOrigins = []string{o} }})
	}
	for _, o := range bad {
		cases = append(cases, ruleCase{name: "invalid " + o, mutate: func(s *Snapshot) {
			s.Embed.AllowedOrigins = append(s.Embed.AllowedOrigins, o)
		}, want: []string{"embed.allowed_origins[2]"}})
	}
	cases = append(cases,
		ruleCase{name: "duplicate", mutate: func(s *Snapshot) {
			s.Embed.AllowedOrigins = append(s.Embed.AllowedOrigins, s.Embed.AllowedOrigins[0])
		}, want: []string{"embed.allowed_origins[2]"}},
		ruleCase{name: "none", mutate: func(s *Snapshot) { s.Embed.AllowedOrigins = nil }},
	)
	runRuleCases(t, cases)
}
