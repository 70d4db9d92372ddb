package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/telemetry"
)

// ProblemTypeBase prefixes a problem's type URI; the code follows it.
const ProblemTypeBase = "https://sentineldf.dev/problems/"

// Content types.
const (
	contentJSON    = "application/json"
	contentProblem = "application/problem+json"
)

// statusOf maps an error code to its HTTP status. It is the one place
// where codes become statuses.
func statusOf(code string) int {
	switch code {
	case sentineldf.ENOTFOUND:
		return http.StatusNotFound
	case sentineldf.EINVALID:
		return http.StatusBadRequest
	case sentineldf.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case sentineldf.EFORBIDDEN:
		return http.StatusForbidden
	case sentineldf.ECONFLICT:
		return http.StatusConflict
	case sentineldf.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case sentineldf.ERATELIMITED, sentineldf.EQUOTA:
		return http.StatusTooManyRequests
	case sentineldf.EIDEMPOTENCY:
		return http.StatusUnprocessableEntity
	case sentineldf.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// titles are the problems' short, fixed descriptions by code.
var titles = map[string]string{
	sentineldf.ENOTFOUND:     "Not found",
	sentineldf.EINVALID:      "Invalid request",
	sentineldf.EUNAUTHORIZED: "Unauthorized",
	sentineldf.EFORBIDDEN:    "Forbidden",
	sentineldf.ECONFLICT:     "Conflict",
	sentineldf.ETOOLARGE:     "Too large",
	sentineldf.ERATELIMITED:  "Rate limited",
	sentineldf.EQUOTA:        "Quota exceeded",
	sentineldf.EIDEMPOTENCY:  "Idempotency key reused",
	sentineldf.EUNAVAILABLE:  "Service unavailable",
	sentineldf.EINTERNAL:     "Internal error",
}

// problemOf returns the problem body of err. A context error that is not
// a domain error means the request ran out of time (or its client left).
func problemOf(ctx context.Context, err error, instance string) sentineldf.Problem {
	var de *sentineldf.Error
	if !errors.As(err, &de) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			de = sentineldf.Errorf(sentineldf.EUNAVAILABLE, "the request timed out; retry later")
		} else {
			de = &sentineldf.Error{Code: sentineldf.EINTERNAL, Message: "internal error"}
		}
	}
	code := de.Code
	if _, ok := titles[code]; !ok {
		code = sentineldf.EINTERNAL
	}
	detail := de.Message
	if code == sentineldf.EINTERNAL {
		detail = "internal error"
	} else if de.Field != "" {
		detail = de.Field + ": " + de.Message
	}
	return sentineldf.Problem{
		Type:      ProblemTypeBase + code,
		Title:     titles[code],
		Status:    statusOf(code),
		Detail:    detail,
		Code:      code,
		Field:     de.Field,
		RequestID: telemetry.RequestID(ctx),
		Instance:  instance,
	}
}

// writeError writes err as a problem. Internal errors are logged with
// their cause; the client sees only "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(r.Context(), err, r.URL.Path)
	switch {
	case p.Status >= 500 && p.Code == sentineldf.EINTERNAL:
		s.log.ErrorContext(r.Context(), "request failed", "error", err.Error(), "route", routeOf(r))
	case p.Status >= 500:
		s.log.WarnContext(r.Context(), "request unavailable", "error", err.Error(), "route", routeOf(r))
	}
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sentineldf"`)
	}
	body, _ := json.Marshal(p) // a Problem always encodes
	w.Header().Set("Content-Type", contentProblem)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	w.Write(body)
}

// writeJSON writes v as a JSON response with status.
// HTML characters are not escaped: results quote documents verbatim, as
// the results file does, and the content type and nosniff keep browsers
// from reading a response as HTML.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	body := buf.Bytes()
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// readBody reads a request body whole. A body over its limit (see
// bodyLimit) is ETOOLARGE.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, sentineldf.Errorf(sentineldf.ETOOLARGE, "request body exceeds %d bytes", mb.Limit)
		}
		return nil, sentineldf.Errorf(sentineldf.EINVALID, "reading request body: %v", err)
	}
	return b, nil
}

// decodeJSON reads the request body into v: one JSON object of known
// fields, UTF-8, within the body limit. Its errors name the problem and,
// where known, the field.
func decodeJSON(r *http.Request, v any) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshalBody(body, v)
}

// checkContentType accepts a JSON body's Content-Type, or none.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != contentJSON && !strings.HasSuffix(mt, "+json")) {
		return sentineldf.Errorf(sentineldf.EINVALID, "Content-Type must be application/json, not %q", ct)
	}
	return nil
}

// unmarshalBody decodes body into v (see decodeJSON).
func unmarshalBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return sentineldf.Errorf(sentineldf.EINVALID, "request body is empty; expected a JSON object")
	}
	if !utf8.Valid(body) {
		return sentineldf.Errorf(sentineldf.EINVALID, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON: unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON: unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a client-facing EINVALID error.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON: expected %s, got %s", typ.Type, typ.Value)
		}
		return sentineldf.FieldError(field, "expected %s, got JSON %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return sentineldf.FieldError(name, "unknown field")
	}
	return sentineldf.Errorf(sentineldf.EINVALID, "malformed JSON: %v", err)
}

// writeMethodNotAllowed answers a request whose path has routes, but not
// for its method: a 405 problem (code invalid) with the Allow header.
func (s *Server) writeMethodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	p := problemOf(r.Context(), sentineldf.Errorf(sentineldf.EINVALID, "%s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", ")), r.URL.Path)
	p.Status = http.StatusMethodNotAllowed
	p.Title = "Method not allowed"
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", contentProblem)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	w.Write(body)
}
