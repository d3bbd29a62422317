package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/mwi"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/web"
	"github.com/outpost-voice/outpost/appliance/web/embed"
	"github.com/outpost-voice/outpost/cloudsync"
	"github.com/outpost-voice/outpost/config"
)

// drainTimeout bounds how long a stopping node waits for HTTP requests in flight.
const drainTimeout = 10 * time.Second

// Node is one running Outpost node.
type Node struct {
	cfg config.Config
	log *slog.Logger

	token        string
	bootstrapDoc []byte

	store     *store.Store
	unlockDir func() error // releases the data directory's lock (store.LockDir)
	rotations *rotations   // rotating groups' state, shared through Raft
	cluster   *cluster.Cluster
	health    *cluster.Health
	web       *web.Server
	httpLn    net.Listener
	httpsLn   net.Listener // nil unless http.tls_listen is set
	raftLn    net.Listener
	sip       *sipEndpoint
	dns       *dnsEndpoint // nil unless dns.listen is set

	bindingSharer *sharer[store.Binding]
	journal       *journal
	cloud         *cloudState
	trunks        *trunks
	prompts       *nodePrompts // custom prompts: the IVRs' library and the blobs it plays
	voicemail     *nodeVoicemail
	mwi           *mwi.Notifier // message waiting (mwi.go)
	mwiReady      atomic.Bool   // set once mwi is

	httpAdvertise string
	sipAdvertise  string

	mu       sync.Mutex
	readyErr error
	started  chan struct{}
}

// New prepares a node; nothing is opened or bound until Run.
func New(cfg config.Config, log *slog.Logger) *Node {
	return &Node{
		cfg:      cfg,
		log:      log.With("node_id", cfg.NodeID),
		readyErr: errors.New("starting"),
		started:  make(chan struct{}),
	}
}

// Started is closed once every listener is bound (HTTPAddr and RaftAddr are
// then valid), before readiness.
func (n *Node) Started() <-chan struct{} { return n.started }

// HTTPAddr is the bound HTTP address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// RaftAddr is the address other members dial for Raft.
func (n *Node) RaftAddr() string { return n.cluster.RaftAddr() }

// Run starts the node, serves until ctx ends, then stops it cleanly.
func (n *Node) Run(ctx context.Context) error {
	if err := n.start(); err != nil {
		n.closeAll()
		return err
	}
	close(n.started)
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(bg) }()
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- n.web.Serve(n.httpLn) }()
	if n.httpsLn != nil {
		go func() { serveErr <- n.web.Serve(n.httpsLn) }()
	}
	run(func(ctx context.Context) { n.health.Run(ctx, n.store.Reader().Members) })
	run(n.joinLoop)
	run(n.announceLoop)
	run(n.bootstrapSnapshotLoop)
	run(n.readinessLoop)
	run(n.systemdLoop)
	run(n.serveSIP)
	run(func(ctx context.Context) { n.bindingSharer.run(ctx, n.log, n.propose) })
	run(func(ctx context.Context) { n.journal.sharer.run(ctx, n.log, n.propose) })
	run(n.journal.run)
	run(func(ctx context.Context) { n.voicemail.sharer.run(ctx, n.log, n.propose) })
	run(n.voicemail.replicator.Run)
	run(n.mwi.Run)
	run(n.rotations.Run)
	run(n.pruneLoop)
	run(n.trimMemoryLoop)
	run(n.cloudIdentityLoop)
	run(n.cloudLoop)
	run(n.trunkLoop)
	run(n.prompts.Run)
	run(n.serveDNS)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	n.log.Info("stopping")
	notify(n.log, "STOPPING=1")
	stopBG()
	wg.Wait()
	return errors.Join(err, n.stop())
}

