package ui

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
)

// validNodeID is what the join form accepts as a node id.
var validNodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// clusterBody is the data of the Cluster page.
type clusterBody struct {
	board
	CanJoin bool // the form is shown: a join function and an admin
	Joined  string
	ID      string // the form's values, kept after a refusal
	Addr    string
}

func (u *UI) clusterPage(c *gin.Context) {
	u.renderCluster(c, http.StatusOK, clusterBody{Joined: c.Query("joined")}, "")
}

func (u *UI) renderCluster(c *gin.Context, status int, body clusterBody, msg string) {
	sess := sessionOf(c)
	body.board = u.board(c.Request.Context())
	body.CanJoin = u.d.Join != nil && sess.role == account.RoleAdmin
	u.render(c, status, "cluster", page{Title: "Cluster", Nav: "/cluster", User: sess.user, CSRF: sess.csrf, Message: msg, Body: body})
}

// joinNode adds a voter through the API's join logic (Deps.Join).
func (u *UI) joinNode(c *gin.Context) {
	sess := sessionOf(c)
	id, addr := strings.TrimSpace(c.PostForm("id")), strings.TrimSpace(c.PostForm("raft_addr"))
	body := clusterBody{ID: id, Addr: addr}
	if u.d.Join == nil {
		u.renderCluster(c, http.StatusNotFound, body, "This node cannot add members from the UI.")
		return
	}
	if sess.role != account.RoleAdmin {
		u.renderCluster(c, http.StatusForbidden, body, "Only an admin may add a node; you are signed in as a viewer.")
		return
	}
	if msg := checkJoin(id, addr); msg != "" {
		u.renderCluster(c, http.StatusBadRequest, body, msg)
		return
	}
	if status, err := u.d.Join(c.Request.Context(), id, addr); err != nil {
		u.d.Log.Warn("ui: join refused", "member_id", id, "raft_addr", addr, "user", sess.user, "status", status, "error", err)
		if status < 400 {
			status = http.StatusBadGateway
		}
		u.renderCluster(c, status, body, "The node was not added: "+err.Error())
		return
	}
	u.d.Log.Info("ui: member joined", "member_id", id, "raft_addr", addr, "user", sess.user)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, "/cluster?joined="+id)
}

// checkJoin says what is wrong with a join form, or "".
func checkJoin(id, addr string) string {
	if !validNodeID.MatchString(id) {
		return "Node id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (the node's node_id)."
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "Raft address: host:port, e.g. 10.0.0.4:7000 (the node's raft.listen address as the others reach it)."
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "Raft address: the port must be a number from 1 to 65535."
	}
	return ""
}
