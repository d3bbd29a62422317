package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	firstboot "github.com/outpost-voice/outpost/appliance/setup"
	"github.com/outpost-voice/outpost/appliance/web/ui"
)

// setupOpts are `outpost setup`'s flags.
type setupOpts struct {
	root, configPath  string
	nocloud, ovf      string
	auto, noApply     bool
	force             bool
	iface             string
	apply             bool // root is / and not --no-apply
	sysClassNet, seed string
}

// setup is the first-boot setup (docs/install.md): interactive on the
// console, or unattended from a NoCloud seed (--nocloud), an OVF
// environment (--ovf) or whichever of those the machine has (--auto).
// It writes the configuration under --root and, on the appliance itself,
// applies it and starts the node.
func setup(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("setup")
	var o setupOpts
	f.StringVar(&o.root, "root", "/", "write the files under this directory instead of /")
	f.BoolVar(&o.noApply, "no-apply", false, "write the files only: set no host name, restart nothing, do not pair or start the node")
	f.StringVar(&o.nocloud, "nocloud", "", "unattended: read the settings from this NoCloud seed directory")
	f.StringVar(&o.ovf, "ovf", "", "unattended: read the settings from this OVF environment file (ovf-env.xml)")
	f.BoolVar(&o.auto, "auto", false, "unattended: look for a NoCloud seed or an OVF environment; none found: do nothing")
	f.BoolVar(&o.force, "force", false, "set up again a node already set up (unattended modes)")
	f.StringVar(&o.iface, "interface", "", "the network interface to configure (default: detected)")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: setup takes no arguments, got %q", errUsage, pos)
	}
	modes := 0
	for _, on := range []bool{o.auto, o.nocloud != "", o.ovf != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return fmt.Errorf("%w: setup takes one of --auto, --nocloud and --ovf", errUsage)
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return fmt.Errorf("setup: --root: %w", err)
	}
	o.root = root
	o.configPath = f.configPath
	if o.configPath == "" {
		o.configPath = firstboot.DefaultConfigPath
	}
	if !filepath.IsAbs(o.configPath) {
		return fmt.Errorf("%w: setup: --config must be an absolute path on the target system", errUsage)
	}
	o.apply = o.root == "/" && !o.noApply
	o.sysClassNet, o.seed = "/sys/class/net", "/run/outpost-setup/seed"

	return runSetup(ctx, o, stdout)
}

func runSetup(ctx context.Context, o setupOpts, out io.Writer) error {
	w := firstboot.Writer{Root: o.root, SetAdmin: ui.WriteBreakGlass, SetAdminHash: ui.WriteBreakGlassHash}
	marker, err := firstboot.ReadMarker(w.Path(firstboot.MarkerPath))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	ifaces := firstboot.Interfaces(o.sysClassNet)
	if o.iface != "" {
		if err := firstboot.CheckInterface(o.iface); err != nil {
			return fmt.Errorf("%w: --interface: %v", errUsage, err)
		}
		ifaces = []string{o.iface}
	}
	base := firstboot.Defaults(host, first(ifaces))

	var in *firstboot.Input
	switch {
	case o.auto:
		if marker != nil && !o.force {
			fmt.Fprintf(out, "outpost setup: already set up on %s (%s); nothing to do\n", marker.DoneAt, firstboot.MarkerPath)
			return nil
		}
		var run firstboot.Runner
		if o.apply {
			run = execRun
		}
		finder := firstboot.Finder{Root: o.root, Run: run, MountDir: o.seed, Log: out}
		if in, err = finder.Find(ctx); err != nil {
			return autoRefused(w, err)
		}
		if in == nil {
			fmt.Fprintln(out, "outpost setup: no unattended settings found (NoCloud seed, OVF environment); the console setup will ask")
			return nil
		}
	case o.nocloud != "":
		if in, err = firstboot.ReadNoCloud(o.nocloud); err != nil {
			return err
		}
	case o.ovf != "":
		fh, err := os.Open(o.ovf)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		in, err = firstboot.ReadOVF(fh, o.ovf)
		fh.Close()
		if err != nil {
			return err
		}
	}

	if in != nil && !in.Outpost {
		return fmt.Errorf("setup: %s: %s: nothing to set up (docs/install.md)", in.Source, in.Skipped)
	}
	var s firstboot.Settings
	source := "console"
	if in != nil {
		if marker != nil && !o.force && !o.auto {
			return fmt.Errorf("setup: this node was set up on %s (%s): pass --force to set it up again", marker.DoneAt, firstboot.MarkerPath)
		}
		if s, err = in.Settings(base); err != nil {
			if o.auto {
				return autoRefused(w, err)
			}
			return err
		}
		source = in.Source
		fmt.Fprintf(out, "outpost setup: settings from %s\n", in.Source)
		shown := s // the journal gets no secret
		if shown.PairingCode != "" {
			shown.PairingCode = "(given)"
		}
		fmt.Fprint(out, firstboot.Summary(shown))
	} else {
		var notices []string
		if data, err := os.ReadFile(w.Path(firstboot.AutoErrorPath)); err == nil && len(bytes.TrimSpace(data)) > 0 {
			notices = append(notices, firstboot.RefusedNotice(errors.New(string(data))))
		}
		if marker != nil {
			base = marker.Settings
			base.AdminPassword, base.AdminPasswordHash = "", ""
			if base.Interface == "" {
				base.Interface = first(ifaces)
			}
			if tok, err := os.ReadFile(w.Path(firstboot.TokenPath)); err == nil && base.Joining() {
				base.ClusterToken = strings.TrimSpace(string(tok))
			}
			notices = append(notices, fmt.Sprintf("This node was set up on %s\n(from %s).\nAnswering again rewrites its configuration.", marker.DoneAt, marker.Source))
		}
		con := firstboot.NewConsole(stdin, out)
		if s, err = firstboot.Interview(ctx, con, base, ifaces, strings.Join(notices, "\n\n")); err != nil {
			if errors.Is(err, context.Canceled) {
				return errors.New("setup stopped (Ctrl-C); nothing was written")
			}
			return err
		}
		if err := finishSetup(ctx, o, w, s, source, out); err != nil {
			return err
		}
		if con.IsTerminal() {
			// The console is cleared for the login prompt when the setup
			// ends: let the admin read (and note) the end first.
			fmt.Fprint(out, "\nPress Enter to finish. ")
			_, _ = con.ReadLine(ctx)
		}
		return nil
	}
	return finishSetup(ctx, o, w, s, source, out)
}

