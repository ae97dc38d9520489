package opsauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	line := func(name, role, secret string) string {
		return name + " " + role + " sha256:" + digestHex(secret) + "\n"
	}
	write := func(data string) {
		t.Helper()
		// Written beside and renamed over, as an operator's tooling would.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(src *FileSource, secret string) (Principal, bool) {
		return src.Current().Authenticate("Bearer " + secret)
	}
	write(line("ops", "admin", "token-a-0123456789") + line("fin", "viewer", "token-b-0123456789"))
	src, err := NewFileSource(FileSourceOptions{Static: []Token{NewToken("env", RoleAdmin, "token-env-0123456789")}, File: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"token-a-0123456789", "token-b-0123456789", "token-env-0123456789"} {
		if _, ok := auth(src, secret); !ok {
			t.Fatalf("%s refused", secret)
		}
	}

	steps := []struct {
		name string
		file string
		want map[string]string // secret -> role ("" refused)
	}{
		{"a line removed", line("ops", "admin", "token-a-0123456789"),
			map[string]string{"token-a-0123456789": "admin", "token-b-0123456789": "", "token-env-0123456789": "admin"}},
		{"a role changed", line("ops", "viewer", "token-a-0123456789"),
			map[string]string{"token-a-0123456789": "viewer"}},
		{"a broken file keeps the last good tokens", line("ops", "admin", "token-a-0123456789") + "bad line\n",
			map[string]string{"token-a-0123456789": "viewer"}},
		{"a name taken by the environment is refused", line("env", "viewer", "token-c-0123456789"),
			map[string]string{"token-a-0123456789": "viewer", "token-c-0123456789": ""}},
		{"an empty file leaves the environment's tokens", "# nobody\n",
			map[string]string{"token-a-0123456789": "", "token-env-0123456789": "admin"}},
	}
	for _, st := range steps {
		write(st.file)
		for secret, role := range st.want {
			p, ok := auth(src, secret)
			if ok != (role != "") || string(p.Role) != role {
				t.Errorf("%s: %s authenticates as %v, %v; want role %q", st.name, secret, p, ok, role)
			}
		}
	}
	write("bad\n")
	if _, err := src.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, ok := auth(src, "token-env-0123456789"); !ok {
		t.Fatal("a missing file lost the tokens in force")
	}
}

func TestFileSourceStaticOnly(t *testing.T) {
	t.Parallel()
	src, err := NewFileSource(FileSourceOptions{Static: []Token{NewToken("env", RoleAdmin, "token-env-0123456789")}})
	if err != nil {
		t.Fatal(err)
	}
	if set, err := src.Reload(); err != nil || set.Len() != 1 {
		t.Fatalf("Reload = %v, %v", set, err)
	}
	if _, err := NewFileSource(FileSourceOptions{File: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("a missing token file was accepted at start")
	}
}
