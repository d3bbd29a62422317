package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/prompts"
	"github.com/outpost-voice/outpost/cloudsync"
)

// Custom prompts (issue 6): the snapshot's prompts[] name, for a prompt
// name, a blob in the cloud and its SHA-256. Every node fetches the blobs
// of the snapshot in force itself, into <data_dir>/blobs (the audio never
// goes through Raft), and its prompt library plays a custom recording once
// it is on disk and intact, the built-in prompt of that name meanwhile.
// Nothing here blocks a call: the fetcher runs on its own, and the status
// lists, as prompts_missing, every name that falls back.

// promptPoll is how often the configuration generation, the cloud
// identity and the fetcher are looked at.
const promptPoll = 250 * time.Millisecond

// promptConfig is what the prompts need from the configuration served.
type promptConfig struct {
	custom     []account.Prompt
	referenced []string // the prompt names routes and the call-out greeting use
}

// nodePrompts is the node's prompt library, fed with the snapshot's custom
// prompts, and the fetcher of their blobs.
type nodePrompts struct {
	log      *slog.Logger
	lib      *prompts.Library
	fetcher  *cloudsync.BlobFetcher
	read     func(context.Context) (promptConfig, error) // the configuration served
	gen      func() uint64                               // moves when it may have changed
	identity func() uint64                               // moves when the cloud identity changes

	mu      sync.Mutex
	fetched uint64 // the fetcher's count when the library was last warmed
}

// newPrompts builds the node's prompts on its data directory, store,
// cluster and cloud identity. Call it once the cluster is open (after
// cluster.Open in start) and before the IVR endpoints are built (they
// play from Library); Run keeps it current.
func newPrompts(n *Node) (*nodePrompts, error) {
	client := func() *cloudsync.Client {
		if n.cloud == nil {
			return nil
		}
		_, c, _ := n.cloud.current()
		return c
	}
	identity := func() uint64 {
		if n.cloud == nil {
			return 0
		}
		_, _, id := n.cloud.current()
		return id
	}
	r := n.store.Reader()
	read := func(ctx context.Context) (promptConfig, error) {
		return readPromptConfig(ctx, r.Prompts, r.SDGs, r.Numbers, r.Callout)
	}
	return newPromptsWith(filepath.Join(n.cfg.DataDir, "blobs"), client, read,
		n.cluster.FSM().ConfigGeneration, identity, n.log)
}

func newPromptsWith(dir string, client func() *cloudsync.Client, read func(context.Context) (promptConfig, error),
	gen, identity func() uint64, log *slog.Logger) (*nodePrompts, error) {
	blobs, err := cloudsync.OpenBlobDir(dir)
	if err != nil {
		return nil, fmt.Errorf("custom prompts: %w", err)
	}
	fetcher, err := cloudsync.NewBlobFetcher(cloudsync.BlobFetcherConfig{Dir: blobs, Client: client, Log: log})
	if err != nil {
		return nil, fmt.Errorf("custom prompts: %w", err)
	}
	return &nodePrompts{
		log:      log.With("component", "prompts"),
		lib:      prompts.NewLibrary(fetcher, log), // it names its component
		fetcher:  fetcher,
		read:     read,
		gen:      gen,
		identity: identity,
	}, nil
}

// Library is what the IVR endpoints play from.
func (p *nodePrompts) Library() *prompts.Library { return p.lib }

// Missing lists, sorted, the prompt names that do not play what the
// account configured (a custom recording not fetched yet, damaged, not a
// playable WAV; a name with neither a recording nor a built-in prompt):
// the status's prompts_missing.
func (p *nodePrompts) Missing() []string {
	ms := p.lib.Missing()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// Run fetches the blobs of the configuration served and keeps the library
// on it, following its changes, until ctx ends.
func (p *nodePrompts) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.fetcher.Run(ctx) }()
	defer wg.Wait()
	seen, loaded := uint64(0), false
	identity := p.identity()
	every(ctx, promptPoll, func() bool {
		if id := p.identity(); id != identity {
			identity = id
			p.fetcher.Wake() // paired, or paired again: try now
		}
		if g := p.gen(); !loaded || g != seen {
			if err := p.refresh(ctx); err != nil {
				if ctx.Err() == nil {
					p.log.Warn("cannot read the custom prompts of the configuration; keeping the previous ones", "error", err)
				}
			} else {
				seen, loaded = g, true
			}
		}
		p.warm(false)
		return false
	})
}

// refresh reads the configuration served, hands its blobs to the fetcher
// and its prompts to the library.
func (p *nodePrompts) refresh(ctx context.Context) error {
	cfg, err := p.read(ctx)
	if err != nil {
		return err
	}
	refs := make([]cloudsync.BlobRef, len(cfg.custom))
	custom := make([]prompts.Custom, len(cfg.custom))
	for i, c := range cfg.custom {
		refs[i] = cloudsync.BlobRef{ID: c.Blob, SHA256: c.SHA256}
		custom[i] = prompts.Custom{Name: c.Name, BlobID: c.Blob, SHA256: c.SHA256}
	}
	// The fetcher first: the library reads the blobs through it.
	p.fetcher.Want(refs)
	p.lib.SetCustom(custom, cfg.referenced...)
	p.warm(true)
	return nil
}

// warm resolves every prompt when the configuration changed (force) or
// new blobs arrived, so the library decodes the recordings here rather
// than on a caller's first call, and logs what falls back.
func (p *nodePrompts) warm(force bool) {
	n := p.fetcher.Status().Fetched
	p.mu.Lock()
	if n == p.fetched && !force {
		p.mu.Unlock()
		return
	}
	p.fetched = n
	p.mu.Unlock()
	p.lib.Missing()
}

// readPromptConfig reads the custom prompts and the prompt names the
// configuration uses: every IVR route's (SDGs' and numbers', nested
// routes included) and the call-out greeting.
func readPromptConfig(ctx context.Context,
	readPrompts func(context.Context) ([]account.Prompt, error),
	readSDGs func(context.Context) ([]account.SDG, error),
	readNumbers func(context.Context) ([]account.Number, error),
	readCallout func(context.Context) (account.Callout, error)) (promptConfig, error) {
	var cfg promptConfig
	var err error
	if cfg.custom, err = readPrompts(ctx); err != nil {
		return promptConfig{}, err
	}
	sdgs, err := readSDGs(ctx)
	if err != nil {
		return promptConfig{}, err
	}
	numbers, err := readNumbers(ctx)
	if err != nil {
		return promptConfig{}, err
	}
	callout, err := readCallout(ctx)
	if err != nil {
		return promptConfig{}, err
	}
	names := map[string]bool{}
	for _, g := range sdgs {
		routePrompts(g.Route, names)
	}
	for _, num := range numbers {
		routePrompts(num.Route, names)
	}
	if callout.GreetingPrompt != "" {
		names[callout.GreetingPrompt] = true
	}
	for name := range names {
		cfg.referenced = append(cfg.referenced, name)
	}
	slices.Sort(cfg.referenced)
	return cfg, nil
}

// routePrompts adds the prompts of r's IVRs, nested ones included, to
// names. Routes are validated loop-free, and only SDG references leave a
// route, so the walk ends.
func routePrompts(r *account.Route, names map[string]bool) {
	if r == nil {
		return
	}
	if r.Type == account.RouteIVR && r.Prompt != "" {
		names[r.Prompt] = true
	}
	routePrompts(r.NoAnswer, names)
	routePrompts(r.NoInput, names)
	for _, o := range r.Options {
		routePrompts(o, names)
	}
}
