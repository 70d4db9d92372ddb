package scan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// words is a small vocabulary of ordinary English for generated benign text.
var words = strings.Fields(`the of and to in a is that for it as was with be by on not he this are or his
from at which but have an they you were her she there been one all we their has would when if so no will
more can about other into some could them than time only new these people two may first any like over
such our most also after years many where just those very through back much before how good well way
even because made should each well work life day world used state same year between city found school
both under small great house during water part against without long home since later number another
country while group system public family following place around although however several early local
government river known often high still large old different right area using called company including
history around form music water light season garden weather market morning village recipe kitchen
university research students teacher library museum travel station island mountain valley forest coast
harbour bridge council community festival season winter summer autumn spring vegetables bread butter
coffee tomatoes onions cheese simple recipe minutes oven heat bake flour sugar salt pepper fresh
software computer network battery screen update version feature design engineer project team meeting
report customer service product price quality delivery order online store review article chapter book
author story novel character film series episode album song artist band concert performance stage
players match league season goal coach training injury victory record championship football tennis`)

// genDoc returns a deterministic English-like document of about size bytes:
// paragraphs of sentences drawn from words.
func genDoc(r *rand.Rand, size int) string {
	var b strings.Builder
	b.Grow(size + 128)
	for b.Len() < size {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		sentences := 3 + r.IntN(5)
		for s := range sentences {
			if s > 0 {
				b.WriteByte(' ')
			}
			n := 6 + r.IntN(14)
			for i := range n {
				w := words[r.IntN(len(words))]
				if i == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				} else {
					b.WriteByte(' ')
				}
				b.WriteString(w)
				if i > 1 && i < n-2 && r.IntN(12) == 0 {
					b.WriteByte(',')
				}
			}
			b.WriteByte('.')
		}
	}
	return b.String()
}

// genJSONL writes n documents of about size bytes each as JSONL records
// {"id","text","url"} and returns the bytes written.
func genJSONL(w io.Writer, seed uint64, n, size int) (int64, error) {
	r := rand.New(rand.NewPCG(seed, 0x5e17))
	bw := bufio.NewWriterSize(w, 1<<20)
	var total int64
	for i := range n {
		rec := struct {
			ID   string `json:"id"`
			Text string `json:"text"`
			URL  string `json:"url"`
		}{fmt.Sprintf("doc-%07d", i), genDoc(r, size), fmt.Sprintf("https://example.org/page/%d", i)}
		line, err := json.Marshal(rec)
		if err != nil {
			return total, err
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return total, err
		}
		total += int64(len(line))
	}
	return total, bw.Flush()
}
