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

// isSHA256Hex reports whether s is 64 lower-case hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isWAV reports whether data starts as a RIFF WAVE file does.
func isWAV(data []byte) bool {
	return len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WAVE"))
}

// putBlob stores the body under the SHA-256 the path names: 201 when new,
// 200 when it was there already.
func (s *Server) putBlob(c *gin.Context) {
	id := c.Param("id")
	if !isSHA256Hex(id) {
		refuse(c, "blob refused", []protocol.Problem{{Path: "id",
			Message: fmt.Sprintf("%q is not a SHA-256: name the blob by the sha256sum of its bytes, 64 lower-case hex digits", id)}})
		return
	}
	body, ok := readBody(c, maxBlobBody)
	if !ok {
		return
	}
	sum := sha256.Sum256(body)
	switch got := hex.EncodeToString(sum[:]); {
	case len(body) == 0:
		refuse(c, "blob refused", []protocol.Problem{{Path: "body", Message: "empty: send the WAV file as the request body"}})
		return
	case got != id:
		refuse(c, "blob refused", []protocol.Problem{{Path: "id",
			Message: fmt.Sprintf("the body's SHA-256 is %s, not %s: the upload was damaged, or the path names another file", got, id)}})
		return
	case !isWAV(body):
		refuse(c, "blob refused", []protocol.Problem{{Path: "body",
			Message: "not a WAV file (no RIFF/WAVE header); prompts are 8 kHz mono 16-bit PCM WAV files"}})
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
