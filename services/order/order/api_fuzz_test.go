package order

import (
	"bytes"
	"errors"
	"testing"

	"loudly/pkg/httpapi"
	"loudly/services/events"
)

// FuzzDecodeCreateOrder: whatever the body, the decoder never panics, and either returns
// a request the event contract accepts or a client error (4xx) with a reason.
func FuzzDecodeCreateOrder(f *testing.F) {
	for _, s := range []string{
		goodOrder, ``, `{`, `null`, `[]`, `{"customer_id":"c","lines":[{"sku":"A","quantity":1}]}{}`,
		`{"customer_id":"c","lines":[{"sku":"A","quantity":"1"}]}`, `{"customer_id":"c","x":1}`,
		`{"customer_id":"c","lines":[{"sku":"A","quantity":1e3}]}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeCreateOrder(bytes.NewReader(body))
		if err != nil {
			var e *httpapi.Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not a client error with a reason", err)
			}
			if s := httpapi.Status(err); s < 400 || s > 499 {
				t.Fatalf("status %d for %q", s, body)
			}
			return
		}
		if err := (events.OrderPlaced{CustomerID: req.CustomerID, Lines: req.Lines}).Validate(); err != nil {
			t.Fatalf("decoder accepted a request the contract refuses: %v", err)
		}
	})
}
