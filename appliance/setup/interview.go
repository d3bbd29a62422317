package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// ErrDeclined is the admin declining to write the settings.
var ErrDeclined = errors.New("setup stopped at your request; nothing was written")

// Terminal is what the interview talks to (a *Console).
type Terminal interface {
	io.Writer
	ReadLine(ctx context.Context) (string, error)
	ReadSecret(ctx context.Context) (string, error)
}

// Interview asks the admin for the settings on a line-oriented console,
// each with its default in brackets, re-asking with a message after a bad
// answer, then shows a summary and asks to confirm. Interfaces are the
// network interfaces to choose from (asked only when there are several);
// notice, when not empty, is shown after the banner (why unattended
// settings were refused, an earlier setup). base holds the defaults (those
// of an earlier setup when there was one).
func Interview(ctx context.Context, t Terminal, base Settings, interfaces []string, notice string) (Settings, error) {
	iv := &interview{ctx: ctx, t: t}
	fmt.Fprint(t, "\nOutpost first-boot setup\n========================\n\n"+
		"Answer each question and press Enter. Enter alone keeps the default shown\n"+
		"in [brackets]; - clears an optional answer. Nothing is written before you\n"+
		"confirm at the end; Ctrl-C stops without writing.\n\n")
	if notice != "" {
		fmt.Fprintf(t, "%s\n\n", strings.TrimRight(notice, "\n"))
	}
	s := base
	for {
		var err error
		if s, err = iv.all(s, interfaces); err != nil {
			return Settings{}, err
		}
		fmt.Fprint(t, Summary(s))
		ok, err := iv.yesNo("Write this configuration and start Outpost?", false)
		if err != nil {
			return Settings{}, err
		}
		if ok {
			return s, nil
		}
		again, err := iv.yesNo("Go through the questions again (your answers are the defaults)?", true)
		if err != nil {
			return Settings{}, err
		}
		if !again {
			return Settings{}, ErrDeclined
		}
		fmt.Fprintln(t)
	}
}

// RefusedNotice is the notice telling why unattended settings were
// refused.
func RefusedNotice(err error) string {
	return "Unattended settings were found but refused:\n  " + strings.ReplaceAll(strings.TrimSpace(err.Error()), "; ", "\n  ")
}

type interview struct {
	ctx context.Context
	t   Terminal
}

// all asks every question once, over the answers in s.
func (iv *interview) all(s Settings, interfaces []string) (Settings, error) {
	var err error
	if s.AdminUser, err = iv.ask("Admin user name", s.AdminUser, false, CheckUsername); err != nil {
		return s, err
	}
	if err := iv.password(&s); err != nil {
		return s, err
	}
	if s.Hostname, err = iv.askParse("Host name", s.Hostname, false, ParseHostname); err != nil {
		return s, err
	}
	if len(interfaces) > 1 {
		def := s.Interface
		if !slices.Contains(interfaces, def) {
			def = interfaces[0]
		}
		label := "Network interface (" + strings.Join(interfaces, ", ") + ")"
		if s.Interface, err = iv.ask(label, def, false, func(v string) error {
			if !slices.Contains(interfaces, v) {
				return fmt.Errorf("%q is not one of %s", v, strings.Join(interfaces, ", "))
			}
			return nil
		}); err != nil {
			return s, err
		}
	} else if len(interfaces) == 1 {
		s.Interface = interfaces[0]
	}
	if err := iv.network(&s); err != nil {
		return s, err
	}
	if err := iv.names(&s); err != nil {
		return s, err
	}
	if err := iv.cluster(&s); err != nil {
		return s, err
	}
	return s, iv.cloud(&s)
}

func (iv *interview) password(s *Settings) error {
	fmt.Fprintf(iv.t, "The admin password signs in to the web UI (user %s) and to this console\nas root.\n", s.AdminUser)
	label := fmt.Sprintf("Admin password (at least %d characters, not shown)", MinPassword)
	keep := s.AdminPassword != "" || s.AdminPasswordHash != ""
	if keep {
		label = "Admin password (Enter alone keeps the one given)"
	}
	for {
		fmt.Fprintf(iv.t, "%s: ", label)
		p, err := iv.t.ReadSecret(iv.ctx)
		if err != nil {
			return err
		}
		if p == "" && keep {
			return nil
		}
		if err := CheckPassword(p); err != nil {
			iv.refuse(err)
			continue
		}
		fmt.Fprint(iv.t, "Admin password again: ")
		again, err := iv.t.ReadSecret(iv.ctx)
		if err != nil {
			return err
		}
		if again != p {
			iv.refuse(errors.New("the two passwords differ: enter them again"))
			continue
		}
		s.AdminPassword, s.AdminPasswordHash = p, ""
		return nil
	}
}

