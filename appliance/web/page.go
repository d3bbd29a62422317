package web

import (
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"
)

// statusTmpl is the landing page until the full UI lands: the same facts as
// /api/v1/status, server-rendered, refreshed every few seconds.
var statusTmpl = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Outpost {{.NodeID}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.ok{color:#070}.bad{color:#a00}</style></head>
<body>
<h1>Outpost — node {{.NodeID}} (site {{.Site}})</h1>
<p>Mode: <strong id="mode">{{.Mode}}</strong> · Revision: <strong id="revision">{{.Revision}}</strong> ·
Leader: <strong>{{if .Leader}}{{.Leader}}{{else}}none{{end}}</strong> ·
Quorum: {{if .Quorum}}<span class="ok">yes</span>{{else}}<span class="bad">no</span>{{end}} ·
{{if .Ready}}<span class="ok">ready</span>{{else}}<span class="bad">not ready: {{.NotReadyReason}}</span>{{end}}</p>
<h2>Cluster</h2>
<table><tr><th>Member</th><th>Site</th><th>Raft</th><th>HTTP</th><th>Health</th><th>Role</th></tr>
{{range .Members}}<tr><td>{{.ID}}</td><td>{{.Site}}</td><td>{{.RaftAddr}}</td><td>{{.HTTPAddr}}</td>
<td>{{if .Healthy}}<span class="ok">healthy</span>{{else}}<span class="bad">down</span>{{end}}</td>
<td>{{if .Leader}}leader{{else}}follower{{end}}</td></tr>{{end}}
</table>
<h2>Phones and calls</h2>
<p>Registrations: {{.Registrations}} · Active calls: {{.ActiveCalls}} · Journal backlog: {{.JournalPending}}</p>
<p>Cloud: {{if .Cloud.URL}}{{.Cloud.URL}}{{else}}not configured (offline; snapshots come from <code>outpost apply</code>){{end}}</p>
<p><a href="/api/v1/status">status as JSON</a> · <a href="/metrics">metrics</a></p>
</body></html>`))

func (s *Server) statusPage(c *gin.Context) {
	st, err := s.status(c.Request.Context())
	if err != nil {
		fail(c, http.StatusInternalServerError, "read status: %v", err)
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	if err := statusTmpl.Execute(c.Writer, st); err != nil {
		s.deps.Log.Warn("render status page", "error", err)
	}
}
