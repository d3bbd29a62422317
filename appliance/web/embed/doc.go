// Package embed is the embeddable call widget: the page at
// /embed?origin=<host origin> that a CRM frames, and the small API its
// script calls (/embed/api/...). The widget speaks
// shared/contract/embed-events.md with its host through postMessage, and
// acts on the signed-in user's real calls through the B2BUA (Backend).
//
// It owns: which origins may frame the widget (the snapshot's
// embed.allowed_origins, enforced with CSP frame-ancestors), the widget's
// sign-in (SIP username and password checked against the HA1, or an
// admin-issued widget token) with its lockout, the stateless signed
// bearer tokens, the validation of the host's requests, and the mapping
// of engagement events to the messages the widget posts (docs/embed.md).
//
// It must never set a cookie (third-party cookies are unreliable in a
// cross-site frame, and bearer tokens make CSRF moot), post to an origin
// other than the one the page was allowed for, render a name other than
// as text, or write the store: it reads the configuration and asks the
// B2BUA to act.
package embed
