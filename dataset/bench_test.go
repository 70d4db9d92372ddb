package dataset

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

var benchWords = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all we their has would when if so what can more about out other
into some time could them only than may then first any new like these also over people data model training
"quoted" value's example, results. however; because (see) language learning system information work`)

// benchDocs returns n English-like documents of about size bytes.
func benchDocs(n, size int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	docs := make([]string, n)
	var b strings.Builder
	for i := range docs {
		b.Reset()
		for b.Len() < size {
			b.WriteString(benchWords[rng.IntN(len(benchWords))])
			if rng.IntN(15) == 0 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		docs[i] = b.String()
	}
	return docs
}

func benchRead(b *testing.B, f File, opts Options) {
	b.SetBytes(f.Size)
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() {
		if cpu := cpuTime() - cpu0; cpu > 0 {
			b.ReportMetric(float64(f.Size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
		}
	}()
	for b.Loop() {
		r, err := Open(f, opts)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

func BenchmarkJSONL(b *testing.B) {
	var sb strings.Builder
	for i, d := range benchDocs(2000, 3400) {
		fmt.Fprintf(&sb, `{"id":"doc-%d","text":%q,"label":"benign","source":"web"}`+"\n", i, d)
	}
	f := writeFile(b, b.TempDir(), "bench.jsonl", []byte(sb.String()))
	b.Run("auto", func(b *testing.B) { benchRead(b, f, Options{}) })
	b.Run("text-field", func(b *testing.B) {
		benchRead(b, f, Options{TextFields: []string{"text"}, KeepFields: []string{"label"}})
	})
}

func BenchmarkJSONLChat(b *testing.B) {
	var sb strings.Builder
	docs := benchDocs(2000, 1700)
	for i := 0; i+1 < len(docs); i += 2 {
		fmt.Fprintf(&sb, `{"id":%d,"messages":[{"role":"user","content":%q},{"role":"assistant","content":%q}]}`+"\n", i, docs[i], docs[i+1])
	}
	f := writeFile(b, b.TempDir(), "chat.jsonl", []byte(sb.String()))
	benchRead(b, f, Options{})
}

func BenchmarkCSV(b *testing.B) {
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	w.Write([]string{"id", "text", "label"})
	for i, d := range benchDocs(2000, 3400) {
		w.Write([]string{fmt.Sprint(i), d, "benign"})
	}
	w.Flush()
	f := writeFile(b, b.TempDir(), "bench.csv", []byte(sb.String()))
	benchRead(b, f, Options{})
}

func BenchmarkJSONArray(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[\n")
	for i, d := range benchDocs(2000, 3400) {
		if i > 0 {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, `{"id":"doc-%d","text":%q}`, i, d)
	}
	sb.WriteString("\n]\n")
	f := writeFile(b, b.TempDir(), "bench.json", []byte(sb.String()))
	benchRead(b, f, Options{})
}
