package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sentineldf/sentineldf"
)

const cloudTestKey = "sdf_live_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567"

// cloudFake is a small fake of the API: one async scan (scan_1) whose end
// state and counts are configurable, its uploads and result downloads, MBOM
// signing and key creation.
type cloudFake struct {
	srv    *httptest.Server
	state  string
	counts sentineldf.Counts

	mu       sync.Mutex
	files    []sentineldf.FileSpec
	uploaded map[int]bool
	signed   []sentineldf.SignMBOMRequest
}

var cloudOutputs = map[string]string{
	"results.jsonl":    `{"id":"a.jsonl:1","band":"clean"}` + "\n",
	"clean.jsonl":      `{"text":"a"}` + "\n",
	"quarantine.jsonl": "",
}

const cloudEnvelope = `{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`

func newCloudFake(t *testing.T, state string, counts sentineldf.Counts) *cloudFake {
	t.Helper()
	f := &cloudFake{state: state, counts: counts, uploaded: map[int]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func cloudProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(sentineldf.Problem{Status: status, Code: code, Detail: detail})
}

func cloudJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *cloudFake) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Request-Id", "req_test")
	body, _ := io.ReadAll(r.Body)
	presigned := strings.HasPrefix(r.URL.Path, "/upload/") || strings.HasPrefix(r.URL.Path, "/results/")
	if !presigned && r.Header.Get("Authorization") != "Bearer "+cloudTestKey {
		cloudProblem(w, 401, sentineldf.EUNAUTHORIZED, "unknown API key")
		return
	}
	if presigned && r.Header.Get("Authorization") != "" {
		cloudProblem(w, 400, sentineldf.EINVALID, "API key sent to a presigned URL")
		return
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/scan/async":
		var req sentineldf.AsyncScanRequest
		if err := json.Unmarshal(body, &req); err != nil {
			cloudProblem(w, 400, sentineldf.EINVALID, err.Error())
			return
		}
		f.files = req.Files
		resp := sentineldf.UploadsResponse{JobID: "scan_1"}
		for i, spec := range req.Files {
			resp.Uploads = append(resp.Uploads, sentineldf.Upload{Name: spec.Name, PresignedRequest: sentineldf.PresignedRequest{
				URL: f.srv.URL + "/upload/" + strconv.Itoa(i) + "?sig=secret", Method: "PUT",
			}})
		}
		cloudJSON(w, 201, resp)
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/upload/"):
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/upload/"))
		if err != nil || i >= len(f.files) {
			cloudProblem(w, 404, sentineldf.ENOTFOUND, "no such upload")
			return
		}
		sum := sha256.Sum256(body)
		if int64(len(body)) != f.files[i].Size || hex.EncodeToString(sum[:]) != f.files[i].SHA256 {
			cloudProblem(w, 400, sentineldf.EINVALID, "upload does not match its declared size and sha256")
			return
		}
		f.uploaded[i] = true
	case r.Method == "POST" && r.URL.Path == "/v1/scan/async/confirm":
		if len(f.uploaded) != len(f.files) {
			cloudProblem(w, 409, sentineldf.ECONFLICT, "files missing")
			return
		}
		cloudJSON(w, 202, sentineldf.ScanStatus{JobID: "scan_1", State: sentineldf.StateQueued})
	case r.Method == "GET" && r.URL.Path == "/v1/scan/status":
		if r.URL.Query().Get("job_id") != "scan_1" {
			cloudProblem(w, 404, sentineldf.ENOTFOUND, "scan not found")
			return
		}
		st := sentineldf.ScanStatus{JobID: "scan_1", State: f.state, Counts: f.counts, CacheHits: 2,
			Progress: sentineldf.Progress{DocsDone: f.counts.Total(), DocsTotal: f.counts.Total(), BytesDone: 2048, BytesTotal: 2048}}
		switch f.state {
		case sentineldf.StateSucceeded:
			st.Results = &sentineldf.ResultURLs{
				ResultsURL:    f.srv.URL + "/results/results.jsonl?sig=secret",
				CleanURL:      f.srv.URL + "/results/clean.jsonl?sig=secret",
				QuarantineURL: f.srv.URL + "/results/quarantine.jsonl?sig=secret",
			}
		case sentineldf.StateFailed:
			st.Error = "input a.jsonl is not valid gzip"
		}
		cloudJSON(w, 200, st)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/results/"):
		content, ok := cloudOutputs[strings.TrimPrefix(r.URL.Path, "/results/")]
		if !ok {
			cloudProblem(w, 404, sentineldf.ENOTFOUND, "no such object")
			return
		}
		io.WriteString(w, content)
	case r.Method == "POST" && r.URL.Path == "/v1/mbom":
		var req sentineldf.SignMBOMRequest
		json.Unmarshal(body, &req)
		f.signed = append(f.signed, req)
		cloudJSON(w, 201, sentineldf.SignMBOMResponse{MBOM: &sentineldf.MBOMRecord{ID: "mbom_1", ScanID: req.JobID}, Envelope: json.RawMessage(cloudEnvelope)})
	case r.Method == "POST" && r.URL.Path == "/v1/auth/keys":
		var req sentineldf.CreateKeyRequest
		json.Unmarshal(body, &req)
		cloudJSON(w, 201, sentineldf.CreateKeyResponse{Key: &sentineldf.APIKey{ID: "k2", Name: req.Name, Scopes: req.Scopes}, APIKey: "sdf_live_new_key"})
	default:
		cloudProblem(w, 404, sentineldf.ENOTFOUND, r.Method+" "+r.URL.Path)
	}
}

