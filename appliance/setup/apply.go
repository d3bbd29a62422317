package setup

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Runner runs a command with stdin as its standard input and returns its
// combined output. The CLI runs real commands; tests record them.
type Runner func(ctx context.Context, stdin string, name string, args ...string) (string, error)

// PairFunc exchanges a pairing code for the cluster's cloud credentials
// with the node configuration at configPath (the `outpost pair` path).
type PairFunc func(ctx context.Context, configPath, cloudURL, code string) error

// Step is one command of applying the settings to the running system.
type Step struct {
	// What the step does, shown as it runs.
	What string
	Cmd  []string
	// Stdin is fed to the command (a password: never shown).
	Stdin string
	// Fallback runs when Cmd fails.
	Fallback []string
	// Required steps stop the apply when they fail; the others warn.
	Required bool
	// Pair is the pairing step (no command).
	Pair bool
}

const waitOnline = "/lib/systemd/systemd-networkd-wait-online"

// Plan lists the steps that apply written settings: host name, network,
// resolver, time, root's password, pairing, and enabling and starting the
// node (without waiting for it: the first-boot unit is ordered before it).
func Plan(s Settings, sys System) []Step {
	short := s.ShortHostname()
	steps := []Step{
		{What: "set the host name to " + short, Cmd: []string{"hostnamectl", "set-hostname", short}, Fallback: []string{"hostname", short}},
		{What: "enable systemd-networkd", Cmd: []string{"systemctl", "enable", "--now", "systemd-networkd.service"}},
		{What: "load the network configuration", Cmd: []string{"networkctl", "reload"}},
	}
	if name := s.interfaceName(); name != "" {
		steps = append(steps, Step{What: "configure " + name, Cmd: []string{"networkctl", "reconfigure", name}})
	}
	if sys.Resolved {
		steps = append(steps, Step{What: "restart systemd-resolved", Cmd: []string{"systemctl", "restart", "systemd-resolved.service"}})
	}
	steps = append(steps, Step{What: "restart systemd-timesyncd", Cmd: []string{"systemctl", "restart", "systemd-timesyncd.service"}})
	if s.AdminPasswordHash != "" {
		steps = append(steps, Step{What: "set root's console password", Cmd: []string{"chpasswd", "-e"}, Stdin: "root:" + s.AdminPasswordHash + "\n"})
	} else {
		steps = append(steps, Step{What: "set root's console password", Cmd: []string{"chpasswd"}, Stdin: "root:" + s.AdminPassword + "\n"})
	}
	if s.PairingCode != "" {
		wait := []string{waitOnline, "--timeout=60"}
		if name := s.interfaceName(); name != "" {
			wait = append(wait, "--interface="+name)
		}
		steps = append(steps,
			Step{What: "wait for the network", Cmd: wait},
			Step{What: "pair with " + s.CloudURL, Pair: true})
	}
	return append(steps,
		Step{What: "enable the outpost service", Cmd: []string{"systemctl", "enable", "outpost.service"}, Required: true},
		Step{What: "start the outpost service", Cmd: []string{"systemctl", "start", "--no-block", "outpost.service"}, Required: true})
}

// Report is what Apply did.
type Report struct {
	Warnings []string
	// Paired is whether pairing succeeded; PairError why it did not.
	Paired    bool
	PairError error
}

// Apply runs the steps, telling out about each. A failed step that is not
// Required is a warning and the rest go on; a failed pairing is reported
// in the Report (pair later with `outpost pair`). The error is the first
// Required step that failed.
func Apply(ctx context.Context, steps []Step, s Settings, configPath string, run Runner, pair PairFunc, out io.Writer) (Report, error) {
	var rep Report
	for _, st := range steps {
		fmt.Fprintf(out, "  %s ... ", st.What)
		if st.Pair {
			err := pair(ctx, configPath, s.CloudURL, s.PairingCode)
			if err != nil {
				rep.PairError = err
				fmt.Fprintf(out, "FAILED\n    %s\n", oneLine(err))
				continue
			}
			rep.Paired = true
			fmt.Fprintln(out, "ok")
			continue
		}
		_, err := run(ctx, st.Stdin, st.Cmd[0], st.Cmd[1:]...)
		if err != nil && st.Fallback != nil {
			_, err = run(ctx, "", st.Fallback[0], st.Fallback[1:]...)
		}
		if err == nil {
			fmt.Fprintln(out, "ok")
			continue
		}
		fmt.Fprintf(out, "FAILED\n    %s\n", oneLine(err))
		if st.Required {
			return rep, fmt.Errorf("%s: %w", st.What, err)
		}
		rep.Warnings = append(rep.Warnings, st.What+": "+oneLine(err))
	}
	return rep, nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}
