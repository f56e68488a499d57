package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// tracer is the pool's tracer: otelpgx's (with batchQueryEvents), plus two things no
// caller has to remember.
//
//   - Every wait is bounded: acquiring a connection, a statement, a batch and a COPY each
//     run under a deadline of timeout unless the caller's context ends sooner. A commit
//     that waits for a synchronous standby that is gone, or a statement whose packets a
//     partition drops, fails after timeout (loudly.db.timeouts counts it) instead of
//     holding an HTTP request or the relay forever. pgx closes a connection whose wait was
//     cut short, so the pool does not reuse it.
//   - A statement that fails because the server is read-only (SQLSTATE 25006) marks its
//     connection, and the pool destroys it instead of handing it out again (see Connect).
type tracer struct {
	batchQueryEvents
	timeout  time.Duration
	timeouts metric.Int64Counter
}

// waits are the values of loudly.db.timeouts' wait attribute.
var waits = []string{"acquire", "query", "batch", "copy", "prepare"}

// bound is what a Start hands its End through the context.
type bound struct {
	cancel context.CancelFunc
}

type boundKey struct{}

// start derives the wait's context with its deadline.
func (t tracer) start(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	return context.WithValue(ctx, boundKey{}, bound{cancel: cancel})
}

// end releases the deadline's timer and counts a wait that ran out of time.
func (t tracer) end(ctx context.Context, conn *pgx.Conn, wait string, err error) {
	if b, ok := ctx.Value(boundKey{}).(bound); ok {
		defer b.cancel()
	}
	if err == nil {
		return
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.timeouts.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("wait", wait)))
	}
	if conn != nil && isReadOnly(err) {
		conn.PgConn().CustomData()[readOnlyKey] = true
	}
}

const readOnlyKey = "loudly.read_only"

// readOnly reports whether a statement on c failed because its server was read-only.
func readOnly(c *pgx.Conn) bool {
	v, _ := c.PgConn().CustomData()[readOnlyKey].(bool)
	return v
}

// isReadOnly reports whether err is PostgreSQL's read_only_sql_transaction (25006): a
// write on a standby, on a server in recovery, or in a read-only transaction.
func isReadOnly(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "25006"
}

// IsReadOnly reports whether err says the server refused a write because it is read-only
// (SQLSTATE 25006), as a primary demoted to a standby does. Connect's pool has already
// dropped the connection that got it; a retry opens a new one.
func IsReadOnly(err error) bool { return isReadOnly(err) }

func (t tracer) TraceQueryStart(ctx context.Context, c *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.batchQueryEvents.TraceQueryStart(t.start(ctx), c, d)
}

func (t tracer) TraceQueryEnd(ctx context.Context, c *pgx.Conn, d pgx.TraceQueryEndData) {
	t.batchQueryEvents.TraceQueryEnd(ctx, c, d)
	t.end(ctx, c, "query", d.Err)
}

func (t tracer) TraceBatchStart(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	return t.batchQueryEvents.TraceBatchStart(t.start(ctx), c, d)
}

func (t tracer) TraceBatchQuery(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.batchQueryEvents.TraceBatchQuery(ctx, c, d)
	if d.Err != nil && isReadOnly(d.Err) {
		c.PgConn().CustomData()[readOnlyKey] = true
	}
}

func (t tracer) TraceBatchEnd(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchEndData) {
	t.batchQueryEvents.TraceBatchEnd(ctx, c, d)
	t.end(ctx, c, "batch", d.Err)
}

func (t tracer) TraceCopyFromStart(ctx context.Context, c *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return t.batchQueryEvents.TraceCopyFromStart(t.start(ctx), c, d)
}

func (t tracer) TraceCopyFromEnd(ctx context.Context, c *pgx.Conn, d pgx.TraceCopyFromEndData) {
	t.batchQueryEvents.TraceCopyFromEnd(ctx, c, d)
	t.end(ctx, c, "copy", d.Err)
}

func (t tracer) TracePrepareStart(ctx context.Context, c *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	return t.batchQueryEvents.TracePrepareStart(t.start(ctx), c, d)
}

func (t tracer) TracePrepareEnd(ctx context.Context, c *pgx.Conn, d pgx.TracePrepareEndData) {
	t.batchQueryEvents.TracePrepareEnd(ctx, c, d)
	t.end(ctx, c, "prepare", d.Err)
}

func (t tracer) TraceAcquireStart(ctx context.Context, p *pgxpool.Pool, d pgxpool.TraceAcquireStartData) context.Context {
	return t.batchQueryEvents.TraceAcquireStart(t.start(ctx), p, d)
}

func (t tracer) TraceAcquireEnd(ctx context.Context, p *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	t.batchQueryEvents.TraceAcquireEnd(ctx, p, d)
	t.end(ctx, nil, "acquire", d.Err)
}
