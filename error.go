package sentineldf

import (
	"errors"
	"fmt"
)

// Error codes are stable strings that clients may switch on. The HTTP layer
// maps each to one status in one place (api/problem.go).
const (
	ECONFLICT     = "conflict"           // the object exists or is in the wrong state
	EINTERNAL     = "internal"           // a bug or an unavailable dependency
	EINVALID      = "invalid"            // the request is malformed or fails validation
	ENOTFOUND     = "not_found"          // no such object in the caller's org
	EUNAUTHORIZED = "unauthorized"       // missing, malformed, unknown or revoked API key
	EFORBIDDEN    = "forbidden"          // the key lacks a scope
	ETOOLARGE     = "too_large"          // a body, upload or batch exceeds its limit
	ERATELIMITED  = "rate_limited"       // the per-key or per-org rate limit is exhausted
	EQUOTA        = "quota_exceeded"     // the org's monthly document quota is used up
	EIDEMPOTENCY  = "idempotency_reused" // an Idempotency-Key was reused with another body
	EUNAVAILABLE  = "unavailable"        // a dependency is down; retry later
)

// Error is a domain error: a stable Code, a Message safe to show to the
// client, and an optional wrapped cause that is logged but never shown.
type Error struct {
	Code    string
	Message string
	// Field names the offending request field or input location, when known.
	Field string
	Err   error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, msg, e.Err)
	}
	return e.Code + ": " + msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error naming field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the *Error's message,
// or a generic one for internal errors, whose details must not leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Field != "" {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return "internal error"
}

// NotFound returns an ENOTFOUND error for a kind of object ("scan", "key").
// Objects of other orgs are reported exactly like missing ones.
func NotFound(kind string) *Error {
	return &Error{Code: ENOTFOUND, Message: kind + " not found"}
}
