package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// openAPIDoc is the OpenAPI 3.1 document of the API, written by hand next
// to routes.go; a test keeps the two in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document served at /openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// openAPI is GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPIDoc)
}

// docsCSP lets the docs page use its inline style and nothing else: no
// scripts, no remote resources.
const docsCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docs is GET /docs: the endpoint reference rendered from the OpenAPI
// document, self-contained (it must work offline).
func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := renderDocs(&buf, openAPIDoc); err != nil {
		s.writeError(w, r, fmt.Errorf("render docs: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", docsCSP)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// docOperation is one endpoint of the docs page.
type docOperation struct {
	Method, Path, Summary, Description, Scope string
	Responses                                 []string
	Anchor                                    string
}

// docPage is the docs page's data.
type docPage struct {
	Title, Version, Description string
	Tags                        []docTag
}

type docTag struct {
	Name string
	Ops  []docOperation
}

// renderDocs renders spec (an OpenAPI document) as an HTML page. Every
// string from the document is escaped by html/template.
func renderDocs(w io.Writer, spec []byte) error {
	var doc struct {
		Info struct {
			Title       string `json:"title"`
			Version     string `json:"version"`
			Description string `json:"description"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			Summary     string                     `json:"summary"`
			Description string                     `json:"description"`
			Tags        []string                   `json:"tags"`
			Scope       string                     `json:"x-scope"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return fmt.Errorf("parse OpenAPI document: %w", err)
	}
	byTag := map[string][]docOperation{}
	var tags []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if !isHTTPMethod(method) {
				continue
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			if _, ok := byTag[tag]; !ok {
				tags = append(tags, tag)
			}
			var codes []string
			for c := range op.Responses {
				codes = append(codes, c)
			}
			slices.Sort(codes)
			m := strings.ToUpper(method)
			byTag[tag] = append(byTag[tag], docOperation{
				Method: m, Path: path, Summary: op.Summary, Description: op.Description,
				Scope: op.Scope, Responses: codes, Anchor: strings.ToLower(m) + strings.ReplaceAll(path, "/", "-"),
			})
		}
	}
	slices.Sort(tags)
	page := docPage{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	for _, t := range tags {
		ops := byTag[t]
		slices.SortFunc(ops, func(a, b docOperation) int {
			if c := strings.Compare(a.Path, b.Path); c != 0 {
				return c
			}
			return strings.Compare(a.Method, b.Method)
		})
		page.Tags = append(page.Tags, docTag{Name: t, Ops: ops})
	}
	return docsTemplate.Execute(w, page)
}

func isHTTPMethod(m string) bool {
	switch strings.ToUpper(m) {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330;line-height:1.5}
h1{margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:1px solid #d9dde5;text-transform:capitalize}
.op{border:1px solid #d9dde5;border-radius:6px;padding:.7rem 1rem;margin:.8rem 0}
.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:ui-monospace,monospace}
.GET{color:#1b6ac9}.POST{color:#1f8a4c}.DELETE{color:#b3261e}.PUT,.PATCH{color:#8a5a00}
code,.p{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.scope{float:right;font-size:.85rem;color:#5b6477}.desc{white-space:pre-line;margin:.4rem 0}
.codes{font-size:.85rem;color:#5b6477}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Version {{.Version}} · machine-readable: <a href="/openapi.json">/openapi.json</a></p>
<p class="desc">{{.Description}}</p>
<nav><ul>{{range .Tags}}<li><a href="#tag-{{.Name}}">{{.Name}}</a></li>{{end}}</ul></nav>
{{range .Tags}}
<h2 id="tag-{{.Name}}">{{.Name}}</h2>
{{range .Ops}}
<div class="op" id="{{.Anchor}}">
{{if .Scope}}<span class="scope">scope: <code>{{.Scope}}</code></span>{{end}}
<span class="m {{.Method}}">{{.Method}}</span> <span class="p">{{.Path}}</span>
<div><strong>{{.Summary}}</strong></div>
{{if .Description}}<div class="desc">{{.Description}}</div>{{end}}
<div class="codes">Responses: {{range $i, $c := .Responses}}{{if $i}}, {{end}}{{$c}}{{end}}</div>
</div>
{{end}}
{{end}}
</body>
</html>
`))
