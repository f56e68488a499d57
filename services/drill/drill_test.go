package drill

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/faults"
)

func TestCatalog_EveryDrillIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalog {
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Service == "" || s.Unit == "" || s.Description == "" || len(s.Alerts) == 0 {
			t.Errorf("%s: service %q, unit %q, description %q, alerts %v: want all", s.Name, s.Service, s.Unit, s.Description, s.Alerts)
		}
		if s.Default <= 0 || s.Default > s.Max {
			t.Errorf("%s: default %g outside 0..%g", s.Name, s.Default, s.Max)
		}
		if got, ok := Lookup(s.Name); !ok || got.Name != s.Name {
			t.Errorf("Lookup(%s) = %+v, %v", s.Name, got, ok)
		}
	}
	if _, ok := Lookup("rm-rf"); ok {
		t.Error("Lookup found a drill that does not exist")
	}
	if e := Exported(); len(e) != len(Catalog)-1 || slices.Contains(e, SilentSkip) {
		t.Errorf("exported %v: want every drill but silent-skip", e)
	}
	// The generic drills are exactly those this package's pieces act on.
	var generic []string
	for _, s := range Catalog {
		if s.Generic {
			generic = append(generic, s.Name)
		}
	}
	if want := []string{SilentSkip, DBLatency, DBOutage, OutboxStall, AckTimeout}; !slices.Equal(generic, want) {
		t.Errorf("generic drills %v, want %v", generic, want)
	}
}

func TestStart_ChecksTheCatalogue(t *testing.T) {
	nc, err := nats.Connect(testenv.EmbeddedNATS(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := Accept(nc, "order"); err != nil { // the order service, with drills enabled
		t.Fatal(err)
	}

	t.Run("a service that does not accept drills gets no fault", func(t *testing.T) {
		_, err := Start(ctx, js, SilentSkip, "", 1, 0) // acts in inventory, which does not answer
		if !errors.Is(err, ErrNotAccepted) || !strings.Contains(err.Error(), "inventory does not accept drills") {
			t.Errorf("Start against inventory without drills: %v", err)
		}
		if fs, _ := faults.List(ctx, js); len(fs) != 0 {
			t.Errorf("the refused drill was stored: %+v", fs)
		}
	})
	t.Run("unknown drills and out-of-range intensities are refused", func(t *testing.T) {
		if _, err := Start(ctx, js, "rm-rf", "", 1, 0); err == nil {
			t.Error("unknown drill accepted")
		}
		if _, err := Start(ctx, js, DBOutage, "", 2, 0); err == nil {
			t.Error("intensity 2 accepted for a fraction")
		}
		if fs, _ := faults.List(ctx, js); len(fs) != 0 {
			t.Errorf("refused drills were stored: %+v", fs)
		}
	})
	t.Run("only a generic drill is started in another service", func(t *testing.T) {
		if _, err := Start(ctx, js, PoisonFlood, "billing", 1, 0); err == nil || !strings.Contains(err.Error(), "acts only in order") {
			t.Errorf("poison-flood in billing: %v", err)
		}
		if _, err := Start(ctx, js, DBOutage, "billing", 1, 0); !errors.Is(err, ErrNotAccepted) || !strings.Contains(err.Error(), "billing does not accept drills") {
			t.Errorf("db-outage in billing, which does not answer: %v", err)
		}
		if fs, _ := faults.List(ctx, js); len(fs) != 0 {
			t.Errorf("refused drills were stored: %+v", fs)
		}
	})
	t.Run("intensity 0 takes the drill's default", func(t *testing.T) {
		f, err := Start(ctx, js, PoisonFlood, "", 0, time.Minute)
		if err != nil || f.Intensity != 20 || f.Until.Sub(f.Started) != time.Minute {
			t.Fatalf("%+v %v: want 20 events/s for a minute", f, err)
		}
		if fs, _ := faults.List(ctx, js); len(fs) != 1 || fs[0].Name != PoisonFlood || fs[0].Intensity != 20 || fs[0].Service != "order" {
			t.Errorf("in the bucket: %+v", fs)
		}
	})
}
