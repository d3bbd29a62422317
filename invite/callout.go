package invite

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/sbc"
)

// ErrBadNumber: a call-out's number is not E.164 with its country code,
// optionally followed by "-" and extension digits.
var ErrBadNumber = errors.New("a call-out number must be + and the country code and number, optionally -digits for an extension, e.g. +16032331333-156")

// ParseNumber splits a call-out number "+16032331333-156" into the E.164
// number and the digits sent as DTMF once the callee answers ("156"; 0-9,
// * and #, at most 32). The first "-" starts those digits, so the number
// itself is written without dashes; spaces, dots and brackets in it are
// ignored.
func ParseNumber(s string) (number, dtmf string, err error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "+") {
		return "", "", ErrBadNumber
	}
	main, ext, hasExt := strings.Cut(s, "-")
	if hasExt && (ext == "" || strings.Trim(ext, "0123456789*#") != "") {
		return "", "", fmt.Errorf("%w: after the - only the digits 0-9, * and # to send", ErrBadNumber)
	}
	if len(ext) > 32 {
		return "", "", fmt.Errorf("%w: at most 32 extension digits", ErrBadNumber)
	}
	var b strings.Builder
	b.WriteByte('+')
	for _, r := range main[1:] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '.' || r == '(' || r == ')':
		default:
			return "", "", fmt.Errorf("%w: %q is not a digit", ErrBadNumber, r)
		}
	}
	if _, err := sbc.Classify(b.String()); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadNumber, err)
	}
	return b.String(), ext, nil
}

// CallerID chooses the number a call-out to number presents: the
// dedicated caller ID of the callee's country if there is one; otherwise
// that country's caller IDs in ascending order, the first whose trunk can
// take the call (canTake); otherwise the US dedicated number. ok is false
// when none applies. Countries compare as the toll-fraud policy does
// (sbc.SiteZone: US and Canada are one zone).
func CallerID(c account.Callout, number string, canTake func(callerID account.CallerID) bool) (account.CallerID, bool) {
	d, err := sbc.Classify(number)
	if err != nil {
		return account.CallerID{}, false
	}
	var same []account.CallerID
	for _, id := range c.CallerIDs {
		if sbc.SiteZone(id.Country) != d.Zone {
			continue
		}
		if id.Dedicated {
			return id, true
		}
		same = append(same, id)
	}
	slices.SortFunc(same, func(a, b account.CallerID) int { return strings.Compare(a.Number, b.Number) })
	for _, id := range same {
		if canTake == nil || canTake(id) {
			return id, true
		}
	}
	for _, id := range c.CallerIDs {
		if id.Dedicated && strings.EqualFold(id.Country, "US") {
			return id, true
		}
	}
	return account.CallerID{}, false
}
