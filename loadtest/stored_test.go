package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkStoredOrders is `make bench-stored`: does the pipeline slow down as its tables
// grow? Both services run on one database for the whole benchmark (telemetry on, no
// drills). At each mark of STORED_ORDERS (0, 500000 and 1500000 orders already stored),
// the saturated settled/s is measured over STORED_MEASURE (20s), offered as `make bench`
// offers it; between two marks, the pipeline itself fills the tables (orders, their
// history, both outboxes, the processed events, the reservations) at saturation, in runs
// verified like any other. Nothing may be lost. It prints one line
// "stored: orders=N settled_per_s=X ..." with the ratio of the last mark to the first.
func BenchmarkStoredOrders(b *testing.B) {
	marks := storedMarks(b, os.Getenv("STORED_ORDERS"))
	measure := benchDuration(b, "STORED_MEASURE", 20*time.Second)
	p := pipeline{settings: serviceSettings(os.Environ()), bin: buildServices(b)}
	l := p.start(b)
	cfg := config{
		URL: "http://" + l.procs["order"].addr, NATSURL: l.natsURL, Rate: saturationRate,
		Poison: 0.02, Verify: true, Timeout: 10 * time.Minute, Concurrency: 256,
		Quiet: func(ctx context.Context) error { return waitNothingPending(ctx, l.dsn) },
	}
	var line storedLine
	defer func() { fmt.Println(line) }()
	var log bytes.Buffer
	defer func() { fmt.Printf("loadtest:\n%s", log.String()) }() // a benchmark's log keeps ten lines
	runOnce := func(what string, d time.Duration) storedMark {
		c := cfg
		c.Duration = d
		before := walNow(b, l.dsn)
		s, err := run(b.Context(), c, &log, &log)
		line.Accepted += s.Accepted
		line.Lost += s.Lost
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		m := storedMark{Orders: storedCount(b, l.dsn), SettledPerSec: s.SettledPerSec}
		if final := s.Confirmed + s.Rejected + s.Failed; final > 0 {
			w := walNow(b, l.dsn).minus(before)
			m.WALKiBPerOrder = float64(w.bytes) / 1024 / float64(final)
			m.FPIPerOrder = float64(w.fpi) / float64(final)
		}
		fmt.Printf("%s: %s of load, %d orders stored now: %.1f settled/s, WAL %.1f KiB and %.2f full-page images per order, verified in %s\n",
			what, d, m.Orders, m.SettledPerSec, m.WALKiBPerOrder, m.FPIPerOrder, s.VerifyDuration.Round(time.Millisecond))
		return m
	}
	rate := 0.0
	for _, mark := range marks {
		// Fill in runs of at most 5 minutes, each sized by the rate last seen.
		for stored := storedCount(b, l.dsn); stored < mark; stored = storedCount(b, l.dsn) {
			guess := cmp.Or(rate, 1000)
			d := min(time.Duration(float64(mark-stored)/guess*float64(time.Second))+time.Second, 5*time.Minute)
			rate = runOnce(fmt.Sprintf("filling to %d", mark), d.Round(time.Second)).SettledPerSec
		}
		stored := storedCount(b, l.dsn)
		m := runOnce(fmt.Sprintf("measuring at %d", stored), measure)
		m.Orders, rate = stored, m.SettledPerSec // the mark is what was stored before
		line.Marks = append(line.Marks, m)
	}
	if line.Lost != 0 {
		b.Errorf("lost %d of %d accepted orders and poison events", line.Lost, line.Accepted)
	}
	b.ReportMetric(line.ratio(), "last/first")
}

// storedMarks parses STORED_ORDERS: ascending counts of orders, comma-separated.
func storedMarks(t testing.TB, v string) []int {
	t.Helper()
	if v == "" {
		return []int{0, 500_000, 1_500_000}
	}
	var marks []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || (len(marks) > 0 && n <= marks[len(marks)-1]) {
			t.Fatalf("STORED_ORDERS=%q: want ascending counts of orders, such as 0,500000,1500000", v)
		}
		marks = append(marks, n)
	}
	return marks
}

// storedCount is how many orders the order database holds.
func storedCount(t testing.TB, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("count orders: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM orders.orders`).Scan(&n); err != nil {
		t.Fatalf("count orders: %v", err)
	}
	return n
}

// storedLine is what `make bench-stored` found.
type storedLine struct {
	Marks          []storedMark
	Accepted, Lost int
}

type storedMark struct {
	Orders        int
	SettledPerSec float64
	// What PostgreSQL's write-ahead log took per final order (pg_stat_wal, the whole
	// server): its volume, and the full-page images in it (a page written whole, the first
	// time it changes after a checkpoint).
	WALKiBPerOrder, FPIPerOrder float64
}

// walStats is pg_stat_wal's running totals.
type walStats struct{ bytes, fpi int64 }

func (w walStats) minus(o walStats) walStats { return walStats{w.bytes - o.bytes, w.fpi - o.fpi} }

// walNow reads pg_stat_wal (PostgreSQL 14 and later).
func walNow(t testing.TB, dsn string) walStats {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("pg_stat_wal: %v", err)
	}
	defer conn.Close(context.Background())
	var w walStats
	if err := conn.QueryRow(t.Context(), `SELECT wal_bytes::bigint, wal_fpi FROM pg_stat_wal`).Scan(&w.bytes, &w.fpi); err != nil {
		t.Fatalf("pg_stat_wal (PostgreSQL 14 or later): %v", err)
	}
	return w
}

// ratio is the last mark's settled/s over the first's.
func (l storedLine) ratio() float64 {
	if len(l.Marks) < 2 || l.Marks[0].SettledPerSec == 0 {
		return 0
	}
	return l.Marks[len(l.Marks)-1].SettledPerSec / l.Marks[0].SettledPerSec
}

func (l storedLine) String() string {
	var b strings.Builder
	b.WriteString("stored:")
	for _, m := range l.Marks {
		fmt.Fprintf(&b, " orders=%d settled_per_s=%.1f wal_kib_per_order=%.1f fpi_per_order=%.2f", m.Orders, m.SettledPerSec, m.WALKiBPerOrder, m.FPIPerOrder)
	}
	fmt.Fprintf(&b, " last_over_first=%.3f accepted=%d lost=%d", l.ratio(), l.Accepted, l.Lost)
	return b.String()
}

func TestStoredMarks(t *testing.T) {
	if got := storedMarks(t, ""); fmt.Sprint(got) != "[0 500000 1500000]" {
		t.Errorf("default marks %v", got)
	}
	if got := storedMarks(t, "0, 1000,20000"); fmt.Sprint(got) != "[0 1000 20000]" {
		t.Errorf("marks %v", got)
	}
	l := storedLine{Marks: []storedMark{{0, 2000, 5.25, 0.5}, {1_500_000, 1500, 12, 1.25}}, Accepted: 10}
	if got, want := l.String(), "stored: orders=0 settled_per_s=2000.0 wal_kib_per_order=5.2 fpi_per_order=0.50 orders=1500000 settled_per_s=1500.0 wal_kib_per_order=12.0 fpi_per_order=1.25 last_over_first=0.750 accepted=10 lost=0"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}
