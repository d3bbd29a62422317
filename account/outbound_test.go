package account

import "testing"

func TestRulesTrunks(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "host missing", mutate: func(s *Snapshot) { s.Trunks[0].Host = "" },
			want: []string{"trunks[0].host"}},
		{name: "host invalid", mutate: func(s *Snapshot) { s.Trunks[0].Host = "sbc_1.acme.example" },
			want: []string{"trunks[0].host"}},
		{name: "host with port", mutate: func(s *Snapshot) { s.Trunks[0].Host = "sbc.acme.example:5060" },
			want: []string{"trunks[0].host"}},
		{name: "host ipv6", mutate: func(s *Snapshot) { s.Trunks[0].Host = "2001:db8::1" }},
		{name: "host name", mutate: func(s *Snapshot) { s.Trunks[0].Host = "sbc1.hq.acme.example" }},
		{name: "port zero", mutate: func(s *Snapshot) { s.Trunks[0].Port = 0 },
			want: []string{"trunks[0].port"}},
		{name: "port too big", mutate: func(s *Snapshot) { s.Trunks[0].Port = 65536 },
			want: []string{"trunks[0].port"}},
		{name: "transport upper case", mutate: func(s *Snapshot) { s.Trunks[0].Transport = "UDP" },
			want: []string{"trunks[0].transport"}},
		{name: "transport missing", mutate: func(s *Snapshot) { s.Trunks[0].Transport = "" },
			want: []string{"trunks[0].transport"}},
		{name: "transport tls", mutate: func(s *Snapshot) { s.Trunks[0].Transport = "tls" }},
		{name: "priority negative", mutate: func(s *Snapshot) { s.Trunks[1].Priority = -1 },
			want: []string{"trunks[1].priority"}},
		{name: "priority zero", mutate: func(s *Snapshot) { s.Trunks[1].Priority = 0 }},
		{name: "weight too big", mutate: func(s *Snapshot) { s.Trunks[1].Weight = 65536 },
			want: []string{"trunks[1].weight"}},
		{name: "weight negative", mutate: func(s *Snapshot) { s.Trunks[1].Weight = -1 },
			want: []string{"trunks[1].weight"}},
		{name: "options interval zero", mutate: func(s *Snapshot) { s.Trunks[0].OptionsIntervalS = 0 },
			want: []string{"trunks[0].options_interval_s"}},
		{name: "options interval too long", mutate: func(s *Snapshot) { s.Trunks[0].OptionsIntervalS = 3601 },
			want: []string{"trunks[0].options_interval_s"}},
		{name: "max channels zero", mutate: func(s *Snapshot) { s.Trunks[0].MaxChannels = 0 },
			want: []string{"trunks[0].max_channels"}},
		{name: "codecs missing", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = nil },
			want: []string{"trunks[0].codecs"}},
		{name: "codec unknown", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = []string{"PCMU", "G711"} },
			want: []string{"trunks[0].codecs[1]"}},
		{name: "codec wrong case", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = []string{"pcmu"} },
			want: []string{"trunks[0].codecs[0]", "trunks[0].codecs"}},
		{name: "codec twice", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = []string{"PCMU", "PCMA", "PCMU"} },
			want: []string{"trunks[0].codecs[2]"}},
		{name: "only telephone-event", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = []string{"telephone-event"} },
			want: []string{"trunks[0].codecs"}, msg: "no audio codec"},
		{name: "every codec", mutate: func(s *Snapshot) { s.Trunks[0].Codecs = Codecs() }},
	})
}

func TestRulesCallout(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "country lower case", mutate: func(s *Snapshot) { s.Callout.CallerIDs[1].Country = "gb" },
			want: []string{"callout.caller_ids[1].country"}},
		{name: "country name", mutate: func(s *Snapshot) { s.Callout.CallerIDs[1].Country = "UK " },
			want: []string{"callout.caller_ids[1].country"}},
		{name: "country missing", mutate: func(s *Snapshot) { s.Callout.CallerIDs[0].Country = "" },
			want: []string{"callout.caller_ids[0].country"}},
		{name: "one dedicated per country", mutate: func(s *Snapshot) { s.Callout.CallerIDs[2].Dedicated = true }},
		{name: "two dedicated for one country", mutate: func(s *Snapshot) {
			s.Callout.CallerIDs[1].Dedicated = true
			s.Callout.CallerIDs[2].Dedicated = true
		}, want: []string{"callout.caller_ids[2].dedicated"}, msg: "caller_ids[1]"},
		{name: "greeting prompt invalid", mutate: func(s *Snapshot) { s.Callout.GreetingPrompt = "/abs/path" },
			want: []string{"callout.greeting_prompt"}},
		{name: "greeting prompt optional", mutate: func(s *Snapshot) { s.Callout.GreetingPrompt = "" }},
	})
}