// cloudCLI runs `sentineldf cloud args...`.
func cloudCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"cloud"}, args...), strings.NewReader(""), &out, &errb)
	if strings.Contains(out.String()+errb.String(), cloudTestKey) {
		t.Errorf("the API key was printed:\n%s\n%s", out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

// cloudData writes a small directory to scan and returns it.
func cloudData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.jsonl":     `{"text":"a"}` + "\n",
		"sub/b.csv":   "text\nb\n",
		"notes.bin":   "\x00\x01", // not a dataset format: skipped, like `sentineldf scan`
		"sub/c.jsonl": "",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCloudMissingConfig(t *testing.T) {
	tests := []struct {
		name     string
		url, key string // environment
		args     []string
		want     []string
		dontWant []string
	}{
		{name: "no URL", key: cloudTestKey, args: []string{"usage"}, want: []string{"--api-url", envCloudURL}, dontWant: []string{envCloudKey}},
		{name: "no key", url: "http://127.0.0.1:1", args: []string{"status", "scan_1"}, want: []string{"--api-key", envCloudKey}, dontWant: []string{envCloudURL}},
		{name: "neither", args: []string{"scan", "."}, want: []string{"--api-url", envCloudURL, "--api-key", envCloudKey}},
		{name: "remote plain http", url: "http://api.example.com", key: cloudTestKey, args: []string{"usage"}, want: []string{"clear text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envCloudURL, tt.url)
			t.Setenv(envCloudKey, tt.key)
			code, _, errs := cloudCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q lacks %q", errs, w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(errs, w) {
					t.Errorf("stderr %q names %q, which is set", errs, w)
				}
			}
		})
	}
}

