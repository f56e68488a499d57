package testenv

import (
	"encoding/json"
	"fmt"
	"testing"
)

// WholeReads lists the nodes of an EXPLAIN (FORMAT JSON) answer that read a whole relation
// instead of probing an index for the rows at hand: sequential and bitmap heap scans, and
// index scans without an index condition (an ordered walk of a whole index, or the hashed
// subplan an EXISTS may become). Each is described as "<node> on <relation>".
func WholeReads(t testing.TB, plan string) []string {
	t.Helper()
	type node struct {
		Type     string `json:"Node Type"`
		Relation string `json:"Relation Name"`
		Index    string `json:"Index Name"`
		Cond     string `json:"Index Cond"`
		Plans    []node `json:"Plans"`
	}
	var doc []struct{ Plan node }
	if err := json.Unmarshal([]byte(plan), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("EXPLAIN answered %s (%v)", plan, err)
	}
	var found []string
	var walk func(n node)
	walk = func(n node) {
		switch {
		case n.Type == "Seq Scan", n.Type == "Bitmap Heap Scan",
			(n.Type == "Index Scan" || n.Type == "Index Only Scan") && n.Cond == "":
			found = append(found, fmt.Sprintf("%s on %s %s", n.Type, n.Relation, n.Index))
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return found
}
