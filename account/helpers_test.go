package account

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// demoPath is the contract's reference snapshot; it is part of the
// repository's shared/ tree and always present.
const demoPath = "../../shared/contract/demo-snapshot.json"

func demoBytes(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatalf("read the reference snapshot: %v", err)
	}
	return data
}

// demo returns a freshly decoded reference snapshot, safe to mutate.
func demo(t testing.TB) *Snapshot {
	t.Helper()
	s, err := DecodeBytes(demoBytes(t))
	if err != nil {
		t.Fatalf("decode the reference snapshot: %v", err)
	}
	return s
}

// problemsOf returns the problems in err, which must be nil or a
// *ValidationError with at least one problem.
func problemsOf(t testing.TB, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate returned %T (%v), want *ValidationError", err, err)
	}
	if len(ve.Problems) == 0 {
		t.Fatalf("ValidationError with no problems")
	}
	return ve.Problems
}

func paths(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Path
	}
	return out
}

func dump(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n\t" + p.String())
	}
	return b.String()
}

// checkProblems asserts the exact list of problem paths and, when msg is
// set, that the first problem's message contains it.
func checkProblems(t *testing.T, err error, want []string, msg string) {
	t.Helper()
	got := problemsOf(t, err)
	if !slices.Equal(paths(got), want) {
		t.Fatalf("problem paths = %q, want %q%s", paths(got), want, dump(got))
	}
	if msg != "" && !strings.Contains(got[0].Message, msg) {
		t.Fatalf("message %q does not contain %q", got[0].Message, msg)
	}
	for _, p := range got {
		if p.Message == "" || strings.ToLower(p.Message[:1]) != p.Message[:1] {
			t.Errorf("message %q at %s: want a lower-case, non-empty message", p.Message, p.Path)
		}
	}
}

// Builders for elements the rule tests add to the demo.

func addUser(s *Snapshot, id, username, ext string) {
	s.Users = append(s.Users, User{
		ID: id, Site: "hq", Name: "Test User", Extension: ext,
		SIP: SIPCredentials{
			Username:  username,
			HA1MD5:    HA1(DigestMD5, username, "acme.example", "pw-"+username),
			HA1SHA256: HA1(DigestSHA256, username, "acme.example", "pw-"+username),
		},
	})
}

func addSDG(s *Snapshot, id, ext string, r *Route) {
	s.SDGs = append(s.SDGs, SDG{ID: id, Site: "hq", Name: id, Extension: ext, Route: r})
}

func addSite(s *Snapshot, id string) {
	s.Sites = append(s.Sites, Site{ID: id, Name: "Test", Country: "US"})
}

func sdgRoute(id string) *Route  { return &Route{Type: RouteSDG, ID: id} }
func userRoute(id string) *Route { return &Route{Type: RouteUser, ID: id} }
func numberRoute(n string) *Route {
	return &Route{Type: RouteNumber, Number: n}
}