func (iv *interview) network(s *Settings) error {
	def := "dhcp"
	if !s.DHCP {
		def = "static"
	}
	mode, err := iv.ask("Network: dhcp or static", def, false, func(v string) error {
		if v != "dhcp" && v != "static" {
			return fmt.Errorf("%q: answer dhcp or static", v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.DHCP = mode == "dhcp"
	if s.DHCP {
		s.Address, s.Gateway = netip.Prefix{}, netip.Addr{}
	} else {
		addr := ""
		if s.Address.IsValid() {
			addr = s.Address.String()
		}
		a, err := iv.ask("IP address with prefix (like 192.0.2.10/24)", addr, false, func(v string) error {
			_, err := ParsePrefix(v)
			return err
		})
		if err != nil {
			return err
		}
		s.Address, _ = ParsePrefix(a)
		gw := ""
		if s.Gateway.IsValid() && s.Address.Masked().Contains(s.Gateway) {
			gw = s.Gateway.String()
		}
		g, err := iv.ask("Gateway (like "+exampleGateway(s.Address)+")", gw, false, func(v string) error {
			_, err := ParseGateway(s.Address, v)
			return err
		})
		if err != nil {
			return err
		}
		s.Gateway, _ = ParseAddr(g)
	}
	label, optional := fmt.Sprintf("DNS servers, 1 to %d, separated by spaces", MaxDNS), false
	if s.DHCP {
		label, optional = fmt.Sprintf("DNS servers, up to %d, separated by spaces (none: the DHCP server's)", MaxDNS), true
	}
	dns, err := iv.ask(label, joinAddrs(s.DNS), optional, func(v string) error {
		_, err := ParseDNS(Fields(v))
		return err
	})
	if err != nil {
		return err
	}
	s.DNS, _ = ParseDNS(Fields(dns))
	ntp, err := iv.ask("NTP servers, separated by spaces", strings.Join(s.NTP, " "), false, func(v string) error {
		_, err := ParseNTP(Fields(v))
		return err
	})
	if err != nil {
		return err
	}
	s.NTP, _ = ParseNTP(Fields(ntp))
	return nil
}

// exampleGateway is the first address of addr's subnet, a likely router.
func exampleGateway(addr netip.Prefix) string {
	if a := addr.Masked().Addr().Next(); a.IsValid() && a != addr.Addr() {
		return a.String()
	}
	return "192.0.2.1"
}

func (iv *interview) names(s *Settings) error {
	var err error
	if s.Site, err = iv.ask("Site (whose phones this node serves first)", s.Site, false, CheckID); err != nil {
		return err
	}
	def := s.NodeID
	if def == "" {
		def = s.ShortHostname()
	}
	if s.NodeID, err = iv.ask("Node id (unique in the cluster)", def, false, CheckID); err != nil {
		return err
	}
	s.DNSDomain, err = iv.askParse("Phone DNS zone, like survive.acme.example (none: no DNS server)", s.DNSDomain, true, ParseDomain)
	return err
}

func (iv *interview) cluster(s *Settings) error {
	join, err := iv.ask("Join a cluster? A member's address, like 10.0.0.1:8080 (none: first node)",
		strings.Join(s.Join, " "), true, func(v string) error {
			for _, j := range Fields(v) {
				if _, err := ParseJoin(j); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	s.Join = nil
	for _, j := range Fields(join) {
		p, _ := ParseJoin(j)
		s.Join = append(s.Join, p)
	}
	if !s.Joining() {
		s.ClusterToken = ""
		return nil
	}
	s.ClusterToken, err = iv.ask("Cluster token (on the first node: cat "+TokenPath+")", s.ClusterToken, false, CheckClusterToken)
	return err
}

func (iv *interview) cloud(s *Settings) error {
	var err error
	if s.CloudURL, err = iv.askParse("Cloud URL, like https://cloud.outpost.example (none: offline)", s.CloudURL, true, ParseCloudURL); err != nil {
		return err
	}
	if s.CloudURL == "" || s.Joining() {
		// A joining node gets the cluster's pairing from its members.
		s.PairingCode = ""
		return nil
	}
	s.PairingCode, err = iv.ask("Pairing code from the cloud (none: pair later with `outpost pair`)", s.PairingCode, true, CheckPairingCode)
	return err
}

// ask asks one question until the answer passes check. Enter alone keeps
// def; an optional question accepts none (Enter with no default, or -).
func (iv *interview) ask(label, def string, optional bool, check func(string) error) (string, error) {
	for {
		if def != "" {
			fmt.Fprintf(iv.t, "%s [%s]: ", label, def)
		} else {
			fmt.Fprintf(iv.t, "%s: ", label)
		}
		line, err := iv.t.ReadLine(iv.ctx)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(line)
		switch {
		case v == "" && def != "":
			v = def
		case v == "-" && optional, v == "" && optional:
			return "", nil
		case v == "" || v == "-":
			iv.refuse(errors.New("an answer is needed here"))
			continue
		}
		if err := check(v); err != nil {
			iv.refuse(err)
			continue
		}
		return v, nil
	}
}

// askParse is ask with a parser whose result is the answer.
func (iv *interview) askParse(label, def string, optional bool, parse func(string) (string, error)) (string, error) {
	v, err := iv.ask(label, def, optional, func(v string) error { _, err := parse(v); return err })
	if err != nil || v == "" {
		return v, err
	}
	return parse(v)
}

func (iv *interview) yesNo(label string, def bool) (bool, error) {
	opts := "[y/N]"
	if def {
		opts = "[Y/n]"
	}
	for {
		fmt.Fprintf(iv.t, "%s %s: ", label, opts)
		line, err := iv.t.ReadLine(iv.ctx)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		iv.refuse(errors.New("answer y or n"))
	}
}

func (iv *interview) refuse(err error) { fmt.Fprintf(iv.t, "  ! %v\n", err) }

// Summary shows settings for the admin to check, without secrets.
func Summary(s Settings) string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "  %-16s %s\n", k, v) }
	b.WriteString("\nSummary\n-------\n")
	pw := "set"
	if s.AdminPasswordHash != "" {
		pw = "set (bcrypt hash)"
	}
	row("admin", s.AdminUser+" (password "+pw+")")
	row("host name", s.Hostname)
	iface := s.Interface
	if iface == "" {
		iface = "every Ethernet interface"
	}
	row("interface", iface)
	if s.DHCP {
		row("network", "DHCP")
	} else {
		row("network", "static "+s.Address.String()+", gateway "+s.Gateway.String())
	}
	dns := joinAddrs(s.DNS)
	if dns == "" {
		dns = "the DHCP server's"
	}
	row("DNS servers", dns)
	row("NTP servers", strings.Join(s.NTP, " "))
	row("site", s.Site)
	row("node id", s.EffectiveNodeID())
	zone := s.DNSDomain
	if zone == "" {
		zone = "none (no DNS server)"
	}
	row("phone DNS zone", zone)
	if s.Joining() {
		row("cluster", "joins "+strings.Join(s.Join, ", ")+" (token given)")
	} else {
		row("cluster", "first node: forms a new cluster")
	}
	switch {
	case s.CloudURL == "":
		row("cloud", "offline (run the setup again, or set cloud.url and pair, later)")
	case s.PairingCode != "":
		row("cloud", s.CloudURL+", pairing code "+s.PairingCode)
	case s.Joining():
		row("cloud", s.CloudURL+" (paired through the cluster)")
	default:
		row("cloud", s.CloudURL+", not paired (pair later with `outpost pair`)")
	}
	row("web UI", "https://"+webHost(s)+"/ (self-signed certificate)")
	b.WriteString("\n")
	return b.String()
}

// webHost is the host the web UI is reached at.
func webHost(s Settings) string {
	if !s.DHCP {
		a := s.Address.Addr()
		if a.Is6() {
			return "[" + a.String() + "]"
		}
		return a.String()
	}
	return s.Hostname
}
