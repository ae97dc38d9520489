// Package console is the web console served on the ops listener at
// /console/: static pages embedded in the binary (this file) that drive the
// admin API from the browser, and the sessions that let a browser sign in
// with an admin token.
package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// web holds the pages, scripts, styles and the vendored chart library. No
// build step: plain HTML, CSS and ES modules, so what is committed is what
// is served.
//
//go:embed web
var web embed.FS

// Prefix is where the console is served on the ops listener.
const Prefix = "/console/"

// contentSecurityPolicy allows nothing but this origin: no inline script or
// style element, no framing, no other host. The console makes no request
// anywhere else and works offline.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// UIOptions configure the console's pages.
type UIOptions struct {
	// DataEndpoint is the data plane's URL as members' SDKs reach it, shown
	// in the environment lines of a newly issued credential; empty shows a
	// placeholder.
	DataEndpoint string
}

// UI returns the handler of the console's static files under Prefix, and of
// Prefix+"config.json" (what the pages need to know about this gateway,
// nothing secret). The session API (Prefix+"api/...") is registered
// separately; a more specific pattern on the same mux wins over this one.
func UI(opts UIOptions) http.Handler {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic("console: embedded web directory missing: " + err.Error()) // a build error
	}
	files := http.FileServerFS(sub)
	cfg, err := json.Marshal(map[string]string{"data_endpoint": opts.DataEndpoint})
	if err != nil {
		panic("console: encoding config: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			// /console without the slash: relative URLs of the page need it.
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name := path.Clean("/" + rest)
		if name == "/config.json" {
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(cfg)
			return
		}
		if name == "/" {
			name = "/index.html"
		}
		// Without a build step names carry no content hash, so a cached copy
		// could outlive an upgrade: every file is revalidated.
		h.Set("Cache-Control", "no-cache")
		if st, err := fs.Stat(sub, strings.TrimPrefix(name, "/")); err != nil || st.IsDir() {
			http.NotFound(w, r) // no directory listings
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = name
		if name == "/index.html" {
			// FileServer redirects /index.html to ./; serve the file directly.
			serveIndex(w, r2, sub)
			return
		}
		files.ServeHTTP(w, r2)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, sub fs.FS) {
	data, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		http.Error(w, "console page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}
