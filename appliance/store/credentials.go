package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// metaCloudCredentials holds the cluster's cloud identity (JSON).
const metaCloudCredentials = "cloud_credentials"

// ErrInvalidCredentials marks cloud credentials the store will not keep:
// a field missing.
var ErrInvalidCredentials = errors.New("invalid cloud credentials")

// CloudCredentials are the appliance's identity at its cloud, as pairing
// gave them (cloudsync.Credentials, the same JSON): replicated so that
// whichever node leads can talk to the cloud, though only one node was
// paired. The secret is as sensitive here as in the credentials file.
type CloudCredentials struct {
	URL         string    `json:"url"`
	ApplianceID string    `json:"appliance_id"`
	Secret      string    `json:"secret"`
	PushKey     string    `json:"push_key"`
	PairedAt    time.Time `json:"paired_at"`
}

// Check says which field is missing.
func (c CloudCredentials) Check() error {
	switch {
	case c.URL == "", c.ApplianceID == "", c.Secret == "", c.PushKey == "":
		return fmt.Errorf("%w: url, appliance_id, secret and push_key are required", ErrInvalidCredentials)
	case c.PairedAt.IsZero():
		return fmt.Errorf("%w: paired_at is required", ErrInvalidCredentials)
	}
	return nil
}

// SetCloudCredentials keeps c as the cluster's cloud identity unless the
// one held was paired later (a node re-paired is newer; a node restarted
// with an old credentials file must not win). It reports whether c was
// kept. Invalid credentials are ErrInvalidCredentials and change nothing.
func (tx *Tx) SetCloudCredentials(c CloudCredentials) (kept bool, err error) {
	if err := c.Check(); err != nil {
		return false, err
	}
	held, found, err := cloudCredentials(tx.ctx, tx.tx)
	if err != nil {
		return false, err
	}
	if found && !c.PairedAt.After(held.PairedAt) {
		return false, nil
	}
	body, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("encode cloud credentials: %w", err)
	}
	if err := tx.setMeta(metaCloudCredentials, string(body)); err != nil {
		return false, fmt.Errorf("store cloud credentials: %w", err)
	}
	return true, nil
}

// CloudCredentials are the cluster's cloud identity; found is false when
// no node has shared one.
func (r *Reader) CloudCredentials(ctx context.Context) (c CloudCredentials, found bool, err error) {
	return cloudCredentials(ctx, r.db)
}

func cloudCredentials(ctx context.Context, q querier) (CloudCredentials, bool, error) {
	var body string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaCloudCredentials).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return CloudCredentials{}, false, nil
	}
	if err != nil {
		return CloudCredentials{}, false, fmt.Errorf("read cloud credentials: %w", err)
	}
	var c CloudCredentials
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return CloudCredentials{}, false, fmt.Errorf("read cloud credentials: %w", err)
	}
	return c, true, nil
}
