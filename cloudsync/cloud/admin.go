package cloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// RevisionResponse answers every admin change.
type RevisionResponse struct {
	Revision int64 `json:"revision"`
}

// PairingCodeRequest asks for a pairing code.
type PairingCodeRequest struct {
	Appliance string `json:"appliance"`
}

// PairingCodeResponse carries a new one-use pairing code.
type PairingCodeResponse struct {
	Code      string `json:"code"`
	Appliance string `json:"appliance"`
	ExpiresAt string `json:"expires_at"`
}

// applianceName is what an appliance may be called: it is an identifier in
// logs, headers and URLs.
var applianceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const nothingChanged = "snapshot refused: nothing changed"

func (s *Server) getAdminSnapshot(c *gin.Context) {
	rev, doc := s.cfg.Store.Current()
	if doc == nil {
		fail(c, http.StatusNotFound, "no snapshot yet: PUT /v1/admin/snapshot first")
		return
	}
	c.Header("ETag", etag(rev))
	c.Header(protocol.HeaderRevision, strconv.FormatInt(rev, 10))
	c.Data(http.StatusOK, "application/json", doc)
}

// putSnapshot replaces the snapshot: the body is decoded strictly and
// validated as the next revision (its own revision is ignored).
func (s *Server) putSnapshot(c *gin.Context) {
	body, ok := readBody(c, maxSnapshotBody)
	if !ok {
		return
	}
	snap, err := account.DecodeBytes(body)
	if err != nil {
		refuse(c, nothingChanged, []protocol.Problem{{Path: "", Message: err.Error()}})
		return
	}
	rev, err := s.cfg.Store.Update(c.Request.Context(), s.now(), func(next int64, cur []byte) ([]byte, error) {
		snap.Revision = next
		if err := account.Validate(snap, next-1); err != nil {
			return nil, err
		}
		if cur != nil {
			old, err := account.DecodeBytes(cur)
			if err != nil {
				return nil, fmt.Errorf("decode the current snapshot: %w", err)
			}
			arrange(old, snap)
		}
		return snap.Encode()
	})
	if !s.changed(c, err) {
		return
	}
	s.log.Info("snapshot replaced", "revision", rev, "users", len(snap.Users), "sdgs", len(snap.SDGs))
	c.JSON(http.StatusOK, RevisionResponse{Revision: rev})
}

// changed answers a failed update, or reports that it succeeded.
func (s *Server) changed(c *gin.Context, err error) bool {
	var ve *account.ValidationError
	var bad *badObject
	switch {
	case err == nil:
		return true
	case errors.As(err, &ve):
		refuse(c, nothingChanged, fromAccount(ve.Problems))
	case errors.As(err, &bad):
		refuse(c, nothingChanged, bad.problems)
	case errors.Is(err, errNoObject):
		fail(c, http.StatusNotFound, "%v: nothing changed", err)
	case errors.Is(err, errNoSnapshot):
		fail(c, http.StatusConflict, "no snapshot yet: PUT /v1/admin/snapshot first, then edit it object by object")
	default:
		s.log.Error("update failed", "error", err)
		fail(c, http.StatusInternalServerError, "update: %v", err)
	}
	return false
}

// errNoSnapshot: an object edit before the first snapshot.
var errNoSnapshot = errors.New("no snapshot yet")

// editObject commits the next revision: the current snapshot with edit
// applied, validated whole.
func (s *Server) editObject(c *gin.Context, edit func(*account.Snapshot) error) (int64, error) {
	return s.cfg.Store.Update(c.Request.Context(), s.now(), func(next int64, cur []byte) ([]byte, error) {
		if cur == nil {
			return nil, errNoSnapshot
		}
		snap, err := account.DecodeBytes(cur)
		if err != nil {
			return nil, fmt.Errorf("decode the current snapshot: %w", err)
		}
		if err := edit(snap); err != nil {
			return nil, err
		}
		snap.Revision = next
		if err := account.Validate(snap, next-1); err != nil {
			return nil, err
		}
		return snap.Encode()
	})
}

func (s *Server) getObject(k objectKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := objectID(c)
		_, cur := s.cfg.Store.Current()
		if cur != nil {
			snap, err := account.DecodeBytes(cur)
			if err != nil {
				fail(c, http.StatusInternalServerError, "decode the current snapshot: %v", err)
				return
			}
			if data, ok := k.get(snap, id); ok {
				c.Data(http.StatusOK, "application/json", data)
				return
			}
		}
		fail(c, http.StatusNotFound, "no %s with %s %q", k.name, k.keyField, id)
	}
}

