package account

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Snapshot is the account's whole desired state at one revision, as the cloud
// control plane publishes it (shared/CONTRACT.md, "Snapshot").
type Snapshot struct {
	Revision int64    `json:"revision"`
	Account  Account  `json:"account"`
	Sites    []Site   `json:"sites"`
	Users    []User   `json:"users"`
	SDGs     []SDG    `json:"sdgs"`
	Numbers  []Number `json:"numbers"`
	Trunks   []Trunk  `json:"trunks"`
	Callout  Callout  `json:"callout"`
	Admins   []Admin  `json:"admins"`
	Embed    Embed    `json:"embed"`
	// Prompts are the account's custom recordings (an extension of the
	// contract); nil means none: every prompt plays the built-in
	// recording of its name. The canonical encoding omits the key when
	// there are none, so decoding (and WithChanges) give nil, never an
	// empty list.
	Prompts []Prompt `json:"prompts,omitempty"`
}

// Account names the tenant and its SIP digest realm.
type Account struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	SIPRealm string `json:"sip_realm"`
}

// Site is one office: its phones, its trunks and its emergency settings.
type Site struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Country    string    `json:"country"`
	Timezone   string    `json:"timezone"`
	AreaCode   string    `json:"area_code"`
	MainNumber string    `json:"main_number"`
	Emergency  Emergency `json:"emergency"`
	// Outbound is the site's toll-fraud policy for calls to the PSTN;
	// nil (absent) means the default: the site's own country only, no
	// premium rate, two calls at once per user.
	Outbound *Outbound `json:"outbound,omitempty"`
}

// International settings of an Outbound policy.
const (
	InternationalSameCountry = "same_country" // the site's own country only (NANP: the US/CA zone)
	InternationalList        = "list"         // the site's country and allowed_countries
	InternationalAll         = "all"          // anywhere
)

// Outbound is a site's toll-fraud policy (an extension of the contract's
// snapshot; docs/sip.md, "Calls out").
type Outbound struct {
	// International is same_country, list or all; "" means same_country.
	International string `json:"international"`
	// AllowedCountries, with International "list": ISO alpha-2 codes
	// ("GB"), calling codes ("+353") or "NANP".
	AllowedCountries []string `json:"allowed_countries"`
	// AllowPremium lets calls reach premium-rate numbers (+1 900).
	AllowPremium bool `json:"allow_premium"`
	// MaxCallsPerUser is the concurrent outbound calls per user: 0 means
	// the default (2), -1 no limit.
	MaxCallsPerUser int `json:"max_calls_per_user"`
}

// Emergency holds a site's emergency dial strings, the ELINs presented as
// caller ID on emergency calls, and the dispatchable address.
type Emergency struct {
	Numbers  []string `json:"numbers"`
	ELINPool []string `json:"elin_pool"`
	Address  Address  `json:"address"`
}

