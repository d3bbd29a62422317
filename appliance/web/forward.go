package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/gin-gonic/gin"
)

// forwardedHeader marks a request a follower passed to the leader; a node
// that is not the leader either refuses it rather than forwarding it again.
const forwardedHeader = "X-Outpost-Forwarded-By"

// errNoLeader means no leader is known or its address is not yet recorded.
var errNoLeader = errors.New("no raft leader is known: the cluster has no quorum or is electing; retry shortly")

// forwardToLeader serves writes on the leader and proxies them, whole, to the
// leader from a follower, so a client may talk to any node.
func (s *Server) forwardToLeader(c *gin.Context) {
	if s.deps.Cluster.IsLeader() {
		c.Next()
		return
	}
	if by := c.GetHeader(forwardedHeader); by != "" {
		fail(c, http.StatusServiceUnavailable, "forwarded by %s but this node is no longer the leader; retry", by)
		return
	}
	target, err := s.leaderHTTP(c.Request.Context())
	if err != nil {
		fail(c, http.StatusServiceUnavailable, "%v", err)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
			r.Out.Header.Set(forwardedHeader, s.deps.NodeID)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.deps.Log.Warn("forward to leader failed", "leader", target.Host, "error", err)
			writeJSON(w, http.StatusBadGateway, newAPIError("forwarding to the leader at "+target.Host+" failed: "+err.Error(), nil))
		},
	}
	proxy.ServeHTTP(c.Writer, c.Request)
	c.Abort()
}

// leaderHTTP finds the leader's HTTP base URL from the replicated members.
func (s *Server) leaderHTTP(ctx context.Context) (*url.URL, error) {
	id, _ := s.deps.Cluster.Leader()
	if id == "" {
		return nil, errNoLeader
	}
	members, err := s.deps.Reader.Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.ID == id && m.HTTPAddr != "" {
			return &url.URL{Scheme: "http", Host: m.HTTPAddr}, nil
		}
	}
	return nil, fmt.Errorf("the leader %s has not announced its HTTP address yet; retry shortly", id)
}
