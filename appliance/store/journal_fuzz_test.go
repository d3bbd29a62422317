package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzCallRecordJSON: whatever a call record's strings hold (they come
// from SIP headers: display names, dialled digits) and wherever its times
// are, AppendJSON, which encodes the journal upload, writes what
// json.Marshal writes, byte for byte, or fails where it fails.
func FuzzCallRecordJSON(f *testing.F) {
	end := time.Date(2026, 3, 2, 9, 17, 30, 0, time.UTC).Unix()
	f.Add("0b6e3a52-8f0e-4c61-9d55-2f1c3a4b5d6e", "Alice Adams", "1002", testRoute, end, uint32(123_000_000), int64(50e9), int32(0), 200)
	f.Add("x", `"Zoë" <Ünal> & \co`, "+1 (650) 555-0102", "line\u2028sep", end, uint32(999_999_999), int64(0), int32(3600), 486)
	f.Add("", "bad \xff\xfe utf-8\x00\x1f\x7f", "*72#", "", int64(-62135596800), uint32(0), int64(-1), int32(-(3*3600 + 30*60)), -1) // the year 1
	f.Add("y", "", "", ">", int64(253402300799), uint32(0), int64(-1e9), int32(0), 0)                                                // started in the year 9999, answered in 10000
	f.Fuzz(func(t *testing.T, id, name, dialled, route string, endSec int64, nsec uint32, talk int64, zone int32, status int) {
		loc := time.UTC
		if zone != 0 {
			loc = time.FixedZone("", int(zone%(18*3600)))
		}
		e := time.Unix(endSec, int64(nsec%1e9)).In(loc)
		r := CallRecord{ID: id, CallID: id + "@192.0.2.10", Caller: name, CallerName: name, Callee: dialled,
			Dialled: dialled, Destination: "user", Start: e.Add(-time.Minute), End: e, Disposition: "answered",
			Status: status, Node: "node-1", Site: name, Route: route}
		if talk >= 0 {
			r.Answer = e.Add(-time.Duration(talk))
		}
		want, werr := json.Marshal(r)
		got, gerr := r.AppendJSON([]byte("prefix"))
		if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...))) {
			t.Fatalf("AppendJSON = %s, %v\njson.Marshal = %s, %v", got, gerr, want, werr)
		}
	})
}
