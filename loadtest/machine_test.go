package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// machine is what the whole machine and the phase's database have done so far: every
// process counts (PostgreSQL, NATS, the load generator, the services), so a phase can say
// how busy the machine was while it ran, which the services' own CPU time cannot.
type machine struct {
	at           time.Time
	cpus         int           // how many CPUs the times are summed over
	busy, stolen time.Duration // summed over all CPUs: time not idle, and time the hypervisor took
	transactions int64         // committed and rolled back in the phase's database
}

// machineNow reads /proc/stat and the database's transaction count.
func machineNow(ctx context.Context, dsn string) (machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}, err
	}
	m := machine{at: time.Now()}
	if m.cpus, m.busy, m.stolen, err = parseStatCPU(string(b)); err != nil {
		return m, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return m, err
	}
	defer conn.Close(context.Background())
	// The statistics of a backend reach this view when it goes idle, within a second or
	// so: a count read right after a burst lags by that much.
	err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&m.transactions)
	return m, err
}

// parseStatCPU reads /proc/stat: its first line, "cpu user nice system idle iowait irq
// softirq steal …" in clock ticks summed over all CPUs (busy is every field but idle,
// iowait and steal), and one "cpuN" line per CPU.
func parseStatCPU(stat string) (cpus int, busy, stolen time.Duration, err error) {
	lines := strings.Split(stat, "\n")
	f := strings.Fields(lines[0])
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, 0, fmt.Errorf("/proc/stat does not start with the cpu line: %q", lines[0])
	}
	var n [8]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/stat cpu field %d %q: %w", i+1, f[i+1], err)
		}
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			cpus++
		}
	}
	user, nice, system, irq, softirq, steal := n[0], n[1], n[2], n[5], n[6], n[7]
	return cpus, ticks(user + nice + system + irq + softirq), ticks(steal), nil
}

// machineLoad is the machine between two readings: cores busy and stolen on average, and the
// database's transactions per final order.
type machineLoad struct {
	cpus                   int
	coresBusy, coresStolen float64
	txPerOrder             float64
}

func (m machine) since(before machine, orders int) machineLoad {
	wall := m.at.Sub(before.at).Seconds()
	if wall <= 0 || orders <= 0 {
		return machineLoad{}
	}
	return machineLoad{
		cpus:        m.cpus,
		coresBusy:   (m.busy - before.busy).Seconds() / wall,
		coresStolen: (m.stolen - before.stolen).Seconds() / wall,
		txPerOrder:  float64(m.transactions-before.transactions) / float64(orders),
	}
}

func (l machineLoad) String() string {
	return fmt.Sprintf("machine %.2f cores busy (%.2f stolen) of %d, PostgreSQL %.1f transactions", l.coresBusy, l.coresStolen, l.cpus, l.txPerOrder)
}

func TestParseStatCPU(t *testing.T) {
	stat := "cpu  1000 20 300 9000 50 7 3 40 0 0\ncpu0 500 10 150 4500 25 3 1 20 0 0\n"
	cpus, busy, stolen, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if cpus != 1 {
		t.Errorf("cpus = %d, want 1 (one cpu0 line)", cpus)
	}
	if want := 13300 * time.Millisecond; busy != want { // 1000+20+300+7+3 ticks
		t.Errorf("busy = %v, want %v", busy, want)
	}
	if want := 400 * time.Millisecond; stolen != want {
		t.Errorf("stolen = %v, want %v", stolen, want)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, _, _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) parsed", bad)
		}
	}
	// This machine's: spinning must show as busy time.
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	cpus, before, _, err := parseStatCPU(string(b))
	if err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
	if cpus < 1 {
		t.Errorf("this machine's /proc/stat has %d cpuN lines", cpus)
	}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
	}
	b, _ = os.ReadFile("/proc/stat")
	_, after, _, _ := parseStatCPU(string(b))
	if after <= before {
		t.Errorf("busy time went from %v to %v while this test spun for 300ms", before, after)
	}
}

func TestLoadSince(t *testing.T) {
	t0 := time.Now()
	before := machine{at: t0, busy: 10 * time.Second, stolen: time.Second, transactions: 100}
	after := machine{at: t0.Add(4 * time.Second), cpus: 2, busy: 16 * time.Second, stolen: 3 * time.Second, transactions: 1300}
	l := after.since(before, 400)
	if l.cpus != 2 || l.coresBusy != 1.5 || l.coresStolen != 0.5 || l.txPerOrder != 3 {
		t.Errorf("since = %+v, want 2 CPUs, 1.5 cores busy, 0.5 stolen, 3 transactions per order", l)
	}
	if (after.since(before, 0) != machineLoad{}) {
		t.Error("no orders gave a load")
	}
}

// cpuSpeed is how fast one core of the machine hashes, in MB/s: the best of five
// SHA-256 passes over 2 MiB, timed by the wall clock, taken while nothing of the bench
// runs. The same binary on the same machine should read the same every time; when it
// reads less, the machine itself was slower (a busier host, a lower clock), and every
// figure of that phase with it.
func cpuSpeed() float64 {
	buf := make([]byte, 2<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		sum := sha256.Sum256(buf)
		runtime.KeepAlive(sum)
		best = min(best, time.Since(start))
	}
	return float64(len(buf)) / 1e6 / best.Seconds()
}