// Address is a civic address.
type Address struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	Region     string `json:"region"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// User is a person with a phone: extension, direct numbers and SIP credentials.
type User struct {
	ID        string         `json:"id"`
	Site      string         `json:"site"`
	Name      string         `json:"name"`
	Email     string         `json:"email"`
	Extension string         `json:"extension"`
	Numbers   []string       `json:"numbers"`
	SIP       SIPCredentials `json:"sip"`
	// Priority is the user's admission priority when a site's node is
	// near capacity (an extension of the contract): PriorityNormal (or
	// empty, the default), PriorityEmergency or PriorityCommonArea. The
	// canonical encoding omits it when empty.
	Priority string `json:"priority,omitempty"`
	// Voicemail is the user's mailbox settings (an extension of the
	// contract); nil means the defaults: enabled, no answer after
	// DefaultVoicemailNoAnswerS, the built-in greeting. The canonical
	// encoding omits it when nil.
	Voicemail *Voicemail `json:"voicemail,omitempty"`
}

// Voicemail limits and defaults (docs/sip.md, "Voicemail").
const (
	DefaultVoicemailNoAnswerS = 20
	MinVoicemailNoAnswerS     = 5
	MaxVoicemailNoAnswerS     = 120
)

// Voicemail is a user's mailbox settings (users[].voicemail, an extension
// of the contract's snapshot; docs/architecture.md, "Extensions to the
// contract"). Every field is optional.
type Voicemail struct {
	// Enabled turns the mailbox off with false; nil (absent) means on.
	Enabled *bool `json:"enabled,omitempty"`
	// NoAnswerS is how long the user's phones ring before the call goes
	// to the mailbox, MinVoicemailNoAnswerS to MaxVoicemailNoAnswerS; 0
	// (absent) means DefaultVoicemailNoAnswerS.
	NoAnswerS int `json:"no_answer_s,omitempty"`
	// Greeting names the user's own greeting: a prompts[] entry, whose
	// WAV is synced as a blob like every custom prompt. "" (absent) means
	// the built-in greeting.
	Greeting string `json:"greeting,omitempty"`
}

// VoicemailSettings are a mailbox's effective settings, defaults applied.
type VoicemailSettings struct {
	Enabled  bool
	NoAnswer time.Duration
	Greeting string // a prompt name; "" is the built-in greeting
}

// VoicemailSettings is u's mailbox settings with the defaults applied.
func (u User) VoicemailSettings() VoicemailSettings {
	s := VoicemailSettings{Enabled: true, NoAnswer: DefaultVoicemailNoAnswerS * time.Second}
	if v := u.Voicemail; v != nil {
		if v.Enabled != nil {
			s.Enabled = *v.Enabled
		}
		if v.NoAnswerS > 0 {
			s.NoAnswer = time.Duration(v.NoAnswerS) * time.Second
		}
		s.Greeting = v.Greeting
	}
	return s
}

// User priorities: who is admitted first when a site's node is near
// capacity (docs/sip.md, "REGISTER, step by step", step 9).
const (
	PriorityNormal     = "normal"      // the default; "" means the same
	PriorityEmergency  = "emergency"   // emergency-capable phones: lobby, security desk, elevator
	PriorityCommonArea = "common_area" // common-area phones: break rooms, reception, hallways
)

// Prioritized reports whether the user is admitted ahead of normal users:
// its priority is PriorityEmergency or PriorityCommonArea.
func (u User) Prioritized() bool {
	return u.Priority == PriorityEmergency || u.Priority == PriorityCommonArea
}

// SIPCredentials are digest credentials: HA1 = H(username:realm:password), hex.
type SIPCredentials struct {
	Username  string `json:"username"`
	HA1MD5    string `json:"ha1_md5"`
	HA1SHA256 string `json:"ha1_sha256"`
}

// SDG is a Survivability Distribution Group: an extension with a route.
type SDG struct {
	ID        string `json:"id"`
	Site      string `json:"site"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
	Route     *Route `json:"route"`
}

// Number is an account number (DID) routed somewhere other than a user's DID.
type Number struct {
	Number string `json:"number"`
	Site   string `json:"site"`
	Route  *Route `json:"route"`
}

// Route types.
const (
	RouteUser   = "user"
	RouteGroup  = "group"
	RouteIVR    = "ivr"
	RouteNumber = "number"
	RouteSDG    = "sdg"
	// RouteConference is the dial-in to a live call (an extension of the
	// contract; docs/sip.md, "Dialling in to a call"): the node answers,
	// asks for the PIN of a call in progress on it and joins the caller
	// to that call. It has no fields beyond its type and ends the route.
	RouteConference = "conference"
	// RouteVoicemail sends the caller to a mailbox (an extension of the
	// contract; docs/sip.md, "Voicemail"): ID names a user (their mailbox)
	// or an SDG (the SDG's own mailbox). The node answers, plays the
	// mailbox's greeting and a beep and records a message. It ends the
	// route.
	RouteVoicemail = "voicemail"
)

// Group ringing strategies.
const (
	StrategySimultaneous = "simultaneous"
	StrategySequential   = "sequential"
	StrategyRotating     = "rotating"
	StrategyLongestIdle  = "longest_idle"
)

// Route says where a call goes. Which fields matter depends on Type.
type Route struct {
	Type string `json:"type"`

	// user, sdg, voicemail
	ID string `json:"id,omitempty"`

	// group
	Members      []string `json:"members,omitempty"`
	Strategy     string   `json:"strategy,omitempty"`
	RingTimeoutS int      `json:"ring_timeout_s,omitempty"`
	NoAnswer     *Route   `json:"no_answer,omitempty"`

	// ivr
	Prompt   string            `json:"prompt,omitempty"`
	TimeoutS int               `json:"timeout_s,omitempty"`
	Retries  int               `json:"retries,omitempty"`
	Options  map[string]*Route `json:"options,omitempty"`
	NoInput  *Route            `json:"no_input,omitempty"`

	// number
	Number string `json:"number,omitempty"`
}

