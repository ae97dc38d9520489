// Command bareproxy is the reference the gateway is measured against: a plain
// httputil.ReverseProxy with a tuned transport that forwards every request to
// one upstream unchanged (Host included, so SigV4 signatures made for the proxy
// still verify at the upstream). It does no authentication, no quota and no
// metering: whatever the gateway costs beyond it is the price of that work.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8082", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:8081", "upstream base URL")
	debug := flag.String("debug-listen", "", "when set, serve GET /memstats here (live heap and stacks after a GC, goroutines) for the harness's memory runs")
	flag.Parse()
	if *debug != "" {
		go serveMemstats(*debug)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *upstream); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, listen, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("parsing upstream: %w", err)
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		// Read and write buffers stay at net/http's 4 KiB: requests and events
		// are small, and larger buffers only raise the memory of an open stream.
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signature covers Host
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      log.New(os.Stderr, "bareproxy: ", 0),
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: bufferBody(proxy), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bufferBody reads the (small) request body before proxying. Without it a fast
// upstream breaks about one stream in a hundred: the server closes the inbound
// body once the proxy starts answering, while the transport may still be making
// its final read of that body after Content-Length bytes; the read fails and
// the transport closes the upstream connection under the response it is
// streaming ("use of closed network connection"). The gateway reads every body
// once anyway (to hash it), so this costs the reference nothing it is spared.
func bufferBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength > 0 && r.ContentLength <= 1<<20 {
			b := make([]byte, r.ContentLength)
			if _, err := io.ReadFull(r.Body, b); err != nil {
				http.Error(w, "reading request body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r)
	})
}

// serveMemstats answers "heap_and_stacks_bytes goroutines" measured right after
// a forced GC, on a listener apart from the proxied traffic.
func serveMemstats(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /memstats", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "%d %d\n", m.HeapInuse+m.StackInuse, runtime.NumGoroutine())
	})
	log.Println((&http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe())
}
