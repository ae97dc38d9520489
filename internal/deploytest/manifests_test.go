package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// deployDirs are the directories whose files these tests read.
var deployDirs = []string{"deploy/compose", "deploy/kubernetes"}

// filesUnder returns the repository-relative paths of the files under dirs
// whose names satisfy keep.
func filesUnder(t *testing.T, root string, dirs []string, keep func(name string) bool) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && keep(e.Name()) {
				rel, _ := filepath.Rel(root, path)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// readYAMLDocs decodes every document of a YAML stream.
func readYAMLDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}

func TestYAMLParses(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	files := filesUnder(t, root, deployDirs, isYAML)
	if len(files) < 10 {
		t.Fatalf("found only %d YAML files under %v", len(files), deployDirs)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		docs, err := readYAMLDocs(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
		for i, d := range docs {
			var v any
			if err := d.Decode(&v); err != nil {
				t.Errorf("%s: document %d: %v", f, i+1, err)
			} else if _, ok := v.(map[string]any); !ok {
				t.Errorf("%s: document %d is a %T, want a mapping", f, i+1, v)
			}
		}
	}
}

// TestEnvironmentVariablesExist: every GATEWAY_* name anywhere in the deploy
// files is read by the binary.
func TestEnvironmentVariablesExist(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	s := binarySchema(t)
	files := filesUnder(t, root, append(slices.Clone(deployDirs), "deploy/docker"), func(string) bool { return true })
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range envRe.FindAllString(string(data), -1) {
			seen++
			if !s.env[v] {
				t.Errorf("%s: %s is not an environment variable of the gateway", f, v)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no GATEWAY_* variable found: the scan is broken")
	}
}

// dockerfile is the instructions of a Dockerfile, continuation lines joined.
type dockerInstruction struct{ cmd, args string }

func readDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstruction
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

func execForm(t *testing.T, where, args string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		t.Fatalf("%s: want the exec (JSON) form, got %q: %v", where, args, err)
	}
	return v
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	s := binarySchema(t)
	ins := readDockerfile(t, filepath.Join(root, "deploy/docker/Dockerfile"))
	var entrypoint, cmd, health []string
	var expose []string
	var user string
	copied := map[string]bool{}
	for _, in := range ins {
		switch in.cmd {
		case "ENTRYPOINT":
			entrypoint = execForm(t, "ENTRYPOINT", in.args)
		case "CMD":
			cmd = execForm(t, "CMD", in.args)
		case "HEALTHCHECK":
			_, after, ok := strings.Cut(in.args, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %q has no CMD", in.args)
			}
			health = execForm(t, "HEALTHCHECK", after)
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		case "USER":
			user = in.args
		case "COPY":
			f := strings.Fields(in.args)
			copied[f[len(f)-1]] = true
		case "RUN":
			for _, pkg := range strings.Fields(in.args) {
				if strings.HasPrefix(pkg, "./") {
					if fi, err := os.Stat(filepath.Join(root, pkg)); err != nil || !fi.IsDir() {
						t.Errorf("RUN builds %s, which is not a package directory", pkg)
					}
				}
			}
		}
	}
	if !slices.Equal(entrypoint, []string{"/gateway"}) || !copied["/gateway"] {
		t.Errorf("ENTRYPOINT = %q (copied: %v), want [/gateway] copied from the build stage", entrypoint, keys(copied))
	}
	s.checkCommand(t, "Dockerfile CMD", cmd)
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Errorf("CMD = %q, want serve", cmd)
	}
	wantPorts := []string{portOf(t, defaultOf(t, "listen")), portOf(t, defaultOf(t, "ops-listen"))}
	slices.Sort(expose)
	slices.Sort(wantPorts)
	if !slices.Equal(expose, wantPorts) {
		t.Errorf("EXPOSE %v, want the default data and ops ports %v", expose, wantPorts)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q, want a non-root user", user)
	}
	// The probe's default target is /healthz on GATEWAY_OPS_LISTEN's port,
	// default 9090, which must be the ops listener's default.
	if len(health) != 1 || !copied[health[0]] {
		t.Errorf("HEALTHCHECK CMD %q, want the probe copied into the image, without arguments", health)
	}
	if got := portOf(t, defaultOf(t, "ops-listen")); got != "9090" {
		t.Errorf("the default ops port is %s; deploy/docker/healthcheck assumes 9090", got)
	}
}
