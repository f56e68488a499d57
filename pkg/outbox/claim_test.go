package outbox_test

import (
	"context"
	"testing"
	"time"

	"loudly/internal/testenv"
	"loudly/pkg/outbox"
)

// The claim must cost what is due, not what was ever sent: it reads the pending index in
// id order, a plain index scan (which marks the entries of sent rows dead, so later
// claims skip them) with no sort, whether or not the table has statistics. A bitmap scan
// or a sort reads every entry left since the last vacuum on every claim. Marking the
// batch sent probes the primary key once per row. Both are the generic plans the relay's
// transaction caches (postgres.IndexPlans), checked on an empty table, where a plan made
// for the table's size would read all of it, and on a grown one.
func TestRelay_ClaimReadsOnlyThePendingIndexInOrder(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(t *testing.T) {
		plan, err := outbox.ClaimPlan(ctx, r.relay(t))
		if err != nil {
			t.Fatal(err)
		}
		var pending bool
		testenv.WalkPlan(t, plan, func(n testenv.PlanNode) {
			switch n.Type {
			case "Index Scan":
				pending = pending || n.Index == "outbox_pending"
			case "Sort", "Bitmap Heap Scan", "Seq Scan":
				t.Errorf("the claim's plan has a %s node:\n%s", n.Type, plan)
			}
		})
		if !pending {
			t.Errorf("the claim does not scan outbox_pending:\n%s", plan)
		}
		plan, err = outbox.MarkSentPlan(ctx, r.relay(t))
		if err != nil {
			t.Fatal(err)
		}
		if whole := testenv.WholeReads(t, plan); len(whole) > 0 {
			t.Errorf("marking rows sent reads whole relations: %v\n%s", whole, plan)
		}
		var probes bool
		testenv.WalkPlan(t, plan, func(n testenv.PlanNode) {
			switch {
			case n.Type == "Index Scan" && n.Index == "outbox_pkey" && n.Cond != "":
				probes = true
			case n.Type == "Hash Join", n.Type == "Merge Join":
				t.Errorf("marking rows sent joins by %s:\n%s", n.Type, plan)
			}
		})
		if !probes {
			t.Errorf("marking rows sent does not probe outbox_pkey:\n%s", plan)
		}
	}
	t.Run("empty table", check)
	if _, err := r.pool.Exec(ctx, `INSERT INTO `+table+` (event_id, subject, payload, headers)
		SELECT gen_random_uuid(), 'x', '\x00', '{}' FROM generate_series(1, 5000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.Exec(ctx, `UPDATE `+table+` SET sent_at = now() WHERE id <= 4990`); err != nil {
		t.Fatal(err)
	}
	t.Run("grown, no statistics yet", check)
	if _, err := r.pool.Exec(ctx, `ANALYZE `+table); err != nil {
		t.Fatal(err)
	}
	t.Run("after ANALYZE", check)
}
