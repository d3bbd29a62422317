// Package calls will own the call model: legs, bridges, routing decisions
// turned into SIP, transfers, hold, and call records for the outage journal.
// The routing decision itself stays pure (no sockets, no clock). Not built
// yet: issue 3.
package calls
