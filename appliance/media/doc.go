// Package media will own RTP (pion/rtp): anchoring and relay where a
// feature needs the node in the media path, prompts, RFC 4733 DTMF and
// conference mixing. Not built yet: issues 5, 6 and 8.
package media
