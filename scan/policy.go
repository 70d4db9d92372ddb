package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

// Policy is a scan configuration file (the CLI's --config), in YAML:
//
//	thresholds:            # risk (0–100) at which each band starts
//	  elevated: 50
//	  quarantine: 70
//	rules:
//	  disable: [html_js, secrets, injection.ignore_previous.en]  # rule ids, categories or detectors
//	allowlist:             # suppress matching findings
//	  - rules: [secret.generic_api_key]
//	    pattern: 'EXAMPLE|dummy'
//	text_fields: [instruction, input, output]
//	id_field: uid
//	split: file            # text files: file | lines
//	format: jsonl          # force the input format
//	include: ["**/*.jsonl"]
//	exclude: ["**/eval/**"]
//	workers: 8
//	max_record_bytes: 16777216
//
// Every key is optional; an unknown key is an error that names it.
type Policy struct {
	Thresholds     PolicyThresholds    `yaml:"thresholds"`
	Rules          PolicyRules         `yaml:"rules"`
	Allowlist      []detect.AllowEntry `yaml:"allowlist"`
	TextFields     []string            `yaml:"text_fields"`
	IDField        string              `yaml:"id_field"`
	Split          string              `yaml:"split"`
	Format         string              `yaml:"format"`
	Include        []string            `yaml:"include"`
	Exclude        []string            `yaml:"exclude"`
	Workers        int                 `yaml:"workers"`
	MaxRecordBytes int                 `yaml:"max_record_bytes"`
}

// PolicyThresholds are the thresholds of a policy; a nil one keeps the
// default.
type PolicyThresholds struct {
	Elevated   *int `yaml:"elevated"`
	Quarantine *int `yaml:"quarantine"`
}

// PolicyRules switch rules off.
type PolicyRules struct {
	// Disable lists rule ids, categories or detector names.
	Disable []string `yaml:"disable"`
}

// policySchema lists the keys a policy may have: a nested map for a mapping,
// a one-element slice for a sequence of mappings, nil for a scalar or a
// sequence of scalars.
var policySchema = map[string]any{
	"thresholds":  map[string]any{"elevated": nil, "quarantine": nil},
	"rules":       map[string]any{"disable": nil},
	"allowlist":   []any{map[string]any{"rules": nil, "pattern": nil}},
	"text_fields": nil, "id_field": nil, "split": nil, "format": nil,
	"include": nil, "exclude": nil, "workers": nil, "max_record_bytes": nil,
}

// ParsePolicy parses and validates a policy. name prefixes error messages,
// which carry the line of the offending key or value.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &Policy{}, nil // an empty file is the default policy
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return &Policy{}, nil
	}
	if err := checkKeys(name, doc, policySchema, ""); err != nil {
		return nil, err
	}
	var p Policy
	if err := doc.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := p.validate(name, doc); err != nil {
		return nil, err
	}
	return &p, nil
}

// checkKeys walks n against schema and fails on the first unknown key.
func checkKeys(name string, n *yaml.Node, schema map[string]any, path string) error {
	if n.Kind != yaml.MappingNode {
		where := "the top level"
		if path != "" {
			where = path
		}
		return fmt.Errorf("%s:%d: %s must be a mapping of keys", name, n.Line, where)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub, ok := schema[k.Value]
		if !ok {
			known := slices.Sorted(maps.Keys(schema))
			in := ""
			if path != "" {
				in = " in " + path
			}
			return fmt.Errorf("%s:%d: unknown key %q%s (known keys: %s)", name, k.Line, k.Value, in, strings.Join(known, ", "))
		}
		full := k.Value
		if path != "" {
			full = path + "." + k.Value
		}
		switch sub := sub.(type) {
		case map[string]any:
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if err := checkKeys(name, v, sub, full); err != nil {
				return err
			}
		case []any:
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s:%d: %s must be a list", name, v.Line, full)
			}
			for j, e := range v.Content {
				if err := checkKeys(name, e, sub[0].(map[string]any), fmt.Sprintf("%s[%d]", full, j)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// valueOf returns the value of key in the mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// line returns the line of the value of key in the mapping n, or of n when
// it has no such key.
func line(n *yaml.Node, key string) int {
	if v := valueOf(n, key); v != nil {
		return v.Line
	}
	return n.Line
}

func (p *Policy) validate(name string, doc *yaml.Node) error {
	th := p.ApplyThresholds(detect.DefaultThresholds)
	if err := th.Validate(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, line(doc, "thresholds"), err)
	}
	switch p.Split {
	case "", "file", "lines":
	default:
		return fmt.Errorf("%s:%d: split: %q is not file or lines", name, line(doc, "split"), p.Split)
	}
	if p.Format != "" {
		if _, err := ParseFormat(p.Format); err != nil {
			return fmt.Errorf("%s:%d: format: %w", name, line(doc, "format"), err)
		}
	}
	if p.Workers < 0 {
		return fmt.Errorf("%s:%d: workers: must not be negative", name, line(doc, "workers"))
	}
	if p.MaxRecordBytes < 0 {
		return fmt.Errorf("%s:%d: max_record_bytes: must not be negative", name, line(doc, "max_record_bytes"))
	}
	for i, a := range p.Allowlist {
		if _, err := regexp.Compile(a.Pattern); err != nil {
			n := line(doc, "allowlist")
			if seq := valueOf(doc, "allowlist"); seq != nil && i < len(seq.Content) {
				n = line(seq.Content[i], "pattern")
			}
			return fmt.Errorf("%s:%d: allowlist entry %d: pattern: %w", name, n, i+1, err)
		}
	}
	return nil
}

// ApplyThresholds returns t with the policy's thresholds set over it.
func (p *Policy) ApplyThresholds(t detect.Thresholds) detect.Thresholds {
	if p.Thresholds.Elevated != nil {
		t.Elevated = *p.Thresholds.Elevated
	}
	if p.Thresholds.Quarantine != nil {
		t.Quarantine = *p.Thresholds.Quarantine
	}
	return t
}

// ParseFormat validates a format name (as --format-in takes it).
func ParseFormat(s string) (dataset.Format, error) {
	f := dataset.Format(strings.ToLower(s))
	switch f {
	case dataset.FormatJSONL, dataset.FormatJSON, dataset.FormatCSV, dataset.FormatTSV, dataset.FormatParquet, dataset.FormatText:
		return f, nil
	case "ndjson":
		return dataset.FormatJSONL, nil
	}
	return "", fmt.Errorf("unknown format %q (want jsonl, json, csv, tsv, parquet or text)", s)
}
