package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/scan"
)

// ResultCacheTTL is how long a scanned document's result stays cached.
const ResultCacheTTL = 24 * time.Hour

// maxDocumentIDLen caps a document id of a synchronous scan.
const maxDocumentIDLen = 1024

// SyncField is the field name under which a synchronous scan's text is
// scanned (findings name it).
const SyncField = "text"

// syncScan is POST /v1/scan: documents scanned in the request, in
// parallel, through the org's result cache; results in request order.
func (s *Server) syncScan(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, err := decodeSyncRequest(r)
	if err != nil {
		return err
	}
	total, err := validateDocuments(req.Documents)
	if err != nil {
		return err
	}
	ctx := r.Context()
	n := int64(len(req.Documents))
	remaining, limited, err := s.quotaRemaining(ctx, p)
	if err != nil {
		return err
	}
	if limited && n > remaining {
		return s.quotaExceeded("this request has %d documents and %d remain in this month's quota", n, remaining)
	}

	results, hits, err := s.scanDocuments(ctx, p.OrgID, req.Documents)
	if err != nil {
		return err
	}
	usageKey := "sync:" + infoOf(ctx).id
	if infoOf(ctx).clientID {
		// A client chose the request id: it must not be able to make two
		// requests count as one.
		usageKey += ":" + sentineldf.NewID("run")
	}
	if _, err := s.cfg.Store.RecordUsage(ctx, sentineldf.UsageRecord{
		OrgID: p.OrgID, Key: usageKey, Docs: n, Bytes: total, At: s.now().UTC(),
	}); err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	s.metrics.DocumentsScanned.WithLabelValues("sync").Add(float64(n))
	s.metrics.BytesScanned.WithLabelValues("sync").Add(float64(total))
	s.metrics.CacheLookup(int(hits), int(n-hits))

	info := s.cfg.Engine.Info()
	resp := sentineldf.SyncScanResponse{
		Results: make([]json.RawMessage, len(results)),
		Summary: sentineldf.SyncSummary{Documents: n, CacheHits: hits, Engine: info.Engine, Ruleset: info.RulesetVersion},
	}
	for i := range results {
		res := &results[i]
		line := scan.NewLine(req.Documents[i].ID, "request:"+strconv.Itoa(i+1), res)
		b, err := scan.MarshalLine(&line)
		if err != nil {
			return fmt.Errorf("encode result of documents[%d]: %w", i, err)
		}
		resp.Results[i] = b
		switch res.Band {
		case detect.BandClean:
			resp.Summary.Counts.Clean++
		case detect.BandElevated:
			resp.Summary.Counts.Elevated++
		case detect.BandQuarantine:
			resp.Summary.Counts.Quarantine++
		}
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// decodeSyncRequest decodes POST /v1/scan's body. Text that is not UTF-8
// is refused naming the document, never silently replaced.
func decodeSyncRequest(r *http.Request) (*sentineldf.SyncScanRequest, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		var raw struct {
			Documents []struct {
				ID   json.RawMessage `json:"id"`
				Text json.RawMessage `json:"text"`
			} `json:"documents"`
		}
		if json.Unmarshal(body, &raw) == nil {
			for i, d := range raw.Documents {
				if !utf8.Valid(d.ID) {
					return nil, sentineldf.FieldError(fmt.Sprintf("documents[%d].id", i), "is not valid UTF-8")
				}
				if !utf8.Valid(d.Text) {
					return nil, sentineldf.FieldError(fmt.Sprintf("documents[%d].text", i), "is not valid UTF-8")
				}
			}
		}
	}
	var req sentineldf.SyncScanRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// validateDocuments checks a synchronous scan's documents and returns
// their total text size.
func validateDocuments(docs []sentineldf.ScanDocument) (int64, error) {
	if len(docs) == 0 {
		return 0, sentineldf.FieldError("documents", "must hold 1 to %d documents", sentineldf.MaxSyncDocuments)
	}
	if len(docs) > sentineldf.MaxSyncDocuments {
		return 0, &sentineldf.Error{Code: sentineldf.ETOOLARGE, Field: "documents", Message: fmt.Sprintf("a synchronous scan has at most %d documents, not %d; use POST /v1/scan/async", sentineldf.MaxSyncDocuments, len(docs))}
	}
	var total int64
	seen := make(map[string]int, len(docs))
	for i, d := range docs {
		field := fmt.Sprintf("documents[%d].id", i)
		switch {
		case d.ID == "":
			return 0, sentineldf.FieldError(field, "is required")
		case len(d.ID) > maxDocumentIDLen:
			return 0, sentineldf.FieldError(field, "must be at most %d bytes", maxDocumentIDLen)
		}
		if j, dup := seen[d.ID]; dup {
			return 0, sentineldf.FieldError(field, "%q is also documents[%d].id: ids must be unique", d.ID, j)
		}
		seen[d.ID] = i
		total += int64(len(d.Text))
	}
	if total > sentineldf.MaxSyncBytes {
		return 0, &sentineldf.Error{Code: sentineldf.ETOOLARGE, Field: "documents", Message: fmt.Sprintf("the documents' text is %d bytes; a synchronous scan takes at most %d; use POST /v1/scan/async", total, sentineldf.MaxSyncBytes)}
	}
	return total, nil
}

// scanDocuments scans docs on up to GOMAXPROCS goroutines through the
// org's result cache and returns the results in order and the cache hits.
func (s *Server) scanDocuments(ctx context.Context, orgID string, docs []sentineldf.ScanDocument) ([]detect.Result, int64, error) {
	rc := scan.NewKVResultCache(ctx, s.cfg.Cache, "org:"+orgID+":result:", ResultCacheTTL)
	rc.OnError = func(error) { s.metrics.DependencyErrors.WithLabelValues("cache").Inc() }
	eng := s.cfg.Engine
	results := make([]detect.Result, len(docs))
	var next, hits atomic.Int64
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	scanOne := func(i int) {
		defer func() {
			if p := recover(); p != nil {
				fail(fmt.Errorf("scan documents[%d]: panic: %v", i, p))
			}
		}()
		doc := detect.Document{ID: docs[i].ID, Fields: []detect.Field{{Name: SyncField, Text: docs[i].Text}}}
		key := eng.CacheKey(doc)
		if res, ok := rc.Get(key); ok {
			results[i] = res
			hits.Add(1)
			return
		}
		results[i] = eng.Scan(doc)
		_ = rc.Put(key, &results[i]) // a failed Put costs speed only (counted by OnError)
	}
	workers := min(runtime.GOMAXPROCS(0), len(docs))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(docs) || ctx.Err() != nil {
					return
				}
				scanOne(i)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("scan documents: %w", err)
	}
	return results, hits.Load(), nil
}
