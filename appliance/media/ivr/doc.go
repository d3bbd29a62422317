// Package ivr owns the node's own end of a call's media while it answers
// the call itself (IVR menus; later voicemail and call-out greetings): an
// Endpoint is one UDP socket on the media IP that sends prompts to a peer
// (the media relay's side of the call, which forwards them to the caller)
// through the shared player, and hears the caller's keys as RFC 4733
// telephone-events in what comes back, or from SIP INFO handed in.
//
// It must never speak SIP or SDP (the B2BUA negotiates and tells it the
// peer, codec and telephone-event payload type), never mix or transcode
// beyond encoding prompts to G.711, and never block the player's pacing
// goroutine.
package ivr
