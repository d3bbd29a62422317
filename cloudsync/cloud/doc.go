// Package cloud is outpost-cloud, the reference control plane of the sync
// protocol (docs/sync-protocol.md, docs/cloud.md): it keeps the account's
// snapshot and every revision's ops in SQLite, serves the admin API that
// changes them and the appliance-facing API that pairs appliances, serves
// them the snapshot and its changes (long poll) and the custom prompts'
// recordings (blobs), takes their acks, outage journals and reports of
// the SDG overrides in force (overrides.go, shown to the admins), and
// pushes a signed wake-up to each appliance when the revision changes.
//
// The store (store.go, revisions.go, appliances.go, journal.go, and the
// store halves of blobs.go and overrides.go) is the only thing that writes
// the database; it is clock-free. The server (server.go, admin.go, sync.go,
// push.go, the handlers of blobs.go and overrides.go) validates every
// snapshot with package account before the store sees it, and computes the
// ops with protocol.Diff, so the cloud and the appliance cannot disagree on
// the wire format.
//
// It must never import the appliance's packages: it is a stand-in for a
// real cloud, built only on account and cloudsync/protocol.
package cloud
