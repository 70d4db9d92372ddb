package detect

import "testing"

func TestP1Dbg(t *testing.T) {
	s := "word similarlyNow word word tableView word word DJstructor word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word"
	_, want := advTokens(s, nil, false)
	t.Log(want, advMaySalad(s), len(s))
}
