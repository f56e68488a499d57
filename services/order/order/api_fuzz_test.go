package order

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/uuid"

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
		`{"customer_id":"a","customer_id":"b","lines":[{"sku":"A","quantity":1}]}`, "{\"customer_id\":\"\xc3\",\"lines\":[]}",
		`{"customer_id":"\udc00","lines":[{"sku":"A","quantity":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeCreateOrder(bytes.NewReader(body))
		if err != nil {
			mustBeClientError(t, err, body)
			return
		}
		if err := (events.OrderPlaced{CustomerID: req.CustomerID, Lines: req.Lines}).Validate(); err != nil {
			t.Fatalf("decoder accepted a request the contract refuses: %v", err)
		}
	})
}

// FuzzDecodeBatchGet: whatever the body, the decoder never panics, and either returns 1
// to MaxBatchGet distinct canonical UUIDs or a client error (4xx) with a reason.
func FuzzDecodeBatchGet(f *testing.F) {
	for _, s := range []string{
		`{"ids":["0b6f3d4e-7a1c-4d2e-9f00-000000000000"]}`, ``, `{`, `null`, `{"ids":null}`, `{"ids":[]}`,
		`{"ids":["0B6F3D4E-7A1C-4D2E-9F00-000000000000","0b6f3d4e-7a1c-4d2e-9f00-000000000000"]}`,
		`{"ids":["{0b6f3d4e-7a1c-4d2e-9f00-000000000000}"]}`, `{"ids":["urn:uuid:0b6f3d4e-7a1c-4d2e-9f00-000000000000"]}`,
		`{"ids":[1]}`, `{"ids":["x"],"ids":["y"]}`, "{\"ids\":[\"\xff\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := DecodeBatchGet(body)
		if err != nil {
			mustBeClientError(t, err, body)
			return
		}
		if len(ids) == 0 || len(ids) > MaxBatchGet {
			t.Fatalf("%d ids accepted", len(ids))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			u, err := uuid.Parse(id)
			if err != nil || u.String() != id || seen[id] {
				t.Fatalf("id %q: not a distinct canonical UUID", id)
			}
			seen[id] = true
		}
	})
}

// mustBeClientError fails the test unless err is a client error (4xx) with a reason.
func mustBeClientError(t *testing.T, err error, body []byte) {
	t.Helper()
	var e *httpapi.Error
	if !errors.As(err, &e) || e.Reason == "" {
		t.Fatalf("error %v is not a client error with a reason", err)
	}
	if s := httpapi.Status(err); s < 400 || s > 499 {
		t.Fatalf("status %d for %q", s, body)
	}
}