func (n *Node) start() error {
	c := n.cfg
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := store.LockDir(c.DataDir)
	if err != nil {
		return err
	}
	n.unlockDir = unlock
	token, err := loadToken(c)
	if err != nil {
		return err
	}
	n.token = token
	if c.BootstrapSnapshot != "" {
		if n.bootstrapDoc, err = readBootstrapSnapshot(c.BootstrapSnapshot); err != nil {
			return err
		}
	}
	if n.store, err = store.Open(c.DBPath(), n.log); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if n.raftLn, err = net.Listen("tcp", c.Raft.Listen); err != nil {
		return fmt.Errorf("listen raft on %s: %w", c.Raft.Listen, err)
	}
	if n.httpLn, err = net.Listen("tcp", c.HTTP.Listen); err != nil {
		return fmt.Errorf("listen http on %s: %w", c.HTTP.Listen, err)
	}
	if err := n.listenHTTPS(); err != nil {
		return err
	}
	n.httpAdvertise = config.Advertised(c.HTTP.Advertise, n.httpLn.Addr().String(), fallbackHost(c))
	n.cluster, err = cluster.Open(cluster.Config{
		NodeID:            c.NodeID,
		RaftDir:           c.RaftDir(),
		Listener:          n.raftLn,
		Advertise:         config.Advertised(c.Raft.Advertise, n.raftLn.Addr().String(), fallbackHost(c)),
		Bootstrap:         c.Raft.Bootstrap && len(c.Raft.Join) == 0,
		HeartbeatTimeout:  c.Raft.HeartbeatTimeout.Duration,
		ElectionTimeout:   c.Raft.ElectionTimeout.Duration,
		SnapshotThreshold: c.Raft.SnapshotThreshold,
		Store:             n.store,
		Log:               n.log,
	})
	if err != nil {
		return err
	}
	if n.prompts, err = newPrompts(n); err != nil {
		return err
	}
	if err := n.startSIP(); err != nil {
		return err
	}
	n.rotations = newRotations(n)
	n.sip.calls.SetRotations(n.rotations)
	if n.voicemail, err = newVoicemail(n); err != nil {
		return err
	}
	n.sip.calls.SetVoicemail(n.voicemail.box)
	n.startMWI()
	// A credentials file that cannot be read stops the start, loudly;
	// none at all is fine (another node may be paired, or none).
	if _, err := cloudsync.LoadCredentials(c.CloudCredentialsFile()); err != nil && !errors.Is(err, cloudsync.ErrNotPaired) {
		return fmt.Errorf("cloud credentials: %w", err)
	}
	n.cloud = &cloudState{}
	n.health = cluster.NewHealth(c.NodeID, time.Second)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(n.cluster.Collectors()...)
	reg.MustRegister(n.trunks.collectors()...)
	reg.MustRegister(n.sip.guard.Collectors()...) // the SIP flood guard (sipguard.go)
	reg.MustRegister(n.voicemail.replicator.Collectors()...)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "outpost", Subsystem: "store", Name: "size_bytes",
		Help: "Size of the node's SQLite database, WAL included.",
	}, func() float64 {
		size, _ := n.store.SizeBytes()
		return float64(size)
	}))
	if err := n.startDNS(reg); err != nil {
		return err
	}
	n.sip.calls.SetParkPeers(n.parkPeers) // after n.health: it asks the healthy members only
	n.web = web.New(web.Deps{
		Trunks:         n.trunkStatus,
		NodeID:         c.NodeID,
		Site:           c.Site,
		CloudURL:       c.Cloud.URL,
		Cloud:          n.cloudStatus,
		Push:           n.cloud,
		AdminToken:     token,
		Cluster:        n.cluster,
		Reader:         n.store.Reader(),
		Healthy:        n.health.Healthy,
		ActiveCalls:    func() int { return n.sip.calls.Active() },
		PromptsMissing: n.prompts.Missing,
		VoicemailAudio: n.voicemail.box.AudioFile,
		ParkSlots:      n.parkSlots,
		Groups:         func(ctx context.Context) (any, error) { return n.sip.calls.Groups(ctx) },
		Calls: func() any {
			if cs := n.sip.calls.Calls(); cs != nil {
				return cs
			}
			return []calls.CallStatus{}
		},
		// What the cloud has not taken yet (all of it when not paired).
		JournalPending:   n.store.Reader().CountPendingCallRecords,
		VoicemailPending: n.store.Reader().CountPendingVoicemailUploads,
		Registrations: func(ctx context.Context) (int, map[string]int, error) {
			return n.store.Reader().BindingCounts(ctx, time.Now())
		},
		EmbedCalls:  n.embedCalls(),
		Conferences: n.conferences(),
		EmbedKey:    embedKey(n.token),
		DataDir:     c.DataDir,
		HTTPSAddr:   n.HTTPSAddr(),
		Config:      func() config.Config { return c },
		Ready:       n.Ready,
		Registry:    reg,
		Log:         n.log.With("component", "web"),
	})
	n.log.Info("node started", "http_addr", n.httpLn.Addr().String(), "raft_addr", n.cluster.RaftAddr(),
		"sip", strings.Join(n.sip.addrs(), ","), "data_dir", c.DataDir, "site", c.Site)
	return nil
}