func (s *Server) putObject(k objectKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := objectID(c)
		body, ok := readBody(c, maxObjectBody)
		if !ok {
			return
		}
		rev, err := s.editObject(c, func(snap *account.Snapshot) error { return k.put(snap, id, body) })
		if !s.changed(c, err) {
			return
		}
		s.log.Info("object put", "kind", k.name, "id", id, "revision", rev)
		c.JSON(http.StatusOK, RevisionResponse{Revision: rev})
	}
}

func (s *Server) deleteObject(k objectKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := objectID(c)
		rev, err := s.editObject(c, func(snap *account.Snapshot) error {
			if !k.del(snap, id) {
				return fmt.Errorf("%w: %s has no %s %q", errNoObject, k.name, k.keyField, id)
			}
			return nil
		})
		if !s.changed(c, err) {
			return
		}
		s.log.Info("object deleted", "kind", k.name, "id", id, "revision", rev)
		c.JSON(http.StatusOK, RevisionResponse{Revision: rev})
	}
}

func (s *Server) postPairingCode(c *gin.Context) {
	body, ok := readBody(c, maxSmallBody)
	if !ok {
		return
	}
	var req PairingCodeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		fail(c, http.StatusBadRequest, "want {\"appliance\": \"NAME\"}: %v", err)
		return
	}
	if !applianceName.MatchString(req.Appliance) {
		refuse(c, "bad appliance name", []protocol.Problem{{Path: "appliance",
			Message: fmt.Sprintf("%q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Appliance)}})
		return
	}
	now := s.now()
	expires := now.Add(PairingCodeTTL)
	code := newPairingCode()
	if err := s.cfg.Store.AddPairingCode(c.Request.Context(), req.Appliance, code, now, expires); err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	s.log.Info("pairing code made", "appliance", req.Appliance, "expires_at", expires.UTC())
	c.JSON(http.StatusOK, PairingCodeResponse{Code: code, Appliance: req.Appliance, ExpiresAt: expires.UTC().Format(time.RFC3339)})
}

// JournalPageResponse is a page of an appliance's journal; Next, when set,
// is the after of the next page.
type JournalPageResponse struct {
	Records []json.RawMessage `json:"records"`
	Next    string            `json:"next,omitempty"`
}

// getJournal lists an appliance's journal a page at a time:
// ?appliance=NAME[&limit=N][&after=CURSOR], CURSOR being the next of the
// page before (opaque to the caller; today the last record's place in the
// order received).
func (s *Server) getJournal(c *gin.Context) {
	name := c.Query("appliance")
	if name == "" {
		fail(c, http.StatusBadRequest, "missing ?appliance=NAME")
		return
	}
	var problems []protocol.Problem
	limit := DefaultJournalPage
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxJournalPage {
			problems = append(problems, protocol.Problem{Path: "limit",
				Message: fmt.Sprintf("%q: want a whole number from 1 to %d (default %d)", v, MaxJournalPage, DefaultJournalPage)})
		}
		limit = n
	}
	var after int64
	if v, ok := c.GetQuery("after"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			problems = append(problems, protocol.Problem{Path: "after",
				Message: fmt.Sprintf("%q: not a cursor; pass the next of the page before, or nothing for the first page", v)})
		}
		after = n
	}
	if len(problems) > 0 {
		refuse(c, "bad journal query", problems)
		return
	}
	if !s.paired(c, name) {
		return
	}
	recs, next, err := s.cfg.Store.JournalPage(c.Request.Context(), name, after, limit)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	page := JournalPageResponse{Records: recs}
	if next != 0 {
		page.Next = strconv.FormatInt(next, 10)
	}
	c.JSON(http.StatusOK, page)
}

// paired says whether the appliance name has paired; when not, or when
// the store cannot say, it has answered (404, 500).
func (s *Server) paired(c *gin.Context, name string) bool {
	known, err := s.cfg.Store.applianceExists(c.Request.Context(), name)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return false
	}
	if !known {
		fail(c, http.StatusNotFound, "no appliance %q has paired", name)
	}
	return known
}

func (s *Server) getAppliances(c *gin.Context) {
	as, err := s.cfg.Store.Appliances(c.Request.Context())
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"appliances": as})
}
