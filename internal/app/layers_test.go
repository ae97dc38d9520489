package app

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/bedrock-gateway/gateway"

// TestLayers keeps the dependency directions the packages were arranged for:
// the request path (proxy) does not pull in the admin API or the state store,
// metering does not reach up into admin, and the CLI, which only talks to the
// admin API and decodes reports, carries none of the server-side machinery.
// Only non-test files count (as in `go list -deps`).
func TestLayers(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"internal/proxy", []string{"internal/admin", "internal/store"}},
		{"internal/metering", []string{"internal/admin", "internal/store"}},
		{"internal/cli", []string{"internal/quota", "internal/authz", "internal/store"}},
		{"internal/orgsync", []string{"internal/admin", "internal/store", "internal/quota", "internal/authz", "internal/proxy", "internal/cli"}},
		{"internal/report", []string{"internal/quota", "internal/authz", "internal/store", "internal/metering", "internal/admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			deps := moduleDeps(t, root, tt.pkg)
			if len(deps) == 0 {
				t.Fatalf("no dependencies found for %s", tt.pkg)
			}
			for _, f := range tt.forbidden {
				if via, ok := deps[f]; ok {
					t.Errorf("%s depends on %s (imported by %s)", tt.pkg, f, via)
				}
			}
		})
	}
}

// moduleDeps maps every package of the module that pkg depends on,
// transitively, to one package importing it.
func moduleDeps(t *testing.T, root, pkg string) map[string]string {
	t.Helper()
	deps := map[string]string{}
	var visit func(rel string)
	visit = func(rel string) {
		p, err := build.Default.ImportDir(filepath.Join(root, filepath.FromSlash(rel)), 0)
		if err != nil {
			t.Fatalf("reading %s: %v", rel, err)
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if _, seen := deps[dep]; seen {
				continue
			}
			deps[dep] = rel
			visit(dep)
		}
	}
	visit(pkg)
	return deps
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if !slices.Contains(strings.Fields(string(b)), module) {
				t.Fatalf("%s/go.mod is not module %s", dir, module)
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
