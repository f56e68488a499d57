package testenv

import (
	"encoding/json"
	"fmt"
	"testing"
)

// PlanNode is one node of an EXPLAIN (FORMAT JSON) plan, with what the plan tests read.
type PlanNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Cond     string     `json:"Index Cond"`
	Plans    []PlanNode `json:"Plans"`
}

// WalkPlan calls f for every node of an EXPLAIN (FORMAT JSON) answer, parents first.
func WalkPlan(t testing.TB, plan string, f func(PlanNode)) {
	t.Helper()
	var doc []struct{ Plan PlanNode }
	if err := json.Unmarshal([]byte(plan), &doc); err != nil || len(doc) != 1 {
		t.Fatalf("EXPLAIN answered %s (%v)", plan, err)
	}
	var walk func(n PlanNode)
	walk = func(n PlanNode) {
		f(n)
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
}

// WholeReads lists the nodes of an EXPLAIN (FORMAT JSON) answer that read a whole relation
// instead of probing an index for the rows at hand: sequential and bitmap heap scans, and
// index scans without an index condition (an ordered walk of a whole index, or the hashed
// subplan an EXISTS may become). Each is described as "<node> on <relation> <index>".
func WholeReads(t testing.TB, plan string) []string {
	t.Helper()
	var found []string
	WalkPlan(t, plan, func(n PlanNode) {
		switch {
		case n.Type == "Seq Scan", n.Type == "Bitmap Heap Scan",
			(n.Type == "Index Scan" || n.Type == "Index Only Scan") && n.Cond == "":
			found = append(found, fmt.Sprintf("%s on %s %s", n.Type, n.Relation, n.Index))
		}
	})
	return found
}
