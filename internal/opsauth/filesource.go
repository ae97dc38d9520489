package opsauth

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// FileSourceOptions configure a FileSource.
type FileSourceOptions struct {
	// Static tokens are always accepted (those of GATEWAY_ADMIN_TOKEN).
	Static []Token
	// File is the admin token file; empty means Static only.
	File string
	// Logger; nil discards.
	Logger *slog.Logger
}

// FileSource is the set of admin tokens of a running gateway: the static ones
// and those of the token file, read again whenever the file changes. The
// file is checked (one stat) on every use, so removing a line ends that
// token's access, its console sessions included, on the next request, with
// no restart and no reload call. A file that cannot be read or parsed keeps
// the last good set in force (a rotation caught half-written must not lock
// everyone out), and says so in the log.
type FileSource struct {
	static []Token
	path   string
	log    *slog.Logger

	set atomic.Pointer[Set]

	mu   sync.Mutex // serializes reads of the file
	info os.FileInfo
}

// NewFileSource reads the token file once; it must be valid.
func NewFileSource(opts FileSourceOptions) (*FileSource, error) {
	f := &FileSource{static: append([]Token(nil), opts.Static...), path: opts.File, log: opts.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.set.Store(NewSet(f.static))
	if f.path == "" {
		return f, nil
	}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Current returns the tokens accepted now, re-reading the file first when it
// changed (its size, modification time or identity).
func (f *FileSource) Current() *Set {
	if f.path == "" {
		return f.set.Load()
	}
	fi, err := os.Stat(f.path)
	f.mu.Lock()
	changed := err == nil && (f.info == nil || !os.SameFile(fi, f.info) || fi.Size() != f.info.Size() || !fi.ModTime().Equal(f.info.ModTime()))
	f.mu.Unlock()
	if changed {
		if _, err := f.Reload(); err != nil {
			f.log.Error("admin token file changed but cannot be used; the previous tokens stay in force", "file", f.path, "error", err)
		}
	}
	return f.set.Load()
}

// Reload reads the token file now and returns the tokens in force after it:
// on an error, the previous ones.
func (f *FileSource) Reload() (*Set, error) {
	if f.path == "" {
		return f.set.Load(), nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return f.set.Load(), fmt.Errorf("reading admin token file: %w", err)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return f.set.Load(), fmt.Errorf("reading admin token file: %w", err)
	}
	tokens, err := parse(data)
	if err != nil {
		return f.set.Load(), fmt.Errorf("admin token file %s: %w", f.path, err)
	}
	names := make(map[string]bool, len(f.static))
	for _, t := range f.static {
		names[t.Name] = true
	}
	var errs []error
	for _, t := range tokens {
		if names[t.Name] {
			errs = append(errs, fmt.Errorf("admin token name %q is also given by GATEWAY_ADMIN_TOKEN", t.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return f.set.Load(), fmt.Errorf("admin token file %s: %w", f.path, err)
	}
	prev := f.set.Load().Len()
	next := NewSet(append(append([]Token(nil), f.static...), tokens...))
	f.set.Store(next)
	if f.info != nil {
		f.log.Info("admin token file read again", "file", f.path, "tokens", next.Len(), "before", prev)
	}
	f.info = fi
	return next, nil
}
