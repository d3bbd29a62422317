package cloud

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

// BenchmarkAdminChanges10k measures a change to a 10,000-user account,
// each a revision: a whole-snapshot PUT with one user renamed, and a
// per-object PUT of one user (decode, validate, encode, diff, commit).
func BenchmarkAdminChanges10k(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	st := openStore(b, Options{Log: quiet})
	handler := New(Config{Store: st, AdminToken: testToken, Log: quiet}).Handler()
	put := func(b *testing.B, path string, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("PUT %s: %d %.500s", path, rec.Code, rec.Body)
		}
	}
	s := account.Generate(account.GenerateOptions{Users: 10000, Numbers: 20000, SDGs: 1000, Trunks: 4})
	put(b, "/v1/admin/snapshot", encode(b, s))
	b.Run("snapshot", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.Users[0].Name = fmt.Sprint("Renamed ", i)
			put(b, "/v1/admin/snapshot", encode(b, s))
		}
	})
	b.Run("object", func(b *testing.B) {
		u := s.Users[1]
		for i := 0; b.Loop(); i++ {
			u.Name = fmt.Sprint("Renamed ", i)
			put(b, "/v1/admin/users/"+u.ID, encode(b, u))
		}
	})
}
