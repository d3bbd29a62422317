package setup

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestServiceUserOwnsSecrets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user needs root")
	}
	root := t.TempDir()
	if err := WriteFileAtomic(filepath.Join(root, "etc/passwd"), []byte("outpost:x:998:997::/var/lib/outpost:/usr/sbin/nologin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := fakeWriter(root)
	s := goodStatic()
	files, _ := Render(s, System{Now: stamp})
	if _, err := w.Write(s, files); err != nil {
		t.Fatal(err)
	}
	_ = WriteFileAtomic(w.Path(CredentialsPath), []byte("{}"), 0o600)
	if err := w.Own(CredentialsPath); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{DataDir, BreakGlassPath, TokenPath, CredentialsPath} {
		fi, err := os.Stat(w.Path(p))
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 998 || st.Gid != 997 {
			t.Errorf("%s is not the service user's: %+v", p, fi.Sys())
		}
	}
}
