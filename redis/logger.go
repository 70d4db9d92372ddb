package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Logger adapts a *slog.Logger to go-redis's logger, which is global to
// the process and by default writes every failed dial to stderr. Install
// it once, in main:
//
//	goredis.SetLogger(&redis.Logger{Log: log})
type Logger struct {
	// Log receives go-redis's messages at level Warn.
	Log *slog.Logger
}

// Printf logs one go-redis message.
func (l *Logger) Printf(ctx context.Context, format string, v ...any) {
	if l == nil || l.Log == nil {
		return
	}
	l.Log.WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "go-redis")
}
