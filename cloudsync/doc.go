// Package cloudsync will own the sync protocol with the cloud control
// plane: the appliance client, the push receiver, the outage journal upload,
// and outpost-cloud, the reference control plane (cmd/outpost-cloud). Not
// built yet: issue 4.
package cloudsync
