package server

import (
	"net"
	"net/http"

	"github.com/bedrock-gateway/gateway/internal/console"
)

// mountConsole serves the web console's pages at /console/ on the ops
// listener when --console is on and an admin token exists to sign in with.
func (s *Server) mountConsole(mux *http.ServeMux) {
	if !s.cfg.Console {
		return
	}
	if !s.ConsoleEnabled() {
		s.log.Info("the web console is off: it needs an admin token to sign in with (GATEWAY_ADMIN_TOKEN or --admin-token-file)")
		return
	}
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	mux.Handle(console.Prefix, console.UI(console.UIOptions{DataEndpoint: scheme + "://" + dialAddr(s.dataLn.Addr().String())}))
	mux.Handle("/console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently))
}

// dialAddr is the data listener's address as a browser's user reaches it: a
// wildcard host (every interface) becomes "{host}", which the console fills
// with the host its own page was loaded from.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "{host}:" + port
	}
	return net.JoinHostPort(host, port)
}

// ConsoleEnabled reports whether the ops listener serves the web console:
// --console is on and there is an admin token to sign in with.
func (s *Server) ConsoleEnabled() bool {
	return s.cfg.Console && (len(s.cfg.AdminAuthTokens()) > 0 || s.cfg.AdminTokenFile != "")
}
