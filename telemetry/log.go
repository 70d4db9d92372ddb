package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	orgIDKey
)

// WithRequestID returns ctx carrying a request id for logs.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// WithOrgID returns ctx carrying an org id for logs.
func WithOrgID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, orgIDKey, id)
}

// OrgID returns the org id in ctx, or "".
func OrgID(ctx context.Context) string {
	s, _ := ctx.Value(orgIDKey).(string)
	return s
}

// NewLogger returns a JSON logger writing to w at level, with the service
// name on every record and the context attributes Handler adds.
func NewLogger(w io.Writer, level slog.Leveler, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: redact})
	return slog.New(Handler{h}).With("service", service)
}

// Handler wraps a slog.Handler and adds request_id, org_id, trace_id and
// span_id from each record's context.
type Handler struct{ slog.Handler }

// Handle adds the context attributes and passes the record on.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if id := OrgID(ctx); id != "" {
		r.AddAttrs(slog.String("org_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper.
func (h Handler) WithAttrs(as []slog.Attr) slog.Handler { return Handler{h.Handler.WithAttrs(as)} }

// WithGroup keeps the wrapper.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }

// secretWords mark attribute names whose values must never be logged.
var secretWords = []string{"secret", "password", "token", "authorization", "api_key", "apikey", "private", "signature", "cookie"}

// Redacted replaces a secret attribute's value.
const Redacted = "[REDACTED]"

func redact(groups []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return slog.String(a.Key, Redacted)
		}
	}
	if a.Value.Kind() == slog.KindString && strings.Contains(a.Value.String(), "sdf_live_") {
		return slog.String(a.Key, redactKeys(a.Value.String()))
	}
	return a
}

// redactKeys blanks the secret part of any API key inside s, keeping the
// public key id so a log still says which key was used.
func redactKeys(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "sdf_live_")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+len("sdf_live_"):]
		j := 0
		for j < len(rest) && (rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= '2' && rest[j] <= '7' || rest[j] == '_') {
			j++
		}
		id, _, _ := strings.Cut(rest[:j], "_")
		b.WriteString("sdf_live_" + id + "_" + Redacted)
		s = rest[j:]
	}
}
