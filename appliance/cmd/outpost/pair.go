package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/outpost-voice/outpost/cloudsync"
)

// pair exchanges a one-use pairing code for the appliance's credentials
// and writes them, 0600, to cloud.credentials_file (docs/sync-protocol.md).
func pair(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("pair")
	var cloudURL, code string
	f.StringVar(&cloudURL, "cloud", "", "control plane base URL")
	f.StringVar(&code, "code", "", "one-use pairing code")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: pair takes no arguments, got %q", errUsage, pos)
	}
	if cloudURL == "" || code == "" {
		return fmt.Errorf("%w: pair needs --cloud and --code", errUsage)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	creds, err := cloudsync.Pair(ctx, cloudURL, code, cfg.NodeID)
	if err != nil {
		return err
	}
	path := cfg.CloudCredentialsFile()
	if err := cloudsync.SaveCredentials(path, creds); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	fmt.Fprintf(stdout, "paired with %s as %s; credentials in %s\n", creds.URL, creds.ApplianceID, path)
	return nil
}
