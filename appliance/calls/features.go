package calls

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Feature codes: star codes a phone dials to reach a service of the node
// rather than a party. They are matched before anything else in Resolve,
// and a star code that matches none is never a dialable number (toE164
// refuses '*' and '#'), so no star code ever reaches a trunk.

// DestFeature is a feature code (Destination.ID names the feature,
// Destination.Number carries the digits dialled after the code).
const DestFeature = "feature"

// Features the node offers.
const (
	FeaturePark      = "park"          // park the call transferred to it (park.go)
	FeatureRetrieve  = "park_retrieve" // retrieve the call parked on the slot that follows
	FeatureVoicemail = "voicemail"     // the caller's own mailbox (voicemail.go)
)

// VoicemailCode is the code that plays the caller's own mailbox.
const VoicemailCode = "*97"

// FeatureCode is one star code: Code dialled exactly, or, when Arg is
// set, followed by one or more digits (the argument: a park slot).
type FeatureCode struct {
	Code string
	Name string
	Arg  bool
}

// resolveFeature matches digits against the feature codes.
func resolveFeature(digits string, codes []FeatureCode) (Destination, bool) {
	for _, fc := range codes {
		if fc.Code == "" {
			continue
		}
		if !fc.Arg {
			if digits == fc.Code {
				return Destination{Kind: DestFeature, ID: fc.Name}, true
			}
			continue
		}
		arg, ok := strings.CutPrefix(digits, fc.Code)
		if ok && arg != "" && strings.Trim(arg, "0123456789") == "" {
			return Destination{Kind: DestFeature, ID: fc.Name, Number: arg}, true
		}
	}
	return Destination{}, false
}

// onFeature answers a call to a feature code.
func (b *B2BUA) onFeature(req *sip.Request, tx sip.ServerTransaction, caller account.User, rec *store.CallRecord, d Destination) {
	switch d.ID {
	case FeatureRetrieve:
		b.retrieve(req, tx, caller, rec, d.Number)
	case FeaturePark:
		b.attendedPark(req, tx, caller, rec)
	default:
		respond(tx, req, 404, "Not Found")
		b.finish(rec, 404, DispRefused)
	}
}
