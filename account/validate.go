package account

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a snapshot, at a JSON path such as
// "users[3].extension" or "sdgs[0].route.options.7".
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// ValidationError lists every problem found in a snapshot; a snapshot with
// any problem is refused whole.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return fmt.Sprintf("invalid snapshot (%d problems): %s", len(e.Problems), strings.Join(parts, "; "))
}

// Validate checks a decoded snapshot against the rules of shared/CONTRACT.md.
// currentRevision is the revision the cluster holds now (0 when empty); the
// snapshot's revision must be greater. It returns nil or a *ValidationError
// listing every problem.
func Validate(s *Snapshot, currentRevision int64) error {
	return validate(s, currentRevision)
}
