package ordertrace

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"loudly/pkg/outbox"
)

// A pending order is stuck at the first hop it has not passed.
func TestStuckAt_NamesTheFirstHopNotPassed(t *testing.T) {
	sent := time.Now()
	published := &outbox.Entry{Subject: "orders.placed", SentAt: &sent}
	written := &outbox.Entry{Subject: "inventory.reserved"}
	for _, tc := range []struct {
		name   string
		placed *outbox.Entry
		rs     []reservationView
		want   string
	}{
		{"no event in the outbox", nil, nil, HopOrderOutbox},
		{"event written, not published", &outbox.Entry{Subject: "orders.placed"}, nil, HopOrderOutbox},
		{"published, no decision", published, nil, HopInventory},
		{"decided, no result event", published, []reservationView{{Outcome: "applied"}}, HopInvOutbox},
		{"result written, not published", published, []reservationView{{Outcome: "applied", Result: written}}, HopInvOutbox},
		{"result published, not settled", published, []reservationView{{Outcome: "applied", Result: published}}, HopSettlement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hop, why := stuckAt(tc.placed, tc.rs)
			if hop != tc.want || why == "" {
				t.Errorf("stuck at %q (%s), want %q and a reason", hop, why, tc.want)
			}
		})
	}
}

// A dead letter is matched to its order by its payload's key, even when the payload is
// not a valid event.
func TestLetterKey_ReadsInvalidEventsToo(t *testing.T) {
	for payload, want := range map[string]string{
		`{"id":"x","version":99,"type":"order.placed","key":"0b6f3d4e-7a1c-4d2e-9f00-000000000001"}`: "0b6f3d4e-7a1c-4d2e-9f00-000000000001",
		`{"key":42}`:  "",
		`not json`:    "",
		`{"data":{}}`: "",
	} {
		if got := letterKey([]byte(payload)); got != want {
			t.Errorf("letterKey(%s) = %q, want %q", payload, got, want)
		}
	}
}

func TestGrafanaURL_OpensTheTraceInTempo(t *testing.T) {
	u, err := url.Parse(GrafanaURL("http://grafana.test/", "4bf92f3577b34da6a3ce929d0e0e4736"))
	if err != nil || u.Host != "grafana.test" || u.Path != "/explore" {
		t.Fatalf("%v %v", u, err)
	}
	if panes := u.Query().Get("panes"); !strings.Contains(panes, `"uid":"tempo"`) || !strings.Contains(panes, "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Errorf("panes %s", panes)
	}
}
