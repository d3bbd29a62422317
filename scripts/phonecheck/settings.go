package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/config"
)

// settings are the Outpost values the phones' keys are checked against:
// the node configuration, as the node itself would load it, and the
// account's realm and sites from its snapshot.
type settings struct {
	configPath string
	cfg        config.Config
	realm      string
	sites      []string
}

func loadSettings(configPath, snapshotPath string, environ []string) (settings, error) {
	cfg, err := config.Load(configPath, environ)
	if err != nil {
		return settings{}, err
	}
	data, err := os.ReadFile(snapshotPath)
	if err != nil {
		return settings{}, fmt.Errorf("snapshot: %w", err)
	}
	snap, err := account.DecodeBytes(data)
	if err != nil {
		return settings{}, fmt.Errorf("snapshot %s: %w", snapshotPath, err)
	}
	if snap.Account.SIPRealm == "" {
		return settings{}, fmt.Errorf("snapshot %s: account.sip_realm is empty", snapshotPath)
	}
	s := settings{configPath: configPath, cfg: cfg, realm: snap.Account.SIPRealm}
	for _, site := range snap.Sites {
		s.sites = append(s.sites, site.ID)
	}
	return s, nil
}

// valueNames are the names a check's template may use in braces.
var valueNames = []string{"realm", "site", "dns.domain", "sip.host", "sip.udp.port", "sip.tcp.port", "sip.tls.port",
	"conference.factory"}

// value is the Outpost value a template name stands for, or why the
// configuration has none.
func (s settings) value(name string) (string, error) {
	c := s.cfg
	switch name {
	case "realm":
		return s.realm, nil
	case "conference.factory":
		return calls.ConferenceFactory, nil
	case "site":
		if !slices.Contains(s.sites, c.Site) {
			return "", fmt.Errorf("the node's site %q is not a site of the account (%s)", c.Site, strings.Join(s.sites, ", "))
		}
		return c.Site, nil
	case "dns.domain":
		if c.DNS.Domain == "" {
			return "", fmt.Errorf("dns.domain is not set in the node configuration")
		}
		if c.DNS.Listen == "" {
			return "", fmt.Errorf("dns.listen is not set in the node configuration: no node answers for %s", c.DNS.Domain)
		}
		return strings.TrimSuffix(c.DNS.Domain, "."), nil
	case "sip.host":
		if c.SIP.Advertise == "" {
			return "", fmt.Errorf("sip.advertise is not set in the node configuration: the node's address is not known")
		}
		host := c.SIP.Advertise
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		return strings.Trim(host, "[]"), nil
	case "sip.udp.port":
		return listenerPort("sip.udp", c.SIP.UDP, true)
	case "sip.tcp.port":
		return listenerPort("sip.tcp", c.SIP.TCP, true)
	case "sip.tls.port":
		return listenerPort("sip.tls", c.SIP.TLS, c.SIP.TLSEnabled())
	}
	return "", fmt.Errorf("unknown Outpost setting {%s} (known: %s)", name, strings.Join(valueNames, ", "))
}

func listenerPort(key, addr string, on bool) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("%s is off in the node configuration", key)
	}
	if !on {
		return "", fmt.Errorf("%s is not listening: it needs sip.tls_cert and sip.tls_key", key)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return port, nil
}

// durationNames are the settings a range may use as a bound.
var durationNames = []string{"sip.min_expires", "sip.max_expires", "sip.survivability_expires",
	"cloud.probe_interval", "cloud.outage_after", "cloud.recover_after"}

// duration is a range bound: one of durationNames or a Go duration.
func (s settings) duration(name string) (time.Duration, error) {
	c := s.cfg
	switch name {
	case "sip.min_expires":
		return c.SIP.MinExpires.Duration, nil
	case "sip.max_expires":
		return c.SIP.MaxExpires.Duration, nil
	case "sip.survivability_expires":
		return c.SIP.SurvivabilityExpires.Duration, nil
	case "cloud.probe_interval":
		return c.Cloud.ProbeInterval.Duration, nil
	case "cloud.outage_after":
		return c.Cloud.OutageAfter.Duration, nil
	case "cloud.recover_after":
		return c.Cloud.RecoverAfter.Duration, nil
	}
	d, err := time.ParseDuration(name)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a Go duration nor one of %s", name, strings.Join(durationNames, ", "))
	}
	return d, nil
}

// transports are the transports a check may map a vendor value to.
var transports = []string{"udp", "tcp", "tls", "dns"}

// served reports whether the node serves a transport, and if not why. "dns"
// means the phone picks one from Outpost's NAPTR/SRV answers, so it needs
// Outpost's DNS server.
func (s settings) served(transport string) (bool, string) {
	c := s.cfg
	switch transport {
	case "udp":
		return c.SIP.UDP != "", "sip.udp is off"
	case "tcp":
		return c.SIP.TCP != "", "sip.tcp is off"
	case "tls":
		return c.SIP.TLSEnabled(), "TLS needs sip.tls, sip.tls_cert and sip.tls_key"
	case "dns":
		return c.DNS.Listen != "" && c.DNS.Domain != "", "Outpost's DNS server needs dns.listen and dns.domain"
	}
	return false, "unknown transport"
}

// servedList names the transports the node serves, for messages.
func (s settings) servedList() string {
	var on []string
	for _, t := range transports {
		if ok, _ := s.served(t); ok {
			on = append(on, t)
		}
	}
	return strings.Join(on, ", ")
}
