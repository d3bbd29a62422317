package setup

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// script is a terminal whose admin types the given lines.
type script struct {
	strings.Builder
	lines   []string
	secrets []string // what was read without echo
}

func (s *script) ReadLine(context.Context) (string, error) {
	if len(s.lines) == 0 {
		return "", ErrInputEnded
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	s.WriteString(l + "\n") // the echo
	return l, nil
}

func (s *script) ReadSecret(context.Context) (string, error) {
	if len(s.lines) == 0 {
		return "", ErrInputEnded
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	s.secrets = append(s.secrets, l)
	s.WriteString("\n")
	return l, nil
}

func TestInterviewJoinAndRedo(t *testing.T) {
	term := &script{lines: []string{
		"",                                    // admin user
		"correct horse battery", "different!", // passwords differ
		"correct horse battery", "correct horse battery",
		"PBX-2",     // host name, lower-cased
		"ens224",    // interface of two
		"dhcp", "-", // DHCP, no DNS servers
		"",     // NTP default
		"", "", // site, node id
		"survive",                  // bad zone
		"",                         // no zone
		"10.0.0.1",                 // join
		"short",                    // bad token
		"abcd-efgh-ijkl-mnop-qrst", // token
		"https://cloud.outpost.example",
		"n", "y", // redo
		"", "", // admin user; Enter keeps the password
		"", "", "", "", "", "", "", "", "", "", "", // every default again
		"maybe", "y",
	}}
	s, err := Interview(context.Background(), term, Defaults("debian", ""), []string{"ens192", "ens224"}, RefusedNotice(errors.New("user-data: outpost.x: unknown key")))
	if err != nil {
		t.Fatalf("Interview: %v\n%s", err, term.String())
	}
	out := term.String()
	for _, w := range []string{
		"Unattended settings were found but refused:\n  user-data: outpost.x: unknown key",
		"  ! the two passwords differ: enter them again\n",
		"Network interface (ens192, ens224) [ens192]: ",
		"  ! \"survive\" is not a DNS zone",
		"  ! not a cluster token",
		"cluster          joins 10.0.0.1:8080 (token given)",
		"cloud            https://cloud.outpost.example (paired through the cluster)",
		"Admin password (Enter alone keeps the one given): ",
		"Host name [pbx-2]: ",
		"  ! answer y or n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("console lacks %q", w)
		}
	}
	if strings.Contains(out, "correct horse") {
		t.Error("the password was echoed")
	}
	if strings.Contains(out, "Pairing code") {
		t.Error("a joining node was asked for a pairing code")
	}
	if s.AdminPassword != "correct horse battery" || s.Hostname != "pbx-2" || s.Interface != "ens224" || !s.DHCP ||
		len(s.DNS) != 0 || s.Join[0] != "10.0.0.1:8080" || s.ClusterToken != "abcd-efgh-ijkl-mnop-qrst" ||
		s.EffectiveNodeID() != "pbx-2" || s.CloudURL != "https://cloud.outpost.example" || s.PairingCode != "" {
		t.Errorf("settings %+v", s)
	}
	if ps := s.Validate(); len(ps) != 0 {
		t.Errorf("the interview's settings do not validate: %v", ps)
	}
}

func TestInterviewDeclineAndEOF(t *testing.T) {
	answers := []string{"", "correct horse battery", "correct horse battery", "pbx", "", "", "", "", "", "", "", "", "n", "n"}
	_, err := Interview(context.Background(), &script{lines: answers}, Defaults("debian", "eth0"), []string{"eth0"}, "")
	if !errors.Is(err, ErrDeclined) {
		t.Errorf("declined: %v", err)
	}
	_, err = Interview(context.Background(), &script{lines: answers[:5]}, Defaults("debian", "eth0"), nil, "")
	if !errors.Is(err, ErrInputEnded) {
		t.Errorf("input ended: %v", err)
	}
}

func TestConsoleReadsLinesAndStops(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := NewConsole(r, io.Discard)
	if c.IsTerminal() {
		t.Fatal("a pipe is a terminal")
	}
	go func() {
		_, _ = io.WriteString(w, "one\r\ntwo\n")
	}()
	for _, want := range []string{"one", "two"} {
		if got, err := c.ReadSecret(context.Background()); got != want || err != nil {
			t.Fatalf("read %q %v, want %q", got, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ReadLine(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
	w.Close()
	if _, err := c.ReadLine(context.Background()); !errors.Is(err, ErrInputEnded) {
		t.Errorf("after the end: %v", err)
	}
}
