package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profileReport holds the top of the gateway's CPU and allocation profiles.
type profileReport struct {
	Seconds  int
	RPS      float64
	CPUTop   string
	AllocTop string
	Files    []string

	StreamHeapFile string // in-use heap with many streams open
	StreamHeapTop  string
}

// profile takes a CPU profile and an allocation (delta) profile of the gateway
// while it serves the mixed load, and keeps `go tool pprof -top` of each.
func (h *harness) profile(ctx context.Context) error {
	if h.opts.Profile <= 0 {
		return nil
	}
	secs := int(h.opts.Profile / time.Second)
	h.printf("bench: profiling the gateway for %ds under mixed load\n", secs)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		path string
		err  error
	}
	kinds := []string{"profile", "allocs"}
	got := make([]fetched, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Let the load ramp up first.
			select {
			case <-time.After(500 * time.Millisecond):
			case <-rctx.Done():
				return
			}
			path := filepath.Join("bin", "bench-"+kind+".pprof")
			got[i] = fetched{path, fetch(rctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", h.opsAddr, kind, secs), path)}
		}()
	}
	rps, _, _, err := h.mixedLoad(rctx, h.opts.Profile+time.Second)
	wg.Wait()
	if err != nil {
		return err
	}
	h.prof.Seconds, h.prof.RPS = secs, rps
	for i, f := range got {
		if f.err != nil {
			return fmt.Errorf("fetching %s profile: %w", kinds[i], f.err)
		}
		h.prof.Files = append(h.prof.Files, f.path)
	}
	h.prof.CPUTop = pprofTop(ctx, got[0].path)
	h.prof.AllocTop = pprofTop(ctx, got[1].path, "-sample_index=alloc_space")
	if h.prof.StreamHeapFile != "" {
		h.prof.StreamHeapTop = pprofTop(ctx, h.prof.StreamHeapFile, "-sample_index=inuse_space")
		h.prof.Files = append(h.prof.Files, h.prof.StreamHeapFile)
	}
	h.printf("bench: profiles in %s\n", strings.Join(h.prof.Files, ", "))
	return nil
}

// fetch GETs url into the file at path.
func fetch(ctx context.Context, url, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fetchTo(ctx, url, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fetchTo(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The gateway's /debug/pprof wants an admin token; the bare proxy ignores it.
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// pprofTop is the first lines of `go tool pprof -top` (empty when it fails).
func pprofTop(ctx context.Context, path string, extra ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=25"}, extra...)
	args = append(args, "bin/gateway", path)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// Drop the File/Build ID/Type/Time preamble; keep from "Duration" or "Showing".
	for i, l := range lines {
		if strings.HasPrefix(l, "Showing") || strings.HasPrefix(l, "Duration") {
			lines = lines[i:]
			break
		}
	}
	return strings.Join(lines, "\n")
}
