package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// getVoicemailAudio serves GET /api/v1/cluster/voicemail/{hash}: the
// WAV of a voicemail message this node holds, for another node of the
// cluster that plays it (*97) or keeps a copy (admin token; the nodes
// share it).
func (s *Server) getVoicemailAudio(c *gin.Context) {
	if s.deps.VoicemailAudio == nil {
		fail(c, http.StatusNotFound, "this node has no voicemail")
		return
	}
	hash := c.Param("hash")
	data, err := s.deps.VoicemailAudio(hash)
	if err != nil {
		fail(c, http.StatusNotFound, "no voicemail audio %q on this node: %v", hash, err)
		return
	}
	c.Data(http.StatusOK, "audio/wav", data)
}

// VoicemailAudio fetches a voicemail message's WAV by its sha256 from the
// node this client talks to.
func (c *Client) VoicemailAudio(ctx context.Context, sha256 string) ([]byte, error) {
	var data []byte
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster/voicemail/"+sha256, nil, &data); err != nil {
		return nil, fmt.Errorf("fetch voicemail audio: %w", err)
	}
	return data, nil
}