// Trunk is a SIP trunk to an on-prem SBC.
type Trunk struct {
	ID               string   `json:"id"`
	Site             string   `json:"site"`
	Name             string   `json:"name"`
	Host             string   `json:"host"`
	Port             int      `json:"port"`
	Transport        string   `json:"transport"`
	Priority         int      `json:"priority"`
	Weight           int      `json:"weight"`
	OptionsIntervalS int      `json:"options_interval_s"`
	MaxChannels      int      `json:"max_channels"`
	Codecs           []string `json:"codecs"`
	// SRTP is how media toward the SBC is protected: "off" (or "") plain
	// RTP, "sdes" SRTP keyed with SDES (RFC 4568).
	SRTP string `json:"srtp,omitempty"`
}

// Trunk SRTP settings.
const (
	SRTPOff  = "off"
	SRTPSDES = "sdes"
)

// Callout configures calls that add an outside number to a live call.
type Callout struct {
	GreetingPrompt string     `json:"greeting_prompt"`
	RequirePress1  bool       `json:"require_press_1"`
	CallerIDs      []CallerID `json:"caller_ids"`
}

// CallerID is a number presented on call-outs to a country.
type CallerID struct {
	Country   string `json:"country"`
	Number    string `json:"number"`
	Dedicated bool   `json:"dedicated,omitempty"`
}

// Admin is a local web UI login that works during an outage.
type Admin struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Bcrypt   string `json:"bcrypt"`
}

// Prompt is an account's custom recording of a prompt (an extension of the
// contract's snapshot; docs/architecture.md, "Extensions to the contract"):
// the audio that replaces the built-in prompt of that name wherever a route
// (an IVR's prompt) or the call-out greeting names it. The WAV itself is a
// blob the appliance fetches from the cloud by id and keeps only if its
// SHA-256 matches.
type Prompt struct {
	// Name is the prompt name routes use, e.g. "main-menu".
	Name string `json:"name"`
	// Blob is the recording's id in the cloud: opaque to the appliance,
	// 1 to 128 letters, digits, '.', '_' or '-' (outpost-cloud uses the
	// SHA-256 itself).
	Blob string `json:"blob"`
	// SHA256 is the SHA-256 of the WAV bytes, 64 lower-case hex digits.
	SHA256 string `json:"sha256"`
}

// Embed configures the embeddable call widget.
type Embed struct {
	AllowedOrigins []string `json:"allowed_origins"`
}

// MaxSnapshotBytes bounds a snapshot document; larger ones are refused before
// decoding. A 10,000-user account is about 6 MiB.
const MaxSnapshotBytes = 64 << 20

// ErrMalformed marks a document that is not a snapshot at all: bad JSON,
// truncated, unknown fields, or trailing data.
var ErrMalformed = errors.New("malformed snapshot")

// Decode reads one snapshot document strictly: unknown fields, trailing data,
// truncation and documents over MaxSnapshotBytes are errors wrapping ErrMalformed.
func Decode(r io.Reader) (*Snapshot, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return DecodeBytes(data)
}

// DecodeBytes is Decode over a byte slice.
func DecodeBytes(data []byte) (*Snapshot, error) {
	if len(data) > MaxSnapshotBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSnapshotBytes)
	}
	start := skipSpace(data, 0)
	if start == len(data) {
		return nil, fmt.Errorf("%w: document is empty; want a JSON object", ErrMalformed)
	}
	if data[start] != '{' {
		line, col := position(data, int64(start))
		return nil, fmt.Errorf("%w: want a JSON object at line %d column %d", ErrMalformed, line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(data, err))
	}
	if end := skipSpace(data, int(dec.InputOffset())); end < len(data) {
		line, col := position(data, int64(end))
		return nil, fmt.Errorf("%w: unexpected data after the snapshot object at line %d column %d; send exactly one object",
			ErrMalformed, line, col)
	}
	s.normalize()
	return &s, nil
}

// normalize gives the one form the canonical encoding cannot tell apart:
// no prompts is nil (the encoding omits the key for an empty list too).
func (s *Snapshot) normalize() {
	if len(s.Prompts) == 0 {
		s.Prompts = nil
	}
}

// Encode writes the snapshot as canonical JSON (the form stored and replicated).
func (s *Snapshot) Encode() ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return data, nil
}