// finishSetup writes the settings and, on the appliance, applies them.
func finishSetup(ctx context.Context, o setupOpts, w firstboot.Writer, s firstboot.Settings, source string, out io.Writer) error {
	sys := firstboot.System{ConfigPath: o.configPath, Resolved: firstboot.HasResolved(o.root), Now: time.Now(), Source: source}
	hosts, err := os.ReadFile(w.Path(firstboot.HostsPath))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("setup: %w", err)
	}
	sys.Hosts = hosts
	files, err := firstboot.Render(s, sys)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Writing the configuration ...")
	written, err := w.Write(s, files)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	_ = os.Remove(w.Path(firstboot.AutoErrorPath))
	for _, p := range written.Paths {
		fmt.Fprintf(out, "  %s\n", p)
	}
	if written.Backup != "" {
		fmt.Fprintf(out, "  (the previous configuration is kept in %s)\n", written.Backup)
	}
	var rep firstboot.Report
	if o.apply {
		fmt.Fprintln(out, "Applying it ...")
		pairWith := func(ctx context.Context, configPath, cloudURL, code string) error {
			if err := pair(ctx, []string{"--config", configPath, "--cloud", cloudURL, "--code", code}, io.Discard); err != nil {
				return err
			}
			return w.Own(firstboot.CredentialsPath) // written by root, read by the node
		}
		rep, err = firstboot.Apply(ctx, firstboot.Plan(s, sys), s, o.configPath, execRun, pairWith, out)
		if err != nil {
			return fmt.Errorf("setup: the configuration is written but %w", err)
		}
	} else {
		fmt.Fprint(out, "Not applied (--root or --no-apply): no host name set, nothing restarted,\nnot paired, the node not started.\n")
	}
	if s.DHCP && len(s.DNS) == 0 && !sys.Resolved {
		rep.Warnings = append(rep.Warnings, "no DNS servers given and no systemd-resolved to take the DHCP server's:\n"+
			"            nothing writes /etc/resolv.conf; run the setup again and give DNS servers")
	}
	printDone(out, o, s, source, written, rep)
	return nil
}

func printDone(out io.Writer, o setupOpts, s firstboot.Settings, source string, written firstboot.Written, rep firstboot.Report) {
	fmt.Fprintln(out, "\nOutpost is set up.")
	host := s.Hostname
	if !s.DHCP {
		host = s.Address.Addr().String()
	}
	fmt.Fprintf(out, "  Web UI:   https://%s/ (user %s; the certificate is self-signed)\n", host, s.AdminUser)
	switch {
	case s.Joining():
	case source == "console":
		fmt.Fprintf(out, "  Cluster token: %s\n                 (more nodes' setup asks for it; cat %s)\n", written.Token, firstboot.TokenPath)
	default: // unattended: the output goes to the journal
		fmt.Fprintf(out, "  Cluster token: in %s (more nodes' setup asks for it)\n", firstboot.TokenPath)
	}
	for _, wmsg := range rep.Warnings {
		fmt.Fprintf(out, "  Warning:  %s\n", wmsg)
	}
	switch {
	case s.PairingCode == "" && s.CloudURL != "" && !s.Joining():
		fmt.Fprintf(out, "  Not paired yet; with a pairing code from the cloud:\n    outpost pair --config %s --cloud %s --code CODE\n", o.configPath, s.CloudURL)
	case s.PairingCode != "" && !o.apply:
		fmt.Fprintf(out, "  Not paired (not applied); once the node runs:\n    outpost pair --config %s --cloud %s --code %s\n", o.configPath, s.CloudURL, s.PairingCode)
	case rep.PairError != nil:
		fmt.Fprintf(out, "  Pairing FAILED: %s\n  The node runs offline until paired; pair later, with a new code from the\n  cloud if this one was used:\n"+
			"    outpost pair --config %s --cloud %s --code CODE\n", strings.ReplaceAll(rep.PairError.Error(), "\n", " "), o.configPath, s.CloudURL)
	case rep.Paired:
		fmt.Fprintf(out, "  Paired with %s.\n", s.CloudURL)
	}
	if o.apply {
		fmt.Fprintln(out, "  The outpost service is starting: `outpost status` shows when it is ready.")
	}
}

// autoRefused keeps why unattended settings were refused for the console
// setup to show, and returns the error.
func autoRefused(w firstboot.Writer, err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if werr := firstboot.WriteFileAtomic(w.Path(firstboot.AutoErrorPath), []byte(msg+"\n"), 0o600); werr != nil {
		return fmt.Errorf("%w (and keeping this for the console: %v)", err, werr)
	}
	return err
}

// execRun runs a command on this machine.
func execRun(ctx context.Context, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if err != nil {
		msg := strings.Join(strings.Fields(buf.String()), " ")
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		if msg != "" {
			return buf.String(), fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return buf.String(), fmt.Errorf("%s: %w", name, err)
	}
	return buf.String(), nil
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
