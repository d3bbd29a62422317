package account

import (
	"reflect"
	"strings"
	"testing"
)

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
		{name: "srtp sdes", mutate: func(s *Snapshot) { s.Trunks[0].SRTP = SRTPSDES }},
		{name: "srtp off", mutate: func(s *Snapshot) { s.Trunks[0].SRTP = SRTPOff }},
		{name: "srtp unknown", mutate: func(s *Snapshot) { s.Trunks[1].SRTP = "dtls" },
			want: []string{"trunks[1].srtp"}, msg: "unknown srtp setting"},
		{name: "srtp upper case", mutate: func(s *Snapshot) { s.Trunks[0].SRTP = "SDES" },
			want: []string{"trunks[0].srtp"}},
	})
}

func TestRulesSiteOutbound(t *testing.T) {
	set := func(i int, o Outbound) func(s *Snapshot) {
		return func(s *Snapshot) { s.Sites[i].Outbound = &o }
	}
	runRuleCases(t, []ruleCase{
		{name: "absent", mutate: func(s *Snapshot) { s.Sites[0].Outbound = nil }},
		{name: "empty object", mutate: set(0, Outbound{})},
		{name: "same country", mutate: set(0, Outbound{International: InternationalSameCountry, MaxCallsPerUser: 4})},
		{name: "all, premium, no limit", mutate: set(1, Outbound{International: InternationalAll, AllowPremium: true, MaxCallsPerUser: -1})},
		{name: "list", mutate: set(1, Outbound{International: InternationalList, AllowedCountries: []string{"GB", "+353", "NANP"}})},
		{name: "international unknown", mutate: set(1, Outbound{International: "world"}),
			want: []string{"sites[1].outbound.international"}, msg: "use same_country, list or all"},
		{name: "list without countries", mutate: set(0, Outbound{International: InternationalList}),
			want: []string{"sites[0].outbound.allowed_countries"}},
		{name: "countries without list", mutate: set(0, Outbound{International: InternationalAll, AllowedCountries: []string{"GB"}}),
			want: []string{"sites[0].outbound.allowed_countries"}},
		{name: "country malformed", mutate: set(1, Outbound{International: InternationalList, AllowedCountries: []string{"GB", "gb", "+0", "+1234"}}),
			want: []string{"sites[1].outbound.allowed_countries[1]", "sites[1].outbound.allowed_countries[2]", "sites[1].outbound.allowed_countries[3]"}},
		{name: "country twice", mutate: set(1, Outbound{International: InternationalList, AllowedCountries: []string{"+44", "+44"}}),
			want: []string{"sites[1].outbound.allowed_countries[1]"}},
		{name: "limit below -1", mutate: set(0, Outbound{MaxCallsPerUser: -2}),
			want: []string{"sites[0].outbound.max_calls_per_user"}},
		{name: "limit too high", mutate: set(0, Outbound{MaxCallsPerUser: MaxCallsPerUserLimit + 1}),
			want: []string{"sites[0].outbound.max_calls_per_user"}},
	})
}

func TestOutboundEncoding(t *testing.T) {
	s := demo(t)
	plain, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), `"outbound"`) || strings.Contains(string(plain), `"srtp"`) {
		t.Fatalf("a snapshot without outbound policies or srtp encodes them:\n%s", plain)
	}
	s.Sites[0].Outbound = &Outbound{International: InternationalList, AllowedCountries: []string{"GB"}, MaxCallsPerUser: 3}
	s.Trunks[0].SRTP = SRTPSDES
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip changed the snapshot:\n%s", data)
	}
	for _, want := range []string{`"outbound":{"international":"list","allowed_countries":["GB"],"allow_premium":false,"max_calls_per_user":3}`, `"srtp":"sdes"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("encoding lacks %s:\n%s", want, data)
		}
	}
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
