package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/telemetry"
)

// maxRequestIDLen is the longest incoming X-Request-Id that is kept.
const maxRequestIDLen = 64

// unmatchedRoute labels requests that match no route, so that metrics
// stay bounded whatever paths clients send.
const unmatchedRoute = "unmatched"

// reqInfo is what the outer middleware learns about a request and the
// inner layers fill in (the org once authenticated), shared through the
// context so that the access log sees it.
type reqInfo struct {
	id string
	// clientID is set when id came from the client's X-Request-Id.
	clientID bool
	route    string
	orgID    string
}

type infoKey struct{}

func infoOf(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(infoKey{}).(*reqInfo)
	if ri == nil {
		return &reqInfo{}
	}
	return ri
}

// routeOf returns the route pattern that r matched.
func routeOf(r *http.Request) string { return infoOf(r.Context()).route }

// middleware wraps the mux in the request pipeline, outermost first:
// request id, tracing, metrics and access log, panic recovery, body
// limit, timeout and security headers. Recovery sits inside the
// observing layers so that a panic is traced, counted and logged as the
// 500 it becomes.
func (s *Server) middleware(next http.Handler) http.Handler {
	h := s.securityHeaders(next)
	h = s.timeout(h)
	h = s.bodyLimit(h)
	h = s.recover(h)
	h = s.observe(h)
	h = s.trace(h)
	return s.requestID(h)
}

// requestID accepts a safe incoming X-Request-Id or makes one, echoes it,
// and puts it and the matched route in the context.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		client := validRequestID(id)
		if !client {
			id = sentineldf.NewID("req")
		}
		w.Header().Set("X-Request-Id", id)
		_, pattern := s.mux.Handler(r)
		if pattern == "" || pattern == catchAllRoute {
			pattern = unmatchedRoute
		}
		ctx := telemetry.WithRequestID(r.Context(), id)
		ctx = context.WithValue(ctx, infoKey{}, &reqInfo{id: id, clientID: client, route: pattern})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validRequestID reports whether id is 1 to 64 characters of
// [A-Za-z0-9._:-], safe to echo and to log.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// trace starts a server span per request, named by the route pattern, as
// a child of the caller's traceparent when there is one.
func (s *Server) trace(next http.Handler) http.Handler {
	prop := telemetry.HTTPPropagator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("request.id", telemetry.RequestID(ctx)),
			))
		defer span.End()
		rec := recorderOf(w)
		next.ServeHTTP(rec, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status()))
		if org := infoOf(ctx).orgID; org != "" {
			span.SetAttributes(attribute.String("sentineldf.org_id", org))
		}
		if rec.status() >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status()))
		}
	})
}

// observe counts and times each request by route and status, and writes
// the access log.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorderOf(w)
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		info := infoOf(r.Context())
		status := rec.status()
		s.metrics.APIRequests.WithLabelValues(info.route, strconv.Itoa(status)).Inc()
		s.metrics.APILatency.WithLabelValues(info.route).Observe(elapsed.Seconds())
		ctx := r.Context()
		if info.orgID != "" {
			ctx = telemetry.WithOrgID(ctx, info.orgID)
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		// Never the query string: presigned URLs carry signatures there.
		s.log.Log(ctx, level, "request",
			"method", r.Method, "route", info.route, "path", r.URL.Path, "status", status,
			"latency_ms", float64(elapsed.Microseconds())/1000, "bytes", rec.bytes)
	})
}

// recover turns a panic into a logged 500 problem.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "panic", p, "route", routeOf(r), "stack", string(debug.Stack()))
			if !rec.wrote {
				s.writeError(rec, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// isBlobRoute reports whether route serves presigned blob URLs, whose
// bodies and durations are the blob handler's to bound.
func isBlobRoute(route string) bool { return route == blobRoute }

// bodyLimit caps the request body by route (see bodyLimitOf).
func (s *Server) bodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		if !isBlobRoute(route) && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.bodyLimitOf(route))
		}
		next.ServeHTTP(w, r)
	})
}

// timeout gives each API request a deadline.
func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isBlobRoute(routeOf(r)) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// securityHeaders sets headers every response carries: no sniffing, no
// framing, no referrer, and no caching of API responses.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recorder remembers a response's status and size.
type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
	wrote bool
}

// recorderOf returns w as a recorder, wrapping it unless it is one.
func recorderOf(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{ResponseWriter: w}
}

func (r *recorder) status() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.code
}

// WriteHeader records the status.
func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records the bytes written.
func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.code, r.wrote = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush flushes the underlying writer when it can.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
