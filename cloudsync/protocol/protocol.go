// Package protocol is the wire format of the sync protocol between an
// Outpost appliance and its cloud control plane (docs/sync-protocol.md):
// the paths, headers and bodies both sides use, the delta format and its
// pure diff and apply, and the push signature. The appliance's client
// (package cloudsync) and outpost-cloud (package cloud) both build on it,
// so the two cannot drift apart.
package protocol

import (
	"encoding/json"
	"time"
)

// Paths of the appliance-facing API, relative to the cloud's base URL.
const (
	PathPair     = "/v1/pair"          // POST PairRequest -> PairResponse (no credentials yet)
	PathHello    = "/v1/sync/hello"    // POST Hello -> HelloResponse: reachability probe and push registration
	PathSnapshot = "/v1/sync/snapshot" // GET -> the snapshot document; ETag, If-None-Match -> 304
	PathChanges  = "/v1/sync/changes"  // GET ?since=N&wait=SECONDS -> Changes | 204 | 410 Gone
	PathAck      = "/v1/sync/ack"      // POST Ack -> 204
	PathJournal  = "/v1/sync/journal"  // POST JournalBatch with Idempotency-Key -> JournalReceipt
	// PathOverrides: POST OverrideReport with Idempotency-Key ->
	// OverrideReceipt: the SDG overrides in force on the appliance.
	PathOverrides = "/v1/sync/overrides"
	// PathBlobs + a blob id (a snapshot prompt's "blob"): GET -> the
	// blob's bytes (a custom prompt's WAV), 404 when the cloud has none.
	PathBlobs = "/v1/sync/blobs/"
)

// Headers.
const (
	// HeaderAppliance names the appliance on every authenticated request;
	// Authorization carries "Bearer <secret>".
	HeaderAppliance = "X-Outpost-Appliance"
	// HeaderRevision is the cloud's current revision on snapshot and
	// changes answers (204 included).
	HeaderRevision = "X-Outpost-Revision"
	// HeaderIdempotencyKey makes a journal batch, or an override report,
	// safe to retry.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on the cloud's answer to a
	// request whose Idempotency-Key it had already answered.
	HeaderIdempotentReplayed = "Idempotent-Replayed"

	// Push headers (cloud -> appliance, POST PathPushReceiver).
	HeaderPushID        = "X-Outpost-Push-Id"
	HeaderPushTimestamp = "X-Outpost-Push-Timestamp" // unix seconds
	HeaderPushSignature = "X-Outpost-Push-Signature" // hex HMAC-SHA256, see SignPush
)

// PathPushReceiver is where an appliance node takes pushes, on its HTTP
// listener.
const PathPushReceiver = "/api/v1/cloud/push"

// Limits both sides agree on.
const (
	// MaxWait is the longest long-poll the cloud holds a changes request.
	MaxWait = 60 * time.Second
	// PushTolerance is how far a push's timestamp may be from the
	// receiver's clock.
	PushTolerance = 5 * time.Minute
	// MaxJournalBatch is the most records one journal batch may carry.
	MaxJournalBatch = 5000
	// MaxOverrides is the most SDG overrides one report may carry.
	MaxOverrides = 10_000
	// MaxBlobBytes bounds a blob (a custom prompt's WAV: 5 MiB is about
	// 5.5 minutes of 8 kHz 16-bit mono audio).
	MaxBlobBytes = 5 << 20
)

// PairRequest exchanges a one-use pairing code for credentials.
type PairRequest struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"` // how the appliance calls itself (informational)
}

// PairResponse is what pairing gives the appliance; the appliance stores it
// 0600 in cloud.credentials_file.
type PairResponse struct {
	ApplianceID string `json:"appliance_id"` // the name the pairing code was made for
	Secret      string `json:"secret"`       // bearer secret for every later request
	PushKey     string `json:"push_key"`     // hex key the cloud signs pushes with
	Revision    int64  `json:"revision"`     // the cloud's revision at pairing time
}

