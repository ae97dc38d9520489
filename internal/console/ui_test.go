package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestUIServes(t *testing.T) {
	t.Parallel()
	h := UI(UIOptions{DataEndpoint: "https://gw.example:8080"})
	tests := []struct {
		method, path string
		status       int
		contentType  string
		body         string // a substring of the body
		location     string
	}{
		{"GET", "/console/", 200, "text/html; charset=utf-8", `<script type="module" src="js/app.js">`, ""},
		{"HEAD", "/console/", 200, "text/html; charset=utf-8", "", ""},
		{"GET", "/console/index.html", 200, "text/html; charset=utf-8", "Bedrock Entitlement Gateway", ""},
		{"GET", "/console/js/app.js", 200, "text/javascript; charset=utf-8", "hashchange", ""},
		{"GET", "/console/css/app.css", 200, "text/css; charset=utf-8", ":focus-visible", ""},
		{"GET", "/console/vendor/uplot/uPlot.iife.min.js", 200, "text/javascript; charset=utf-8", "uPlot", ""},
		{"GET", "/console/config.json", 200, "application/json", `"data_endpoint":"https://gw.example:8080"`, ""},
		{"GET", "/console/js/", 404, "", "", ""},          // no directory listing
		{"GET", "/console/missing.js", 404, "", "", ""},   //
		{"GET", "/console/../ui.go", 404, "", "", ""},     // cleaned to /ui.go, not embedded
		{"POST", "/console/", 405, "", "", ""},            //
		{"GET", "/console", 301, "", "", "/console/"},     // relative URLs need the slash
		{"GET", "/console/api/session", 404, "", "", ""},  // the session API is mounted separately
		{"DELETE", "/console/js/app.js", 405, "", "", ""}, //
		{"GET", "/console/vendor/uplot/LICENSE", 200, "", "MIT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tt.status, body)
			}
			if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
			if tt.location != "" && res.Header.Get("Location") != tt.location {
				t.Errorf("Location %q, want %q", res.Header.Get("Location"), tt.location)
			}
			// Every answer carries the policy, errors included.
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
				if res.Header.Get(k) != v {
					t.Errorf("%s %q, want %q", k, res.Header.Get(k), v)
				}
			}
		})
	}
}

// TestUIWorksOffline checks the embedded files: no inline script or style
// (the policy forbids them), no reference to another host, and every
// file a page or module names is embedded.
func TestUIWorksOffline(t *testing.T) {
	t.Parallel()
	sub, err := fs.Sub(web, "web")
	if err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import\s+url\(\s*["']?(https?:)?//|fetch\(\s*["'](https?:)?//|from\s+["'](https?:)?//`)
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\son[a-z]+\s*=|style\s*=\s*["']`)
	imports := regexp.MustCompile(`(?m)(?:^import .* from|^import) ['"](\.{1,2}/[^'"]+)['"]`)
	refs := regexp.MustCompile(`(?:src|href)="([a-z][^":#?]+)"`)
	var n int
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(name, "vendor/") {
			return err
		}
		n++
		data, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		text := string(data)
		if m := external.FindString(text); m != "" {
			t.Errorf("%s refers to another host: %q", name, m)
		}
		if strings.HasSuffix(name, ".html") {
			if m := inline.FindString(text); m != "" {
				t.Errorf("%s has inline script or style: %q", name, m)
			}
			for _, m := range refs.FindAllStringSubmatch(text, -1) {
				if _, err := fs.Stat(sub, m[1]); err != nil {
					t.Errorf("%s names %s, which is not embedded", name, m[1])
				}
			}
		}
		if strings.HasSuffix(name, ".js") {
			if strings.Contains(text, "innerHTML") || strings.Contains(text, "eval(") || strings.Contains(text, "new Function") {
				t.Errorf("%s builds markup or code from strings; use dom.js", name)
			}
			dir := name[:strings.LastIndexByte(name, '/')+1]
			for _, m := range imports.FindAllStringSubmatch(text, -1) {
				target := pathJoin(dir, m[1])
				if _, err := fs.Stat(sub, target); err != nil {
					t.Errorf("%s imports %s (%s), which is not embedded", name, m[1], target)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d files embedded", n)
	}
}

func pathJoin(dir, rel string) string {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	if dir == "" {
		parts = nil
	}
	for _, p := range strings.Split(rel, "/") {
		switch p {
		case ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

func TestUIRedirectsThroughMux(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(Prefix, UI(UIOptions{}))
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.Handle(Prefix+"api/", api)
	for path, want := range map[string]int{"/console/": 200, "/console/api/session": http.StatusTeapot, "/console/js/api.js": 200} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}
