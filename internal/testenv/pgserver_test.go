package testenv

import (
	"context"
	"testing"
	"time"
)

func TestPostgresServer(t *testing.T) {
	s := StartPostgres(t)
	ctx := context.Background()
	committed := 0
	commit := func(t *testing.T) {
		t.Helper()
		conn := connect(t, s.DSN())
		if _, err := conn.Exec(ctx, "INSERT INTO ledger DEFAULT VALUES"); err != nil {
			t.Fatalf("commit: %v", err)
		}
		committed++
	}
	rows := func(t *testing.T, dsn string) int {
		t.Helper()
		var n int
		if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := connect(t, s.DSN()).Exec(ctx, "CREATE TABLE ledger (id serial PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	t.Run("Restart disconnects clients and keeps what was committed", func(t *testing.T) {
		commit(t)
		open := connect(t, s.DSN())
		s.Restart()
		if _, err := open.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("a connection opened before the restart still works")
		}
		if got := rows(t, s.DSN()); got != committed {
			t.Errorf("after restart %d rows, want %d", got, committed)
		}
	})

	t.Run("Stop refuses connections until Start", func(t *testing.T) {
		s.Stop()
		if err := ping(s.DSN(), time.Second); err == nil {
			t.Fatal("a stopped server accepted a connection")
		}
		s.Start()
		commit(t)
		if got := rows(t, s.DSN()); got != committed {
			t.Errorf("%d rows, want %d", got, committed)
		}
	})

	t.Run("Crash keeps every acknowledged commit", func(t *testing.T) {
		for range 20 {
			commit(t)
		}
		s.Crash()
		s.Start()
		if got := rows(t, s.DSN()); got != committed {
			t.Errorf("after a crash %d rows, want the %d acknowledged", got, committed)
		}
	})

	t.Run("CutFor breaks connections for a while, with the server running", func(t *testing.T) {
		open := connect(t, s.DSN())
		restored := s.CutFor(2 * time.Second)
		if _, err := open.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("an open connection survived the cut")
		}
		if err := ping(s.DSN(), time.Second); err == nil {
			t.Error("a new connection got through the cut")
		}
		if got := rows(t, s.DirectDSN()); got != committed {
			t.Errorf("the server itself holds %d rows during the cut, want %d", got, committed)
		}
		<-restored
		if err := ping(s.DSN(), 5*time.Second); err != nil {
			t.Errorf("no connection after the cut ended: %v", err)
		}
		commit(t)
	})
}