// Hello is the leader's periodic probe; it also tells the cloud where to
// push.
type Hello struct {
	NodeID   string `json:"node_id"`
	Revision int64  `json:"revision"`           // the revision the appliance serves
	PushURL  string `json:"push_url,omitempty"` // base URL of the node's HTTP listener
	Version  string `json:"version,omitempty"`
	// Overrides is how many SDG overrides are in force on the appliance
	// (PathOverrides reports them); absent from appliances of releases
	// before override reports.
	Overrides *int `json:"overrides,omitempty"`
}

// HelloResponse is the cloud's answer to a probe.
type HelloResponse struct {
	Revision int64     `json:"revision"` // the cloud's current revision
	Time     time.Time `json:"time"`
}

// Op is one change to the snapshot document.
type Op struct {
	// Op is "put" (insert or replace the object of a collection whose key
	// is ID), "delete" (remove it) or "set" (replace a top-level singleton:
	// account, callout, embed).
	Op   string          `json:"op"`
	Kind string          `json:"kind"`           // top-level key: users, sdgs, numbers, trunks, sites, admins, prompts; or the singleton's key
	ID   string          `json:"id,omitempty"`   // the object's key (id; number for numbers; username for admins; name for prompts)
	Data json.RawMessage `json:"data,omitempty"` // the object (put) or value (set)
}

// Operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
	OpSet    = "set"
)

// Revision is the set of changes that made one revision from the previous.
type Revision struct {
	Revision int64 `json:"revision"`
	Ops      []Op  `json:"ops"`
}

// Changes answers a changes request: every revision after From up to To,
// in order. Applying them to the snapshot at From gives the snapshot at To.
type Changes struct {
	From      int64      `json:"from"`
	To        int64      `json:"to"`
	Revisions []Revision `json:"revisions"`
}

// Ack reports what the appliance did with a revision.
type Ack struct {
	Revision int64     `json:"revision"`
	Status   string    `json:"status"` // AckApplied | AckRejected
	Problems []Problem `json:"problems,omitempty"`
	NodeID   string    `json:"node_id,omitempty"`
}

// Ack statuses.
const (
	AckApplied  = "applied"
	AckRejected = "rejected"
)

// Problem is one validation problem (as account.Problem).
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// JournalBatch uploads call records (store.CallRecord's JSON) in one
// request.
type JournalBatch struct {
	Records []json.RawMessage `json:"records"`
}

// JournalReceipt says what the cloud did with a batch: records it stored
// now, and records it already had (by id). A retried batch (same
// Idempotency-Key) gets the first answer again.
type JournalReceipt struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Override is one emergency SDG override in force on the appliance, as
// its GET /api/v1/sdgs/overrides shows it: calls to the SDG SDGID walk
// Route (an account.Route) instead of the snapshot's route. By made it at
// At, on the configuration of revision Revision.
type Override struct {
	SDGID    string          `json:"sdg_id"`
	Route    json.RawMessage `json:"route"`
	By       string          `json:"by"`
	At       time.Time       `json:"at"`
	Revision int64           `json:"revision"`
}

// OverrideReport is every SDG override in force on the appliance, by SDG
// id, possibly none: it replaces the report the cloud had. Overrides is
// never null on the wire.
type OverrideReport struct {
	Overrides []Override `json:"overrides"`
}

// OverrideReceipt says the cloud took a report: Accepted is how many
// overrides it holds. A report sent again with the key of the report the
// cloud holds gets the same answer.
type OverrideReceipt struct {
	Accepted int `json:"accepted"`
}

// Push wakes the appliance's pull: it is never applied as data.
type Push struct {
	Revision int64 `json:"revision"`
}

// Error is the body of every 4xx/5xx answer of the sync API.
type Error struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
	Current  int64     `json:"current,omitempty"` // on 410: the cloud's revision, fetch the snapshot
}
