package corpus

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSpoolRoundTrip writes rows, some longer than a read chunk, to spools
// that stay in memory and that spill (often) to disk, and reads them back
// twice.
func TestSpoolRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var rows []rowTokens
	for seq := range 300 {
		n := 1 + r.IntN(40)
		switch seq {
		case 7:
			n = 0
		case 100, 101:
			n = 60000 + r.IntN(1000) // about 1.4 MB: more than a read chunk
		}
		toks := make([]spooled, n)
		for i := range toks {
			st := r.Uint32N(1 << (1 + r.IntN(31)))
			toks[i] = spooled{h: r.Uint64(), field: r.Uint32N(1 << (1 + r.IntN(16))), start: st, end: st + r.Uint32N(300)}
		}
		rows = append(rows, rowTokens{seq: int64(seq) * int64(1+r.IntN(1000)), toks: toks})
	}
	for _, budget := range []int{1, 999, 1 << 20, 1 << 30} {
		s := tokenSpool{dir: t.TempDir(), budget: budget}
		for _, row := range rows {
			s.add(row.seq, row.toks)
		}
		if spilled := s.file != nil; spilled != (budget < 1<<30) {
			t.Errorf("budget %d: spilled %v", budget, spilled)
		}
		for pass := range 2 {
			i := 0
			err := s.each(func(got rowTokens) {
				if i >= len(rows) {
					t.Fatalf("budget %d pass %d: more rows than written", budget, pass)
				}
				if want := rows[i]; got.seq != want.seq || !slices.Equal(got.toks, want.toks) {
					t.Fatalf("budget %d pass %d: row %d differs", budget, pass, i)
				}
				i++
			})
			if err != nil || i != len(rows) {
				t.Fatalf("budget %d pass %d: %d of %d rows, err %v", budget, pass, i, len(rows), err)
			}
		}
		// eachWhile stops where fn says, in memory or in the file.
		for _, stop := range []int{0, 150, len(rows) - 1} {
			i := 0
			err := s.eachWhile(func(got rowTokens) bool {
				if i > stop || got.seq != rows[i].seq {
					t.Fatalf("budget %d stop %d: row %d is seq %d", budget, stop, i, got.seq)
				}
				i++
				return i <= stop
			})
			if err != nil || i != stop+1 {
				t.Fatalf("budget %d stop %d: %d rows, err %v", budget, stop, i, err)
			}
		}
		s.close()
	}
	// A truncated spool is an error, not a short read.
	s := tokenSpool{budget: 1 << 30}
	s.add(1, rows[1].toks)
	s.mem[0] = s.mem[0][:len(s.mem[0])-1]
	if err := s.each(func(rowTokens) {}); err == nil {
		t.Error("truncated spool: no error")
	}
}
