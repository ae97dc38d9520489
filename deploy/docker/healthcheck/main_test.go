package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTargetURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		ops     string
		want    string
		wantErr bool
	}{
		{name: "default", want: "http://127.0.0.1:9090/healthz"},
		{name: "ops port from env", ops: ":9191", want: "http://127.0.0.1:9191/healthz"},
		{name: "ops host and port from env", ops: "0.0.0.0:7000", want: "http://127.0.0.1:7000/healthz"},
		{name: "explicit URL wins", args: []string{"http://127.0.0.1:8081/foundation-models"}, ops: ":9191", want: "http://127.0.0.1:8081/foundation-models"},
		{name: "bad env", ops: "9090", wantErr: true},
		{name: "two URLs", args: []string{"a", "b"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := targetURL(tt.args, func(k string) string {
				if k == "GATEWAY_OPS_LISTEN" {
					return tt.ops
				}
				return ""
			})
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("targetURL(%q, ops %q) = %q, %v; want %q, error %v", tt.args, tt.ops, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = io.WriteString(w, "ok\n")
		default:
			http.Error(w, "draining", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"healthy", []string{srv.URL + "/healthz"}, 0},
		{"unhealthy", []string{srv.URL + "/readyz"}, 1},
		{"unreachable", []string{"http://127.0.0.1:1/healthz"}, 1},
		{"bad flag", []string{"-nope"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := run(context.Background(), tt.args, func(string) string { return "" }, io.Discard); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}
