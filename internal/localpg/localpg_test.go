package localpg

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestOpen_KeepsItsDataAcrossRestarts: a cluster opened in a directory is initialised
// once, and a second Open of the same directory (another run of the demo) finds what
// the first committed; Stop leaves the directory in place.
func TestOpen_KeepsItsDataAcrossRestarts(t *testing.T) {
	// Under the system temporary directory: running as root, the server's own user
	// must be able to reach it, which t.TempDir's parent may not allow.
	dir, err := os.MkdirTemp("", "localpg-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	exec := func(pg *Server, sql string) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pg.AdminDSN())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	first, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(first, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	if first.accepting() {
		t.Fatal("the server still answers after Stop")
	}

	second, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Stop() })
	if err := exec(second, "SELECT 1 FROM kept WHERE id = 1"); err != nil {
		t.Fatalf("the table committed before the restart: %v", err)
	}
}