func TestCloudScan(t *testing.T) {
	data := cloudData(t)
	clean := sentineldf.Counts{Clean: 3}
	dirty := sentineldf.Counts{Clean: 2, Elevated: 1, Quarantine: 1}
	tests := []struct {
		name       string
		state      string
		counts     sentineldf.Counts
		args       []string
		wantCode   int
		wantStdout []string
		// wantFiles are the outputs written, by flag.
		wantFiles map[string]string
	}{
		{
			name: "table with outputs and MBOM", state: "succeeded", counts: dirty,
			args:       []string{"--out", "results.jsonl", "--clean-out", "clean.jsonl", "--mbom", "scan.mbom.json", "--approver", "me@example.com"},
			wantStdout: []string{"Job scan_1 succeeded: 4 documents (2.0 kB)", "Cache hits: 2", "quarantine", "25.0%"},
			wantFiles:  map[string]string{"results.jsonl": cloudOutputs["results.jsonl"], "clean.jsonl": cloudOutputs["clean.jsonl"], "scan.mbom.json": cloudEnvelope},
		},
		{
			name: "json", state: "succeeded", counts: clean, args: []string{"--format", "json"},
			wantStdout: []string{`"job_id": "scan_1"`, `"state": "succeeded"`, `"clean": 3`},
		},
		{
			name: "results to stdout", state: "succeeded", counts: clean, args: []string{"--out", "-"},
			wantStdout: []string{cloudOutputs["results.jsonl"]},
		},
		{
			name: "fail on quarantine", state: "succeeded", counts: dirty, args: []string{"--fail-on-quarantine", "--out", "results.jsonl"},
			wantCode: exitFinding, wantStdout: []string{"Job scan_1 succeeded"},
			wantFiles: map[string]string{"results.jsonl": cloudOutputs["results.jsonl"]},
		},
		{
			name: "nothing quarantined", state: "succeeded", counts: clean, args: []string{"--fail-on-quarantine"},
			wantStdout: []string{"Job scan_1 succeeded"},
		},
		{
			name: "scan failed", state: "failed", args: []string{"--out", "results.jsonl"},
			wantCode: exitFinding, wantStdout: []string{"Job scan_1 failed", "not valid gzip"},
		},
		{
			name: "no wait", state: "running", args: []string{"--no-wait"},
			wantStdout: []string{"scan_1\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newCloudFake(t, tt.state, tt.counts)
			t.Setenv(envCloudURL, "")
			t.Setenv(envCloudKey, cloudTestKey)
			out := t.TempDir()
			args := []string{"scan", data, "--api-url", fake.srv.URL, "--poll-interval", "1ms"}
			for _, a := range tt.args {
				if strings.HasSuffix(a, ".jsonl") || strings.HasSuffix(a, ".json") {
					a = filepath.Join(out, a)
				}
				args = append(args, a)
			}
			code, stdout, stderr := cloudCLI(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout+stderr, "sig=secret") {
				t.Errorf("a presigned URL was printed:\n%s\n%s", stdout, stderr)
			}
			for name, want := range tt.wantFiles {
				got, err := os.ReadFile(filepath.Join(out, name))
				if err != nil || string(got) != want {
					t.Errorf("%s: %q, %v; want %q", name, got, err, want)
				}
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != len(tt.wantFiles) {
				t.Errorf("wrote %d files, want %d (no temporary files left)", len(entries), len(tt.wantFiles))
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			var names []string
			for _, f := range fake.files {
				names = append(names, f.Name)
			}
			if want := []string{"a.jsonl", "sub/b.csv", "sub/c.jsonl"}; !slices.Equal(names, want) {
				t.Errorf("uploaded %q, want %q", names, want)
			}
			if tt.wantFiles["scan.mbom.json"] != "" && (len(fake.signed) != 1 || fake.signed[0] != sentineldf.SignMBOMRequest{JobID: "scan_1", ApprovedBy: "me@example.com"}) {
				t.Errorf("MBOM requests %+v", fake.signed)
			}
		})
	}
}

func TestCloudStatusJSON(t *testing.T) {
	fake := newCloudFake(t, "succeeded", sentineldf.Counts{Clean: 5, Quarantine: 1})
	t.Setenv(envCloudURL, fake.srv.URL)
	t.Setenv(envCloudKey, cloudTestKey)
	code, stdout, stderr := cloudCLI(t, "status", "scan_1", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var st sentineldf.ScanStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("stdout is not a status: %v\n%s", err, stdout)
	}
	if st.JobID != "scan_1" || st.State != "succeeded" || st.Counts.Quarantine != 1 || st.CacheHits != 2 {
		t.Errorf("status %+v", st)
	}
	if st.Results != nil {
		t.Errorf("the presigned result URLs were printed: %+v", st.Results)
	}

	code, stdout, _ = cloudCLI(t, "status", "scan_1")
	if code != exitOK || !strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, "quarantine 1") {
		t.Errorf("table status: exit %d\n%s", code, stdout)
	}
}

func TestCloudCommands(t *testing.T) {
	tests := []struct {
		name       string
		state      string
		key        string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "results", state: "succeeded", args: []string{"results", "scan_1", "--out", "-"}, wantStdout: cloudOutputs["results.jsonl"]},
		{name: "results of a running scan", state: "running", args: []string{"results", "scan_1", "--out", "-"}, wantCode: exitUsage, wantStderr: "scan scan_1 is running"},
		{name: "results of a failed scan", state: "failed", args: []string{"results", "scan_1", "--out", "-"}, wantCode: exitFinding, wantStderr: "scan scan_1 failed"},
		{name: "results with no output", state: "succeeded", args: []string{"results", "scan_1"}, wantCode: exitUsage, wantStderr: "--out"},
		{name: "unknown scan", state: "succeeded", args: []string{"status", "scan_2"}, wantCode: exitUsage, wantStderr: "not_found: scan not found (HTTP 404, request req_test)"},
		{name: "wrong key", state: "succeeded", key: "sdf_live_wrong", args: []string{"status", "scan_1"}, wantCode: exitUsage, wantStderr: "unauthorized"},
		{name: "keys create", state: "succeeded", args: []string{"keys", "create", "ci", "--scope", "scan:read"}, wantStdout: "sdf_live_new_key\n", wantStderr: "created key k2 \"ci\" (scopes scan:read)"},
		{name: "no wait with an output", state: "succeeded", args: []string{"scan", ".", "--no-wait", "--out", "x"}, wantCode: exitUsage, wantStderr: "--no-wait"},
		{name: "mbom without approver", state: "succeeded", args: []string{"scan", ".", "--mbom", "x"}, wantCode: exitUsage, wantStderr: "--approver"},
		{name: "bad format", state: "succeeded", args: []string{"usage", "--format", "xml"}, wantCode: exitUsage, wantStderr: "--format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newCloudFake(t, tt.state, sentineldf.Counts{Clean: 1})
			key := tt.key
			if key == "" {
				key = cloudTestKey
			}
			t.Setenv(envCloudURL, fake.srv.URL)
			t.Setenv(envCloudKey, key)
			code, stdout, stderr := cloudCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
			if strings.Contains(stderr, key) {
				t.Errorf("stderr shows the key: %q", stderr)
			}
		})
	}
}
