// Package sbc will own SIP trunks to on-prem SBCs: OPTIONS health,
// selection by priority and weight, the dial plan, emergency calls and
// topology hiding. Not built yet: issue 5.
package sbc
