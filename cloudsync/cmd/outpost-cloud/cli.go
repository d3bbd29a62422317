package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/cloud"
	"github.com/outpost-voice/outpost/internal/certfile"
)

const usage = `usage: outpost-cloud <command> [flags]

commands:
  serve --listen ADDR --db FILE --admin-token-file F [--seed SNAPSHOT.json]
        [--tls-cert FILE --tls-key FILE] [--history N]
        [--log-level debug|info|warn|error] [--log-format text|json]
                      run the control plane; --seed is applied only to an
                      empty store; with --tls-cert and --tls-key it serves
                      HTTPS and reloads the files when they change; SIGINT
                      or SIGTERM stops it cleanly
  gen   --users N --sdgs M --trunks K [--numbers N] [--sites S] [--seed N]
                      print a synthetic, valid account (a snapshot) on stdout;
                      --numbers defaults to one DID per user plus a main
                      number per site

See docs/cloud.md.
`

// errUsage is a command-line mistake: usage is printed with it.
var errUsage = errors.New("usage")

// shutdownTimeout bounds the drain of requests in flight at shutdown.
const shutdownTimeout = 30 * time.Second

// env is what a command may touch besides its arguments.
type env struct {
	stdout, stderr io.Writer
	// listening, when set (tests), is told the address serve bound.
	listening func(addr string)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, env{stdout: stdout, stderr: stderr})
}

func runEnv(ctx context.Context, args []string, e env) int {
	if err := dispatch(ctx, args, e); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(e.stderr, "outpost-cloud: %v\n\n%s", err, usage)
			return 2
		}
		fmt.Fprintf(e.stderr, "outpost-cloud: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}

func dispatch(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, e)
	case "gen":
		return gen(rest, e.stdout)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// parse parses a subcommand's flags; it takes no positional arguments.
func parse(f *flag.FlagSet, args []string) error {
	f.SetOutput(io.Discard)
	if err := f.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, f.Name(), err)
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, f.Name(), f.Args())
	}
	return nil
}

type serveFlags struct {
	listen, db, tokenFile, seed string
	tlsCert, tlsKey             string
	history                     int
	logLevel, logFormat         string
}

func serve(ctx context.Context, args []string, e env) error {
	var o serveFlags
	f := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.StringVar(&o.listen, "listen", "", "HOST:PORT to serve HTTP (HTTPS with --tls-cert) on")
	f.StringVar(&o.db, "db", "", "SQLite database file (created if missing)")
	f.StringVar(&o.tokenFile, "admin-token-file", "", "file holding the admin API's bearer token")
	f.StringVar(&o.seed, "seed", "", "snapshot applied when the store is empty")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (then its chain) to serve HTTPS with")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.IntVar(&o.history, "history", cloud.DefaultHistory, "revisions kept for changes requests")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text or json")
	if err := parse(f, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--listen": o.listen, "--db": o.db, "--admin-token-file": o.tokenFile} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%w: serve needs %s", errUsage, strings.Join(missing, ", "))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return fmt.Errorf("%w: serve: %w", errUsage, errTLSFlags)
	}
	root, err := newLogger(o.logLevel, o.logFormat, e.stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log := root.With("component", "outpost_cloud")
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	var seedSnap *account.Snapshot
	if o.seed != "" {
		if seedSnap, err = readSeed(o.seed); err != nil {
			return err
		}
	}
	var certs *certfile.Pair
	if o.tlsCert != "" {
		if certs, err = loadCertFiles(o.tlsCert, o.tlsKey, log); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	defer ln.Close()
	scheme := "http"
	if certs != nil {
		ln, scheme = tls.NewListener(ln, serverTLS(certs)), "https"
	}
	st, err := cloud.Open(o.db, cloud.Options{Log: root, History: o.history})
	if err != nil {
		return err
	}
	defer st.Close()
	if seedSnap != nil {
		if err := seed(ctx, st, o.seed, seedSnap, log); err != nil {
			return err
		}
	}
	srv := cloud.New(cloud.Config{Store: st, AdminToken: token, Log: root})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	rev, _ := st.Current()
	log.Info("outpost-cloud listening", "addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String(),
		"db", st.Path(), "revision", rev)
	if e.listening != nil {
		e.listening(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// readToken reads the admin token file, which must exist and hold a token.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w (create it with a random token, mode 0600)", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read admin token: %s is empty", path)
	}
	return tok, nil
}

// readSeed reads and validates a seed snapshot as PUT /v1/admin/snapshot
// would, keeping its revision (1 when it has none).
func readSeed(path string) (*account.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer f.Close()
	snap, err := account.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	snap.Revision = max(snap.Revision, 1)
	if err := account.Validate(snap, 0); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return snap, nil
}

// seed commits snap to an empty store; a store with a snapshot keeps it.
func seed(ctx context.Context, st *cloud.Store, path string, snap *account.Snapshot, log *slog.Logger) error {
	if rev, _ := st.Current(); rev != 0 {
		log.Info("seed ignored: the store already holds a snapshot", "seed", path, "revision", rev)
		return nil
	}
	doc, err := snap.Encode()
	if err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	if _, err := st.Seed(ctx, time.Now(), snap.Revision, doc); err != nil {
		return fmt.Errorf("seed %s: %w", path, err)
	}
	log.Info("store seeded", "seed", path, "revision", snap.Revision, "users", len(snap.Users))
	return nil
}

// gen prints a synthetic account.
func gen(args []string, stdout io.Writer) error {
	var o account.GenerateOptions
	f := flag.NewFlagSet("gen", flag.ContinueOnError)
	f.IntVar(&o.Users, "users", 0, "users")
	f.IntVar(&o.SDGs, "sdgs", 0, "SDGs (survivability distribution groups)")
	f.IntVar(&o.Trunks, "trunks", 0, "trunks, spread over the sites")
	f.IntVar(&o.Numbers, "numbers", -1, "users' DIDs and numbers[] entries together (default: users + sites)")
	f.IntVar(&o.Sites, "sites", 0, "sites (default: one per 500 users, 1 to 40)")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed: the same flags give the same account")
	if err := parse(f, args); err != nil {
		return err
	}
	if o.Users < 0 || o.SDGs < 0 || o.Trunks < 0 || o.Sites < 0 || o.Numbers < -1 {
		return fmt.Errorf("%w: gen: counts must not be negative", errUsage)
	}
	if o.Numbers == -1 {
		// One DID per user and a main number per site; the site count is
		// GenerateOptions.Sites' documented default.
		sites := o.Sites
		if sites == 0 {
			sites = min(max(1, o.Users/500), 40)
		}
		o.Numbers = o.Users + sites
	}
	doc, err := account.Generate(o).Encode()
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	w.Write(doc)
	w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}
