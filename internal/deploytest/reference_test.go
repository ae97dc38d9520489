package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/config"
)

const (
	beginReference = "<!-- BEGIN CONFIG REFERENCE -->\n"
	endReference   = "<!-- END CONFIG REFERENCE -->"
)

// TestOperationsConfigReference keeps the configuration reference in
// docs/operations.md equal to config.Reference(). With -update or
// UPDATE_DOCS=1 it rewrites the section instead.
func TestOperationsConfigReference(t *testing.T) {
	t.Parallel()
	path := filepath.Join(repoRoot(t), "docs", "operations.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	begin := strings.Index(doc, beginReference)
	end := strings.Index(doc, endReference)
	if begin < 0 || end < begin || strings.Count(doc, beginReference) != 1 || strings.Count(doc, endReference) != 1 {
		t.Fatalf("%s: want exactly one %q followed by one %q", path, strings.TrimSpace(beginReference), endReference)
	}
	got := doc[begin+len(beginReference) : end]
	want := config.Reference()
	if got == want {
		return
	}
	if *update || os.Getenv("UPDATE_DOCS") == "1" {
		updated := doc[:begin+len(beginReference)] + want + doc[end:]
		if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the configuration reference in %s", path)
		return
	}
	line, docLine, codeLine := diffLine(got, want)
	t.Errorf("the configuration reference in docs/operations.md is out of date; run\n"+
		"  UPDATE_DOCS=1 go test ./internal/deploytest/ -run TestOperationsConfigReference\n"+
		"first difference at line %d:\n  doc:  %q\n  code: %q", line, docLine, codeLine)
}

// diffLine returns the first differing line (1-based) and both versions of it.
func diffLine(a, b string) (int, string, string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}
