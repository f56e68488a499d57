package telemetry

import (
	"context"
	"fmt"
	"io"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The recorder caches the counter's attribute sets, up to maxCached of them: past the
// bound, every decision is still counted under its own labels, and the cache stays bounded.
func TestRecorder_CountsEveryLabelSetPastTheCacheBound(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := Setup(context.Background(), Config{ServiceName: "cache-test", LogWriter: io.Discard, MetricReaders: []sdkmetric.Reader{reader}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	const n = maxCached + 10
	record := func(i int) {
		tel.Decisions.Record(context.Background(), Decision{Stage: StageConsume, Outcome: Applied, Reason: fmt.Sprint("r", i), EventType: "x.happened", KeyName: fmt.Sprint("k", i), Key: "1"})
	}
	for i := range n {
		record(i)
	}
	record(n - 1) // past the bound: counted again, under the same labels

	if got := tel.Decisions.labelSets.n.Load(); got != maxCached {
		t.Errorf("%d label sets cached, want the bound %d", got, maxCached)
	}
	if got := tel.Decisions.keyAttrs.n.Load(); got != maxCached {
		t.Errorf("%d key names cached, want the bound %d", got, maxCached)
	}
	counts := counterBy(t, reader, "loudly.decisions", "reason")
	if len(counts) != n {
		t.Fatalf("%d reasons counted, want %d", len(counts), n)
	}
	if counts["r0"] != 1 || counts[fmt.Sprint("r", n-1)] != 2 {
		t.Errorf("r0 counted %d times (want 1), r%d %d times (want 2)", counts["r0"], n-1, counts[fmt.Sprint("r", n-1)])
	}
}
