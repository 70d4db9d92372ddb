package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/telemetry"
)

// Scan listing limits.
const (
	defaultScansPage = 20
	maxScansPage     = 100
)

// MaxCallbackURLLen is the longest accepted callback URL.
const MaxCallbackURLLen = 2048

// Priorities of AsyncScanRequest.
const (
	PriorityHigh   = "high"
	PriorityNormal = "normal"
	PriorityLow    = "low"
)

// lowestPriority is River's last priority.
const lowestPriority = 4

// createUploads is POST /v1/uploads: a scan awaiting upload, at the
// plan's priority, and a presigned upload URL per file.
func (s *Server) createUploads(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.UploadsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	plan, err := s.plan(p.Plan)
	if err != nil {
		return err
	}
	resp, err := s.createScan(r.Context(), p, req.Files, plan.Priority, "")
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, resp)
	return nil
}

// asyncScan is POST /v1/scan/async: createUploads with a priority and a
// callback URL.
func (s *Server) asyncScan(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.AsyncScanRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	plan, err := s.plan(p.Plan)
	if err != nil {
		return err
	}
	prio, err := priorityOf(req.Priority, plan)
	if err != nil {
		return err
	}
	if req.CallbackURL != "" {
		if err := validateCallbackURL(req.CallbackURL); err != nil {
			return err
		}
	}
	resp, err := s.createScan(r.Context(), p, req.Files, prio, req.CallbackURL)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, resp)
	return nil
}

// priorityOf maps a requested priority onto the plan's: the plan's
// priority is the best a scan can have, "low" lowers it by one, and
// nothing raises it.
func priorityOf(req string, plan sentineldf.Plan) (int, error) {
	base := min(max(plan.Priority, 1), lowestPriority)
	switch req {
	case "", PriorityHigh, PriorityNormal:
		return base, nil
	case PriorityLow:
		return min(base+1, lowestPriority), nil
	}
	return 0, sentineldf.FieldError("priority", "must be %q, %q or %q", PriorityHigh, PriorityNormal, PriorityLow)
}

