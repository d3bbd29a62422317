package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/appliance/node"
	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/config"
)

const usage = `usage: outpost <command> [flags]

commands:
  serve   --config FILE                 run a node (defaults embedded: no FILE needed)
  apply   --server URL --token-file F SNAPSHOT.json
                                        apply a snapshot through the cluster; prints the revision
  status  --server URL [--json]         the node's status
  cluster join  --server URL --id ID --raft-addr HOST:PORT
  cluster leave --server URL --id ID
  setup   [--nocloud DIR | --ovf FILE | --auto] [--root DIR] [--no-apply]
                                        first-boot setup: on the console, or unattended
                                        from NoCloud seed data or vApp properties
  migrate [--check [--temp-dir DIR]]
                                        check (on a copy) or apply the store's schema
                                        migrations; applying refuses while the node runs
  pair    --cloud URL --code CODE       pair with a control plane
  admin set-password --user NAME        set this node's break-glass web UI admin;
                                        the password is read from standard input

Every command takes --config FILE; --server and --token-file default to the
local node named by that configuration.
`

// errUsage is a command-line mistake: usage is printed with it.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := dispatch(ctx, args, stdout, stderr); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "outpost: %v\n\n%s", err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "outpost: %s\n", oneLine(err))
		return 1
	}
	return 0
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "apply":
		return apply(ctx, rest, stdout)
	case "status":
		return status(ctx, rest, stdout)
	case "cluster":
		if len(rest) == 0 {
			return fmt.Errorf("%w: cluster needs join or leave", errUsage)
		}
		switch rest[0] {
		case "join":
			return clusterJoin(ctx, rest[1:], stdout)
		case "leave":
			return clusterLeave(ctx, rest[1:], stdout)
		}
		return fmt.Errorf("%w: unknown cluster command %q", errUsage, rest[0])
	case "pair":
		return pair(ctx, rest, stdout)
	case "admin":
		return admin(rest, stdout)
	case "setup":
		return setup(ctx, rest, stdout)
	case "migrate":
		return migrate(ctx, rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// flags is a subcommand's flag set with the common --config flag.
type flags struct {
	*flag.FlagSet
	configPath string
}

func newFlags(name string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.SetOutput(io.Discard)
	f.StringVar(&f.configPath, "config", "", "node configuration file (YAML)")
	return f
}

// parse accepts flags before and after positional arguments.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUsage, f.Name(), err)
		}
		if f.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
}

func (f *flags) config() (config.Config, error) {
	c, err := config.Load(f.configPath, os.Environ())
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	f := newFlags("serve")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, pos)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	return node.New(cfg, log).Run(ctx)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// clientFlags are --server and --token-file, defaulting to the local node.
type clientFlags struct {
	*flags
	server    string
	tokenFile string
}

func newClientFlags(name string) *clientFlags {
	f := &clientFlags{flags: newFlags(name)}
	f.StringVar(&f.server, "server", "", "node HTTP address (default: this node's http.listen)")
	f.StringVar(&f.tokenFile, "token-file", "", "admin bearer token file (default: this node's)")
	return f
}

func (f *clientFlags) client(needToken bool) (*web.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	server := f.server
	if server == "" {
		server = localAddr(cfg.HTTP.Listen)
	}
	var token string
	if needToken {
		path := f.tokenFile
		if path == "" {
			path = node.TokenPath(cfg)
		}
		if token, err = node.ReadToken(path); err != nil {
			return nil, fmt.Errorf("%w (pass --token-file)", err)
		}
	}
	return web.NewClient(server, token), nil
}

// localAddr turns a listen address into one to dial on this machine.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func apply(ctx context.Context, args []string, stdout io.Writer) error {
	f := newClientFlags("apply")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: apply takes one SNAPSHOT.json", errUsage)
	}
	doc, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	c, err := f.client(true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rev, err := c.ApplySnapshot(ctx, doc)
	if err != nil {
		return fmt.Errorf("apply %s: %w", pos[0], err)
	}
	fmt.Fprintln(stdout, rev)
	return nil
}

func status(ctx context.Context, args []string, stdout io.Writer) error {
	f := newClientFlags("status")
	asJSON := f.Bool("json", false, "print the status document as JSON")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	c, err := f.client(false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if *asJSON {
		raw, err := c.StatusRaw(ctx)
		if err != nil {
			return err
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("decode status: %w", err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	printStatus(stdout, st)
	return nil
}

func printStatus(w io.Writer, st web.Status) {
	yes := map[bool]string{true: "yes", false: "no"}
	leader := st.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "node      %s (site %s)\n", st.NodeID, st.Site)
	fmt.Fprintf(w, "mode      %s\n", st.Mode)
	if st.Ready {
		fmt.Fprintln(w, "ready     yes")
	} else {
		fmt.Fprintf(w, "ready     no (%s)\n", st.NotReadyReason)
	}
	fmt.Fprintf(w, "leader    %s   quorum %s\n", leader, yes[st.Quorum])
	fmt.Fprintf(w, "revision  %d\n", st.Revision)
	fmt.Fprintf(w, "phones    %d registered, %d active calls, %d journal records and %d voicemail messages pending\n",
		st.Registrations, st.ActiveCalls, st.JournalPending, st.VoicemailPending)
	fmt.Fprintln(w, "members")
	for _, m := range st.Members {
		role := "follower"
		if m.Leader {
			role = "leader"
		}
		health := "healthy"
		if !m.Healthy {
			health = "DOWN"
		}
		fmt.Fprintf(w, "  %-12s %-8s %-21s %-8s %s\n", m.ID, m.Site, m.RaftAddr, role, health)
	}
	if len(st.Trunks) > 0 {
		fmt.Fprintln(w, "trunks")
		for _, t := range st.Trunks {
			line := fmt.Sprintf("  %-12s %-8s", t.ID, t.State)
			if t.RTTMs != nil {
				line += fmt.Sprintf(" rtt %.1f ms", *t.RTTMs)
			}
			if t.LastError != "" && t.State != "up" {
				line += "  " + t.LastError
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(st.PromptsMissing) > 0 {
		fmt.Fprintf(w, "prompts   built-in played instead of: %s\n", strings.Join(st.PromptsMissing, ", "))
	}
}

func clusterJoin(ctx context.Context, args []string, stdout io.Writer) error {
	f := newClientFlags("cluster join")
	id := f.String("id", "", "ID of the node to add")
	raftAddr := f.String("raft-addr", "", "HOST:PORT of the node's Raft listener")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 || *id == "" || *raftAddr == "" {
		return fmt.Errorf("%w: cluster join needs --id and --raft-addr", errUsage)
	}
	c, err := f.client(true)
	if err != nil {
		return err
	}
	if err := c.Join(ctx, *id, *raftAddr); err != nil {
		return fmt.Errorf("join %s: %w", *id, err)
	}
	fmt.Fprintf(stdout, "%s joined\n", *id)
	return nil
}

func clusterLeave(ctx context.Context, args []string, stdout io.Writer) error {
	f := newClientFlags("cluster leave")
	id := f.String("id", "", "ID of the node to remove")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 || *id == "" {
		return fmt.Errorf("%w: cluster leave needs --id", errUsage)
	}
	c, err := f.client(true)
	if err != nil {
		return err
	}
	if err := c.Leave(ctx, *id); err != nil {
		return fmt.Errorf("leave %s: %w", *id, err)
	}
	fmt.Fprintf(stdout, "%s removed\n", *id)
	return nil
}
