package cloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Blobs: the custom prompts' recordings. An admin uploads one with PUT
// /v1/admin/blobs/{sha256}; the id is the SHA-256 of its bytes, checked on
// upload, and the snapshot's prompts[] name it ({"blob": id, "sha256":
// id}). Appliances fetch it with GET /v1/sync/blobs/{id}, each node its own
// copy. Blobs are never changed (a new recording is a new id) and never
// deleted: a snapshot of any revision may still name one.

// BlobInfo answers an upload.
type BlobInfo struct {
	ID     string `json:"id"`     // what prompts[].blob names
	SHA256 string `json:"sha256"` // the same: outpost-cloud keys blobs by their hash
	Size   int    `json:"size"`
}

// PutBlob stores data under its SHA-256 sum (hex), which the caller has
// checked, and reports whether it was new (storing it again changes
// nothing).
func (s *Store) PutBlob(ctx context.Context, sum string, data []byte, now time.Time) (created bool, err error) {
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO blobs (sha256, data, created_ms) VALUES (?, ?, ?)
		ON CONFLICT (sha256) DO NOTHING`, sum, data, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("store blob %s: %w", sum, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store blob %s: %w", sum, err)
	}
	return n == 1, nil
}

// Blob is the blob with this id; an error wrapping ErrNotFound when there
// is none.
func (s *Store) Blob(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT data FROM blobs WHERE sha256 = ?`, id).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("blob %q: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read blob %q: %w", id, err)
	}
	return data, nil
}

// isWAV reports whether data starts as a RIFF WAVE file does.
func isWAV(data []byte) bool {
	return len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WAVE"))
}

// wavUpload is how a WAV file uploaded under its SHA-256 is checked: a
// blob, a voicemail message's audio.
type wavUpload struct {
	refusal string // the refusal's title
	param   string // the path parameter naming the SHA-256, the problem's path
	noun    string // what the client names by the SHA-256: "blob", "audio"
	limit   int64  // the body's largest size
	wavHint string // after "not a WAV file (no RIFF/WAVE header)"
}

// read is the upload's SHA-256 and body: a SHA-256 in the path, a body
// that is not empty, hashes to it and is a WAV file. Anything else is
// answered (400, 413) and ok is false.
func (u wavUpload) read(c *gin.Context) (id string, body []byte, ok bool) {
	id = c.Param(u.param)
	if !protocol.IsSHA256Hex(id) {
		refuse(c, u.refusal, []protocol.Problem{{Path: u.param,
			Message: fmt.Sprintf("%q is not a SHA-256: name the %s by the sha256 of its bytes, 64 lower-case hex digits", id, u.noun)}})
		return "", nil, false
	}
	if body, ok = readBody(c, u.limit); !ok {
		return "", nil, false
	}
	sum := sha256.Sum256(body)
	switch got := hex.EncodeToString(sum[:]); {
	case len(body) == 0:
		refuse(c, u.refusal, []protocol.Problem{{Path: "body", Message: "empty: send the WAV file as the request body"}})
		return "", nil, false
	case got != id:
		refuse(c, u.refusal, []protocol.Problem{{Path: u.param,
			Message: fmt.Sprintf("the body's SHA-256 is %s, not %s: the upload was damaged, or the path names another file", got, id)}})
		return "", nil, false
	case !isWAV(body):
		refuse(c, u.refusal, []protocol.Problem{{Path: "body", Message: "not a WAV file (no RIFF/WAVE header)" + u.wavHint}})
		return "", nil, false
	}
	return id, body, true
}

// blobUpload checks an admin's PUT /v1/admin/blobs/{sha256}.
var blobUpload = wavUpload{refusal: "blob refused", param: "id", noun: "blob", limit: maxBlobBody,
	wavHint: "; prompts are 8 kHz mono 16-bit PCM WAV files"}

// putBlob stores the body under the SHA-256 the path names: 201 when new,
// 200 when it was there already.
func (s *Server) putBlob(c *gin.Context) {
	id, body, ok := blobUpload.read(c)
	if !ok {
		return
	}
	created, err := s.cfg.Store.PutBlob(c.Request.Context(), id, body, s.now())
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info("blob stored", "blob_id", id, "size", len(body))
	}
	c.JSON(status, BlobInfo{ID: id, SHA256: id, Size: len(body)})
}

// getBlob answers a blob's bytes (the admin's GET and the appliances').
func (s *Server) getBlob(c *gin.Context) {
	id := c.Param("id")
	data, err := s.cfg.Store.Blob(c.Request.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no blob %q: upload it with PUT /v1/admin/blobs/{sha256}", id)
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.Header("ETag", `"`+id+`"`)
	c.Header("Cache-Control", "private, max-age=31536000, immutable")
	c.Data(http.StatusOK, "audio/wav", data)
}
