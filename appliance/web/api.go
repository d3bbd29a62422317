package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
)

// RevisionResponse answers a successful snapshot apply.
type RevisionResponse struct {
	Revision int64 `json:"revision"`
}

// JoinRequest asks the cluster to add a voter.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// LeaveRequest asks the cluster to remove a member.
type LeaveRequest struct {
	ID string `json:"id"`
}

// ModeRequest sets the appliance's mode by hand (operators, tests).
type ModeRequest struct {
	Mode string `json:"mode"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// postSnapshot validates a whole revision and applies it as one Raft entry.
// Any problem answers 400 listing every one, and nothing changes.
func (s *Server) postSnapshot(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, account.MaxSnapshotBytes))
	if err != nil {
		failRead(c, "read snapshot", err)
		return
	}
	snap, err := account.DecodeBytes(body)
	if err != nil {
		fail(c, http.StatusBadRequest, "%v", err)
		return
	}
	ctx := c.Request.Context()
	cur, err := s.deps.Reader.Revision(ctx)
	if err != nil {
		fail(c, http.StatusInternalServerError, "read current revision: %v", err)
		return
	}
	if err := account.Validate(snap, cur); err != nil {
		var ve *account.ValidationError
		if errors.As(err, &ve) {
			failDetails(c, http.StatusBadRequest, problemDetails(ve.Problems), "snapshot refused: nothing changed")
			return
		}
		fail(c, http.StatusBadRequest, "%v", err)
		return
	}
	// The body decoded strictly, so it is proposed as sent: the FSM decodes
	// the same bytes on every node. The decoded copy is dropped first, so
	// the leader does not hold two of a large account while it applies.
	users, sdgs := len(snap.Users), len(snap.SDGs)
	snap = nil
	res, ok := s.apply(c, cluster.EncodeSnapshot(body))
	if !ok {
		return
	}
	s.deps.Log.Info("snapshot applied", "revision", res.Revision, "users", users, "sdgs", sdgs)
	c.JSON(http.StatusOK, RevisionResponse{Revision: res.Revision})
}

// apply proposes a command and writes the error answer when it fails.
func (s *Server) apply(c *gin.Context, cmd []byte) (cluster.ApplyResult, bool) {
	res, err := s.deps.Cluster.Apply(c.Request.Context(), cmd)
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		fail(c, http.StatusServiceUnavailable, "leadership changed while applying; retry: %v", err)
	case err != nil:
		fail(c, http.StatusInternalServerError, "apply: %v", err)
	case errors.Is(res.Err, cluster.ErrStaleRevision):
		failDetails(c, http.StatusBadRequest, []ErrorDetail{{Path: "revision", Message: res.Err.Error()}},
			"snapshot refused: nothing changed")
	case errors.Is(res.Err, store.ErrConflict):
		failDetails(c, http.StatusBadRequest, []ErrorDetail{{Message: res.Err.Error()}},
			"snapshot refused: nothing changed")
	case res.Err != nil:
		fail(c, http.StatusInternalServerError, "apply: %v", res.Err)
	default:
		return res, true
	}
	return res, false
}

func (s *Server) getSnapshot(c *gin.Context) {
	doc, err := s.deps.Reader.SnapshotJSON(c.Request.Context())
	switch {
	case err != nil:
		fail(c, http.StatusInternalServerError, "read snapshot: %v", err)
	case doc == nil:
		fail(c, http.StatusNotFound, "no snapshot applied yet")
	default:
		c.Data(http.StatusOK, "application/json", doc)
	}
}

func (s *Server) getMembers(c *gin.Context) {
	m, err := s.members(c.Request.Context())
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": m})
}

// getGroups lists the SDGs with their members' live state.
func (s *Server) getGroups(c *gin.Context) {
	var groups any = []any{}
	if s.deps.Groups != nil {
		g, err := s.deps.Groups(c.Request.Context())
		if err != nil {
			fail(c, http.StatusInternalServerError, "read sdgs: %v", err)
			return
		}
		groups = g
	}
	c.JSON(http.StatusOK, gin.H{"sdgs": groups})
}

// getCalls lists the calls in progress on this node.
func (s *Server) getCalls(c *gin.Context) {
	var calls any = []any{}
	if s.deps.Calls != nil {
		calls = s.deps.Calls()
	}
	c.JSON(http.StatusOK, gin.H{"calls": calls})
}

// getJournal lists call records of the outage journal, newest first:
// ?since=RFC3339 (default: all) and ?limit=N (default 100, at most 1000).
func (s *Server) getJournal(c *gin.Context) {
	var since time.Time
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fail(c, http.StatusBadRequest, "since: %q is not an RFC 3339 time", v)
			return
		}
		since = t
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fail(c, http.StatusBadRequest, "limit: want a number from 1 to 1000")
			return
		}
		limit = n
	}
	recs, err := s.deps.Reader.CallRecords(c.Request.Context(), since, limit)
	if err != nil {
		fail(c, http.StatusInternalServerError, "read journal: %v", err)
		return
	}
	if recs == nil {
		recs = []store.CallRecord{}
	}
	c.JSON(http.StatusOK, gin.H{"records": recs})
}

// failRead answers a request body that could not be read: 413 past the
// endpoint's limit, else 400.
func failRead(c *gin.Context, what string, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		fail(c, http.StatusRequestEntityTooLarge, "%s: the body is larger than %d bytes", what, tooBig.Limit)
		return
	}
	fail(c, http.StatusBadRequest, "%s: %v", what, err)
}

// bindJSON decodes a small request body strictly.
func bindJSON(c *gin.Context, v any) bool {
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(c, http.StatusBadRequest, "bad request body: %v", err)
		return false
	}
	return true
}

func (s *Server) postJoin(c *gin.Context) {
	var req JoinRequest
	if !bindJSON(c, &req) {
		return
	}
	if req.ID == "" || req.RaftAddr == "" {
		fail(c, http.StatusBadRequest, "id and raft_addr are required")
		return
	}
	if err := s.deps.Cluster.AddVoter(req.ID, req.RaftAddr); err != nil {
		fail(c, membershipStatus(err), "%v", err)
		return
	}
	s.deps.Log.Info("member joined", "member_id", req.ID, "raft_addr", req.RaftAddr)
	c.JSON(http.StatusOK, gin.H{"joined": req.ID})
}

func (s *Server) postLeave(c *gin.Context) {
	var req LeaveRequest
	if !bindJSON(c, &req) {
		return
	}
	if req.ID == "" {
		fail(c, http.StatusBadRequest, "id is required")
		return
	}
	members, err := s.deps.Cluster.Members()
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	if !slices.ContainsFunc(members, func(m cluster.Member) bool { return m.ID == req.ID }) {
		fail(c, http.StatusNotFound, "%q is not a member of this cluster", req.ID)
		return
	}
	// The record goes first: when the leader removes itself it steps down
	// and could no longer propose it. Should the removal then fail, the
	// node's own announce loop puts its record back.
	cmd, err := cluster.Encode(cluster.CmdRemoveMember, cluster.RemoveMember{ID: req.ID})
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	if _, ok := s.apply(c, cmd); !ok {
		return
	}
	if err := s.deps.Cluster.RemoveServer(req.ID); err != nil {
		fail(c, membershipStatus(err), "%v", err)
		return
	}
	s.deps.Log.Info("member removed", "member_id", req.ID)
	c.JSON(http.StatusOK, gin.H{"removed": req.ID})
}

// postApply takes a presence-plane command a node shares with the cluster
// (its registrations) and proposes it through the batcher. Only such
// commands are accepted: configuration has endpoints of its own.
func (s *Server) postApply(c *gin.Context) {
	cmd, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 8<<20))
	if err != nil {
		failRead(c, "read command", err)
		return
	}
	if err := cluster.CheckShared(cmd); err != nil {
		fail(c, http.StatusBadRequest, "%v", err)
		return
	}
	res, err := s.deps.Cluster.ApplyBatched(c.Request.Context(), cmd)
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		fail(c, http.StatusServiceUnavailable, "leadership changed while applying; retry: %v", err)
	case err != nil:
		fail(c, http.StatusInternalServerError, "apply: %v", err)
	case errors.Is(res.Err, cluster.ErrHalted):
		// The node's fault, not the command's: the same as any write.
		fail(c, http.StatusInternalServerError, "apply: %v", res.Err)
	case res.Err != nil:
		fail(c, http.StatusBadRequest, "refused: %v", res.Err)
	default:
		c.JSON(http.StatusOK, gin.H{"applied": true})
	}
}

// membershipStatus is the HTTP status for a failed membership change: a lost
// leadership is worth a retry, anything else is a conflict with the
// current configuration.
func membershipStatus(err error) int {
	if errors.Is(err, cluster.ErrNotLeader) {
		return http.StatusServiceUnavailable
	}
	return http.StatusConflict
}

// postMember records a node's addresses and site (nodes announce themselves).
func (s *Server) postMember(c *gin.Context) {
	var m store.Member
	if !bindJSON(c, &m) {
		return
	}
	if m.ID == "" || m.RaftAddr == "" || m.HTTPAddr == "" {
		fail(c, http.StatusBadRequest, "id, raft_addr and http_addr are required")
		return
	}
	m.UpdatedAt = time.Now().UTC()
	cmd, err := cluster.EncodeMember(m)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	if _, ok := s.apply(c, cmd); ok {
		c.JSON(http.StatusOK, gin.H{"member": m.ID})
	}
}

func (s *Server) postMode(c *gin.Context) {
	var req ModeRequest
	if !bindJSON(c, &req) {
		return
	}
	cmd, err := cluster.EncodeMode(req.Mode, time.Now())
	if err != nil {
		fail(c, http.StatusBadRequest, "%v", err)
		return
	}
	if _, ok := s.apply(c, cmd); ok {
		c.JSON(http.StatusOK, gin.H{"mode": req.Mode})
	}
}