// stop drains HTTP, hands over leadership, stops Raft and closes the store.
func (n *Node) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var errs []error
	if err := n.web.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, n.closeAll())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n.log.Info("stopped cleanly")
	return nil
}

func (n *Node) closeAll() error {
	var errs []error
	n.sip.close()
	if n.cluster != nil {
		if err := n.cluster.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	} else if n.raftLn != nil {
		_ = n.raftLn.Close()
	}
	if n.httpLn != nil {
		_ = n.httpLn.Close()
	}
	if n.httpsLn != nil {
		_ = n.httpsLn.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if n.unlockDir != nil {
		_ = n.unlockDir()
	}
	return errors.Join(errs...)
}

// Ready returns nil once the node can serve: store open and readable, FSM
// applying, a Raft leader known, every listener up.
func (n *Node) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.readyErr
}

func (n *Node) checkReady(ctx context.Context) error {
	if _, err := n.store.Reader().Revision(ctx); err != nil {
		return fmt.Errorf("store not readable: %w", err)
	}
	if err := n.cluster.FSM().Halted(); err != nil {
		return err
	}
	if err := n.cluster.FSM().Stalled(); err != nil {
		return err
	}
	if id, _ := n.cluster.Leader(); id == "" {
		if !n.cluster.HasHistory() {
			return errors.New("not a cluster member yet: waiting to be bootstrapped or joined")
		}
		return errors.New("no raft leader known")
	}
	return nil
}

// readinessLoop keeps Ready current. systemd hears READY=1 once, when the
// store, Raft and every listener are up (Run calls this after start), not
// when a leader is known: a node restarted without quorum still serves its
// last configuration and must not be killed for want of a leader.
func (n *Node) readinessLoop(ctx context.Context) {
	notify(n.log, "READY=1")
	notified := false
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := n.checkReady(ctx)
		n.mu.Lock()
		n.readyErr = err
		n.mu.Unlock()
		if err == nil && !notified {
			notified = true
			n.log.Info("ready", "http_addr", n.HTTPAddr())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fallbackHost replaces an unspecified listen host in advertised addresses:
// the SIP advertise host, else this machine's first non-loopback address.
func fallbackHost(c config.Config) string {
	if c.SIP.Advertise != "" {
		if h, _, err := net.SplitHostPort(c.SIP.Advertise); err == nil {
			return h
		}
		return c.SIP.Advertise
	}
	return primaryIP()
}

func primaryIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// readBootstrapSnapshot reads and checks the bootstrap snapshot up front, so
// a bad file stops the node at start with every problem listed.
func readBootstrapSnapshot(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap_snapshot: %w", err)
	}
	defer f.Close()
	snap, err := account.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("bootstrap_snapshot %s: %w", filepath.Base(path), err)
	}
	if err := account.Validate(snap, 0); err != nil {
		return nil, fmt.Errorf("bootstrap_snapshot %s: %w", filepath.Base(path), err)
	}
	return snap.Encode()
}

// embedCalls is the call engine behind the call widget; nil (not a nil
// *calls.B2BUA in the interface) when SIP is not up.
func (n *Node) embedCalls() embed.Backend {
	if n.sip == nil || n.sip.calls == nil {
		return nil
	}
	return n.sip.calls
}

// embedKey signs the call widget's tokens: the same on every node,
// derived from the cluster token.
func embedKey(token string) []byte {
	k := sha256.Sum256([]byte("outpost embed token v1\x00" + token))
	return k[:]
}

// conferences acts on calls' invitations; nil when SIP is not up.
func (n *Node) conferences() web.Conferences {
	if n.sip == nil || n.sip.calls == nil {
		return nil
	}
	return n.sip.calls
}
