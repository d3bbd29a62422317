package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Client calls a node's API: the CLI uses it, and nodes use it to join and
// announce themselves.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient talks to server, a base URL or a bare host:port.
func NewClient(server, token string) *Client {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return &Client{
		base:  strings.TrimRight(server, "/"),
		token: token,
		http:  &http.Client{Timeout: 60 * time.Second},
	}
}

// APIError is a non-2xx answer: its status and error body.
type APIError struct {
	Status  int
	Message string
	// Details are the error's details, e.g. every problem of a refused
	// snapshot.
	Details []ErrorDetail
}

func (e *APIError) Error() string {
	if len(e.Details) == 0 {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	parts := make([]string, len(e.Details))
	for i, d := range e.Details {
		parts[i] = d.String()
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Message, e.Status, strings.Join(parts, "; "))
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, account.MaxSnapshotBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error   string        `json:"error"`
			Details []ErrorDetail `json:"details"`
			// Problems is what a node of an earlier release answers
			// instead of details (a follower may forward to one while a
			// cluster is upgraded).
			Problems []ErrorDetail `json:"problems"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if len(e.Details) == 0 {
			e.Details = e.Problems
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error, Details: e.Details}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.do(ctx, http.MethodPost, path, bytes.NewReader(body), out)
}

// Status reads GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, &st)
	return st, err
}

// StatusRaw is the status document as the node sent it.
func (c *Client) StatusRaw(ctx context.Context) ([]byte, error) {
	var raw []byte
	err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, &raw)
	return raw, err
}

// ApplySnapshot posts a snapshot document and returns the new revision.
func (c *Client) ApplySnapshot(ctx context.Context, doc []byte) (int64, error) {
	var out RevisionResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/snapshot", bytes.NewReader(doc), &out)
	return out.Revision, err
}

// Snapshot reads the current snapshot document.
func (c *Client) Snapshot(ctx context.Context) ([]byte, error) {
	var raw []byte
	err := c.do(ctx, http.MethodGet, "/api/v1/snapshot", nil, &raw)
	return raw, err
}

// Join asks the cluster behind c to add a voter.
func (c *Client) Join(ctx context.Context, id, raftAddr string) error {
	return c.postJSON(ctx, "/api/v1/cluster/join", JoinRequest{ID: id, RaftAddr: raftAddr}, nil)
}

// Leave asks the cluster behind c to remove a member.
func (c *Client) Leave(ctx context.Context, id string) error {
	return c.postJSON(ctx, "/api/v1/cluster/leave", LeaveRequest{ID: id}, nil)
}

// Announce records a node's addresses and site in the cluster.
func (c *Client) Announce(ctx context.Context, m store.Member) error {
	return c.postJSON(ctx, "/api/v1/cluster/members", m, nil)
}

// ApplyShared proposes a presence-plane command (see cluster.Shareable).
func (c *Client) ApplyShared(ctx context.Context, cmd []byte) error {
	return c.do(ctx, http.MethodPost, "/api/v1/cluster/apply", bytes.NewReader(cmd), nil)
}

// Journal lists the newest call records (at most limit).
func (c *Client) Journal(ctx context.Context, limit int) ([]store.CallRecord, error) {
	var out struct {
		Records []store.CallRecord `json:"records"`
	}
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/journal?limit=%d", limit), nil, &out)
	return out.Records, err
}

// SetMode sets the appliance's mode.
func (c *Client) SetMode(ctx context.Context, mode string) error {
	return c.postJSON(ctx, "/api/v1/mode", ModeRequest{Mode: mode}, nil)
}

// Live reports whether the node answers /livez.
func (c *Client) Live(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/livez", nil, nil)
}

// IsStatus reports whether err is an APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}
