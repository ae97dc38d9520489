package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own messages (connection pool dial failures,
// reconnects) through the gateway's slog handler, so `--log-format json`
// output stays JSON. go-redis keeps one logger per process, so only the
// process entry point (serve) installs it.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	msg = strings.TrimPrefix(msg, "redis: ")
	l.log.WarnContext(ctx, msg, "component", "go-redis")
}

// libraryLog is the logger the libraries' process-wide hooks write to: the
// one of the latest serve (one per process outside tests). It is package
// state only because go-redis's hook is process-wide.
var (
	libraryLog     atomic.Pointer[slog.Logger]
	libraryLogOnce sync.Once
)

// processLogger forwards to whatever libraryLog holds.
type processLogger struct{}

func (processLogger) Printf(ctx context.Context, format string, v ...any) {
	if log := libraryLog.Load(); log != nil {
		redisLogger{log: log}.Printf(ctx, format, v...)
	}
}

// routeLibraryLogs sends the libraries' own logging through log.
func routeLibraryLogs(log *slog.Logger) {
	libraryLog.Store(log)
	libraryLogOnce.Do(func() { redis.SetLogger(processLogger{}) })
}
