package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/scan"
)

// recordStream reads the records of a scan's inputs in scan order, skipping
// malformed ones as the scan does (`train` reads its labelled data with it).
type recordStream struct {
	opts  dataset.Options
	files []dataset.File
	r     dataset.Reader
}

func newRecordStream(cfg scan.Config) (*recordStream, error) {
	files, err := dataset.Walk(cfg.Paths, cfg.Include, cfg.Exclude)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return &recordStream{opts: cfg.Dataset, files: files}, nil
}

// next returns the next well-formed record, or nil at the end.
func (s *recordStream) next() (*dataset.Record, error) {
	for {
		if s.r == nil {
			if len(s.files) == 0 {
				return nil, nil
			}
			r, err := dataset.Open(s.files[0], s.opts)
			if err != nil {
				return nil, fmt.Errorf("read labels: %w", err)
			}
			s.r, s.files = r, s.files[1:]
		}
		rec, err := s.r.Next()
		var me *dataset.MalformedError
		switch {
		case err == nil:
			return rec, nil
		case errors.As(err, &me):
			continue
		case err == io.EOF:
			err = s.r.Close()
			s.r = nil
			if err != nil {
				return nil, fmt.Errorf("read labels: %w", err)
			}
		default:
			return nil, fmt.Errorf("read labels: %w", err)
		}
	}
}

func (s *recordStream) close() {
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
}