// validateCallbackURL checks a callback URL: absolute http(s), a host, no
// user info, at most MaxCallbackURLLen bytes. (Where it may point is the
// callback sender's check, made when it resolves the host.)
func validateCallbackURL(raw string) error {
	if len(raw) > MaxCallbackURLLen {
		return sentineldf.FieldError("callback_url", "must be at most %d bytes", MaxCallbackURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return sentineldf.FieldError("callback_url", "is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return sentineldf.FieldError("callback_url", "must be an absolute http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return sentineldf.FieldError("callback_url", "must name a host")
	case u.User != nil:
		return sentineldf.FieldError("callback_url", "must not contain user info")
	case u.Fragment != "":
		return sentineldf.FieldError("callback_url", "must not contain a fragment")
	}
	return nil
}

// validateFiles checks the files of a scan; errors name the field with
// its index ("files[2].size").
func validateFiles(files []sentineldf.FileSpec) error {
	if len(files) == 0 {
		return sentineldf.FieldError("files", "must list 1 to %d files", sentineldf.MaxFilesPerScan)
	}
	if len(files) > sentineldf.MaxFilesPerScan {
		return &sentineldf.Error{Code: sentineldf.ETOOLARGE, Field: "files", Message: fmt.Sprintf("a scan has at most %d files, not %d", sentineldf.MaxFilesPerScan, len(files))}
	}
	seen := make(map[string]int, len(files))
	for i, f := range files {
		field := fmt.Sprintf("files[%d]", i)
		if err := sentineldf.ValidateFileName(f.Name); err != nil {
			msg := sentineldf.ErrorMessage(err)
			msg = strings.TrimPrefix(msg, "files.name: ")
			return sentineldf.FieldError(field+".name", "%s", msg)
		}
		if j, dup := seen[f.Name]; dup {
			return sentineldf.FieldError(field+".name", "%q is also files[%d]: names must be unique", f.Name, j)
		}
		seen[f.Name] = i
		if f.Size <= 0 {
			return sentineldf.FieldError(field+".size", "must be at least 1 byte")
		}
		if f.Size > sentineldf.MaxUploadBytes {
			return &sentineldf.Error{Code: sentineldf.ETOOLARGE, Field: field + ".size", Message: fmt.Sprintf("must be at most %d bytes", int64(sentineldf.MaxUploadBytes))}
		}
		if f.SHA256 != "" && !isLowerHex64(f.SHA256) {
			return sentineldf.FieldError(field+".sha256", "must be 64 lowercase hex characters")
		}
	}
	return nil
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// createScan validates files, presigns their uploads and stores the scan
// awaiting upload.
func (s *Server) createScan(ctx context.Context, p *principal, files []sentineldf.FileSpec, priority int, callback string) (*sentineldf.UploadsResponse, error) {
	if err := validateFiles(files); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	sc := &sentineldf.Scan{
		ID: sentineldf.NewID("scan"), OrgID: p.OrgID, State: sentineldf.StateAwaitingUpload,
		Priority: priority, CallbackURL: callback, Files: make([]sentineldf.ScanFile, len(files)),
		CreatedBy: p.KeyID, Trace: telemetry.Inject(ctx), CreatedAt: now, UpdatedAt: now,
	}
	resp := &sentineldf.UploadsResponse{JobID: sc.ID, Uploads: make([]sentineldf.Upload, len(files))}
	for i, f := range files {
		sc.Files[i] = sentineldf.ScanFile{Index: i, Name: f.Name, Size: f.Size, SHA256: f.SHA256}
		key := sentineldf.InputKey(p.OrgID, sc.ID, i, f.Name)
		req, err := s.cfg.Blobs.PresignPut(ctx, key, sentineldf.PutConstraints{Size: f.Size, SHA256: f.SHA256}, sentineldf.DefaultPresignTTL)
		if err != nil {
			return nil, fmt.Errorf("presign upload of files[%d]: %w", i, err)
		}
		resp.Uploads[i] = sentineldf.Upload{Name: f.Name, PresignedRequest: req}
	}
	if err := s.cfg.Store.CreateScan(ctx, sc); err != nil {
		return nil, fmt.Errorf("create scan: %w", err)
	}
	return resp, nil
}

// jobID returns the required job_id query parameter.
func jobID(r *http.Request) (string, error) {
	id := r.URL.Query().Get("job_id")
	if id == "" {
		return "", sentineldf.FieldError("job_id", "is required")
	}
	if len(id) > 128 {
		// No scan has such an id; say so without a store round trip.
		return "", sentineldf.NotFound("scan")
	}
	return id, nil
}

// confirmScan is POST /v1/scan/async/confirm?job_id=: every file must be
// uploaded with its declared size, and the org must have quota left.
func (s *Server) confirmScan(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	sc, err := s.cfg.Store.Scan(ctx, p.OrgID, id)
	if err != nil {
		return fmt.Errorf("read scan: %w", err)
	}
	if sc.State != sentineldf.StateAwaitingUpload {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "scan %s is %s, not awaiting upload", sc.ID, sc.State)
	}
	for _, f := range sc.Files {
		field := fmt.Sprintf("files[%d]", f.Index)
		info, err := s.cfg.Blobs.Stat(ctx, sentineldf.InputKey(p.OrgID, sc.ID, f.Index, f.Name))
		if err != nil {
			if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
				return sentineldf.FieldError(field, "%s (%s) was not uploaded", field, f.Name)
			}
			return fmt.Errorf("stat %s: %w", field, err)
		}
		if info.Size != f.Size {
			return sentineldf.FieldError(field, "%s (%s) is %d bytes, not the declared %d", field, f.Name, info.Size, f.Size)
		}
	}
	remaining, limited, err := s.quotaRemaining(ctx, p)
	if err != nil {
		return err
	}
	if limited && remaining <= 0 {
		return s.quotaExceeded("the monthly document quota is used up")
	}
	sc, err = s.cfg.Store.ConfirmScan(ctx, p.OrgID, sc.ID, sc.Priority)
	if err != nil {
		return fmt.Errorf("confirm scan: %w", err)
	}
	s.writeJSON(w, r, http.StatusAccepted, s.statusOf(sc))
	return nil
}

// scanStatus is GET /v1/scan/status?job_id=, with presigned result URLs
// once the scan succeeded.
func (s *Server) scanStatus(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := jobID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	sc, err := s.cfg.Store.Scan(ctx, p.OrgID, id)
	if err != nil {
		return fmt.Errorf("read scan: %w", err)
	}
	st := s.statusOf(sc)
	if sc.State == sentineldf.StateSucceeded {
		if st.Results, err = s.resultURLs(ctx, sc); err != nil {
			return err
		}
	}
	s.writeJSON(w, r, http.StatusOK, st)
	return nil
}

// resultURLs presigns downloads of a succeeded scan's outputs (the worker
// writes every one of them) and of its latest MBOM, if signed.
func (s *Server) resultURLs(ctx context.Context, sc *sentineldf.Scan) (*sentineldf.ResultURLs, error) {
	get := func(key string) (string, error) {
		req, err := s.cfg.Blobs.PresignGet(ctx, key, sentineldf.DefaultPresignTTL)
		if err != nil {
			return "", fmt.Errorf("presign %s: %w", key, err)
		}
		return req.URL, nil
	}
	res := &sentineldf.ResultURLs{}
	for _, o := range []struct {
		object string
		dst    *string
	}{
		{sentineldf.ResultsObject, &res.ResultsURL},
		{sentineldf.CleanObject, &res.CleanURL},
		{sentineldf.QuarantineObject, &res.QuarantineURL},
		{sentineldf.SummaryObject, &res.SummaryURL},
		{sentineldf.MalformedObject, &res.MalformedURL},
	} {
		u, err := get(sentineldf.ResultKey(sc.OrgID, sc.ID, o.object))
		if err != nil {
			return nil, err
		}
		*o.dst = u
	}
	mboms, err := s.cfg.Store.MBOMs(ctx, sc.OrgID, sc.ID)
	if err != nil {
		return nil, fmt.Errorf("list MBOMs: %w", err)
	}
	if len(mboms) > 0 {
		latest := mboms[len(mboms)-1]
		key := latest.ObjectKey
		if key == "" {
			key = sentineldf.ResultKey(sc.OrgID, sc.ID, sentineldf.MBOMObject)
		}
		if res.MBOMURL, err = get(key); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// listScans is GET /v1/scans?limit=&cursor=.
func (s *Server) listScans(w http.ResponseWriter, r *http.Request, p *principal) error {
	limit, err := intParam(r, "limit", defaultScansPage, 1, maxScansPage)
	if err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > 512 {
		return sentineldf.FieldError("cursor", "is not a cursor this API returned")
	}
	scans, next, err := s.cfg.Store.Scans(r.Context(), p.OrgID, cursor, limit)
	if err != nil {
		return fmt.Errorf("list scans: %w", err)
	}
	resp := sentineldf.ScansResponse{Scans: make([]sentineldf.ScanStatus, len(scans)), NextCursor: next}
	for i, sc := range scans {
		resp.Scans[i] = s.statusOf(sc)
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// cancelScan is POST /v1/scans/{id}/cancel.
func (s *Server) cancelScan(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	id := r.PathValue("id")
	ev := sentineldf.AuditEvent{
		OrgID: p.OrgID, Action: sentineldf.AuditScanCanceled, Actor: p.KeyID, Target: id,
		RequestID: infoOf(ctx).id, At: s.now().UTC(),
	}
	sc, err := s.cfg.Store.CancelScan(ctx, p.OrgID, id, ev)
	if err != nil {
		return fmt.Errorf("cancel scan: %w", err)
	}
	s.writeJSON(w, r, http.StatusOK, s.statusOf(sc))
	return nil
}

// statusOf is the wire form of a scan (without result URLs).
func (s *Server) statusOf(sc *sentineldf.Scan) sentineldf.ScanStatus {
	return sentineldf.ScanStatus{
		JobID: sc.ID, State: sc.State, Progress: sc.Progress, Counts: sc.Counts,
		Malformed: sc.Malformed, CacheHits: sc.CacheHits, Error: sc.Error, Files: sc.Files,
		CreatedAt: sc.CreatedAt, FinishedAt: sc.FinishedAt,
	}
}
