package account

// Admin roles.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

func (c *checker) checkAdmins() {
	seen := make(map[string]int, len(c.s.Admins))
	for i, a := range c.s.Admins {
		p := index("admins", i)
		switch {
		case a.Username == "":
			c.add(p+".username", "required: the login name")
		case !isLogin(a.Username):
			c.addf(p+".username", "%q is not a usable login name; use 1 to 64 letters, digits and - _ . @", a.Username)
		default:
			if first, dup := seen[a.Username]; dup {
				c.addf(p+".username", "%q is already used by %s; login names must be unique", a.Username, index("admins", first))
			} else {
				seen[a.Username] = i
			}
		}
		switch a.Role {
		case RoleAdmin, RoleViewer:
		case "":
			c.add(p+".role", "required: admin or viewer")
		default:
			c.addf(p+".role", "unknown role %q; use admin or viewer", a.Role)
		}
		if !isBcrypt(a.Bcrypt) {
			c.add(p+".bcrypt", "not a bcrypt hash: want 60 characters starting $2a$, $2b$ or $2y$ with a cost of 04 to 31, as htpasswd -B or any bcrypt library makes")
		}
	}
}

func (c *checker) checkEmbed() {
	seen := make(map[string]bool, len(c.s.Embed.AllowedOrigins))
	for i, o := range c.s.Embed.AllowedOrigins {
		p := index("embed.allowed_origins", i)
		if why := originProblem(o); why != "" {
			c.addf(p, "%q is not a web origin: %s", o, why)
			continue
		}
		if seen[o] {
			c.addf(p, "origin %s is listed twice; remove one", o)
			continue
		}
		seen[o] = true
	}
}

// isLogin reports whether s is a login name: 1 to 64 letters, digits, - _ . @.
func isLogin(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '@' {
			return false
		}
	}
	return true
}
