package account

// MaxBlobIDLength bounds a prompt's blob id.
const MaxBlobIDLength = 128

const blobIDRule = "use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'"

// checkPrompts checks the account's custom recordings: one per prompt
// name, each naming its blob and the blob's SHA-256.
func (c *checker) checkPrompts() {
	names := make(map[string]int, len(c.s.Prompts))
	blobs := make(map[string]int, len(c.s.Prompts))
	for i, p := range c.s.Prompts {
		path := index("prompts", i)
		switch {
		case p.Name == "":
			c.add(path+".name", "required: the prompt name routes use, e.g. main-menu")
		case !isName(p.Name):
			c.addf(path+".name", "%q is not a prompt name; use letters, digits, '.', '_', '-' and '/' between parts", p.Name)
		default:
			if first, dup := names[p.Name]; dup {
				c.addf(path+".name", "prompt %q already has a recording in %s; give each prompt name one recording", p.Name, index("prompts", first))
			} else {
				names[p.Name] = i
			}
		}
		switch {
		case p.Blob == "":
			c.add(path+".blob", "required: the id of the recording's blob in the cloud")
		case !IsBlobID(p.Blob):
			c.addf(path+".blob", "%q is not a blob id; %s", p.Blob, blobIDRule)
		}
		switch {
		case p.SHA256 == "":
			c.add(path+".sha256", "required: the SHA-256 of the WAV file as 64 lower-case hex digits (sha256sum prints it)")
		case !isLowerHex(p.SHA256, 64):
			c.addf(path+".sha256", "%q is not a SHA-256: want exactly 64 lower-case hex digits, as sha256sum prints them", p.SHA256)
		case IsBlobID(p.Blob):
			// One blob is one file: two prompts may share it, but not
			// disagree on its hash.
			if first, seen := blobs[p.Blob]; seen && c.s.Prompts[first].SHA256 != p.SHA256 {
				c.addf(path+".sha256", "blob %s has another sha256 in %s; a blob has one content, fix the hash or the blob id",
					p.Blob, index("prompts", first))
			} else if !seen {
				blobs[p.Blob] = i
			}
		}
	}
}

// IsBlobID reports whether s is a usable blob id: 1 to MaxBlobIDLength
// letters, digits, '.', '_' or '-', not starting with '.'. Such an id is
// safe as a URL path segment and as a file name.
func IsBlobID(s string) bool {
	if s == "" || len(s) > MaxBlobIDLength || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
