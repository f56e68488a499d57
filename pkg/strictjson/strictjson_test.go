package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"loudly/pkg/strictjson"
)

type order struct {
	CustomerID string `json:"customer_id"`
	Items      []item `json:"items"`
	Note       string `json:"note,omitempty"`
}

type item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

func TestUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		doc    string
		reason string // "" when the document is accepted
	}{
		{name: "a valid order", doc: `{"customer_id":"c1","items":[{"sku":"BOOK-001","quantity":2}]}`},
		{name: "surrounding whitespace", doc: " \t\r\n{\"customer_id\":\"c1\"}\n"},
		{name: "text in any script, raw or escaped", doc: `{"customer_id":"Zoë 😀 \u00e9\ud83d\ude00"}`},
		{name: "the same name in sibling objects", doc: `{"items":[{"sku":"a"},{"sku":"b"}]}`},
		{name: "the same name at another depth", doc: `{"customer_id":"a","items":[{"sku":"customer_id"}]}`},

		{name: "a duplicate name", doc: `{"customer_id":"a","customer_id":"b"}`, reason: strictjson.ReasonDuplicateMember},
		{name: "a duplicate name in a nested object", doc: `{"items":[{"sku":"a","quantity":1,"sku":"b"}]}`, reason: strictjson.ReasonDuplicateMember},
		{name: "a duplicate spelled with an escape", doc: `{"customer_id":"a","customer\u005fid":"b"}`, reason: strictjson.ReasonDuplicateMember},
		{name: "names that differ only in case", doc: `{"customer_id":"a","Customer_ID":"b"}`, reason: strictjson.ReasonDuplicateMember},
		{name: "names equal under Unicode case folding (Kelvin sign)", doc: `{"k":1,"\u212a":2}`, reason: strictjson.ReasonDuplicateMember},

		{name: "invalid UTF-8 in a value", doc: "{\"customer_id\":\"a\xffb\"}", reason: strictjson.ReasonInvalidUTF8},
		{name: "invalid UTF-8 in a name", doc: "{\"customer\xc3_id\":\"a\"}", reason: strictjson.ReasonInvalidUTF8},
		{name: "invalid UTF-8 outside strings", doc: "{\"customer_id\":\"a\"}\xff", reason: strictjson.ReasonInvalidUTF8},
		{name: "a surrogate encoded as UTF-8", doc: "{\"customer_id\":\"\xed\xa0\x80\"}", reason: strictjson.ReasonInvalidUTF8},
		{name: "an overlong encoding", doc: "{\"customer_id\":\"\xc0\xaf\"}", reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped lone high surrogate", doc: `{"customer_id":"\ud800"}`, reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped high surrogate before a non-surrogate", doc: `{"customer_id":"\ud800\u0041"}`, reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped lone low surrogate", doc: `{"customer_id":"\udc00"}`, reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped surrogate pair in the wrong order", doc: `{"customer_id":"\ude00\ud83d"}`, reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped lone surrogate in a name", doc: `{"\ud800":1}`, reason: strictjson.ReasonInvalidUTF8},
		{name: "an escaped noncharacter", doc: `{"customer_id":"\uffff"}`, reason: strictjson.ReasonNoncharacter},
		{name: "a raw noncharacter", doc: "{\"customer_id\":\"\xef\xb7\x90\"}", reason: strictjson.ReasonNoncharacter},
		{name: "an escaped noncharacter in another plane", doc: `{"customer_id":"\ud83f\udffe"}`, reason: strictjson.ReasonNoncharacter},

		{name: "an unknown field", doc: `{"customer_id":"a","discount":100}`, reason: strictjson.ReasonUnknownField},
		{name: "a value of the wrong type", doc: `{"items":[{"quantity":"2"}]}`, reason: strictjson.ReasonType},

		{name: "empty", doc: "", reason: strictjson.ReasonSyntax},
		{name: "whitespace only", doc: "  \n", reason: strictjson.ReasonSyntax},
		{name: "two values", doc: `{"customer_id":"a"}{"customer_id":"b"}`, reason: strictjson.ReasonSyntax},
		{name: "trailing garbage", doc: `{"customer_id":"a"} x`, reason: strictjson.ReasonSyntax},
		{name: "a byte order mark", doc: "\xef\xbb\xbf{}", reason: strictjson.ReasonSyntax},
		{name: "a truncated document", doc: `{"customer_id":"a"`, reason: strictjson.ReasonSyntax},
		{name: "a raw control character in a string", doc: "{\"customer_id\":\"a\tb\"}", reason: strictjson.ReasonSyntax},
		{name: "a number with a leading zero", doc: `{"items":[{"quantity":02}]}`, reason: strictjson.ReasonSyntax},
		{name: "a trailing comma", doc: `{"customer_id":"a",}`, reason: strictjson.ReasonSyntax},
		{name: "an invalid escape", doc: `{"customer_id":"\x41"}`, reason: strictjson.ReasonSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got order
			err := strictjson.Unmarshal([]byte(tc.doc), &got)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				var want order
				if err := json.Unmarshal([]byte(tc.doc), &want); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("decoded %+v, encoding/json decodes %+v (%v)", got, want, err)
				}
				return
			}
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("error = %v (%T), want a *strictjson.Error with reason %s", err, err, tc.reason)
			}
			if se.Reason != tc.reason {
				t.Errorf("reason = %s (%v), want %s", se.Reason, err, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), tc.reason+" at byte ") {
				t.Errorf("message %q does not start with its reason and offset", err)
			}
			if se.Offset < 0 || se.Offset > int64(len(tc.doc)) {
				t.Errorf("offset %d outside the document of %d bytes", se.Offset, len(tc.doc))
			}
		})
	}
}

func TestError_MatchesItsSentinelOnly(t *testing.T) {
	err := strictjson.Unmarshal([]byte(`{"a":1,"a":2}`), new(any))
	if !errors.Is(err, strictjson.ErrDuplicateMember) {
		t.Errorf("errors.Is(%v, ErrDuplicateMember) = false", err)
	}
	for _, other := range []error{strictjson.ErrSyntax, strictjson.ErrInvalidUTF8, strictjson.ErrNoncharacter, strictjson.ErrUnknownField, strictjson.ErrType} {
		if errors.Is(err, other) {
			t.Errorf("errors.Is(%v, %v) = true", err, other)
		}
	}
	err = strictjson.Unmarshal([]byte(`{"items":"x"}`), new(order))
	var typeErr *json.UnmarshalTypeError
	if !errors.Is(err, strictjson.ErrType) || !errors.As(err, &typeErr) {
		t.Errorf("a type error %v does not expose both ErrType and encoding/json's error", err)
	}
}

func TestUnmarshal_LeavesTheTargetAloneWhenRefused(t *testing.T) {
	got := order{CustomerID: "unchanged"}
	if err := strictjson.Unmarshal([]byte(`{"customer_id":"x","note":"\ud800"}`), &got); err == nil {
		t.Fatal("accepted a lone surrogate")
	}
	if got.CustomerID != "unchanged" {
		t.Errorf("a refused document changed the target: %+v", got)
	}
}

func TestUnmarshal_NestingLimitMatchesEncodingJSON(t *testing.T) {
	for _, depth := range []int{strictjson.MaxDepth, strictjson.MaxDepth + 1} {
		doc := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		err := strictjson.Unmarshal(doc, new(any))
		if (err == nil) != json.Valid(doc) {
			t.Errorf("depth %d: strictjson error %v, encoding/json valid %v", depth, err, json.Valid(doc))
		}
	}
}

func TestUnmarshal_LargeObjects(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 200 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"member` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `":1`)
	}
	distinct := b.String() + "}"
	if err := strictjson.Unmarshal([]byte(distinct), new(map[string]int)); err != nil {
		t.Fatalf("200 distinct names: %v", err)
	}
	for _, dup := range []string{`,"memberc":2}`, `,"MEMBERC":2}`, `,"member\u0063":2}`} {
		if err := strictjson.Unmarshal([]byte(b.String()+dup), new(map[string]int)); !errors.Is(err, strictjson.ErrDuplicateMember) {
			t.Errorf("201st member %s repeating the 3rd: %v, want duplicate_member", dup, err)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Run("decodes a reader", func(t *testing.T) {
		var got order
		if err := strictjson.Decode(strings.NewReader(`{"customer_id":"c1"}`), &got); err != nil || got.CustomerID != "c1" {
			t.Errorf("Decode = %+v, %v", got, err)
		}
	})
	t.Run("passes a size limit's error through, so the API can answer 413", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"customer_id":"`+strings.Repeat("x", 100)+`"}`))
		body := http.MaxBytesReader(httptest.NewRecorder(), req.Body, 10)
		var tooLarge *http.MaxBytesError
		if err := strictjson.Decode(body, new(order)); !errors.As(err, &tooLarge) {
			t.Errorf("Decode of an over-long body = %v, want *http.MaxBytesError", err)
		}
	})
	t.Run("reports a read error as it is", func(t *testing.T) {
		broken := io.MultiReader(strings.NewReader(`{"customer_id":`), iotest{})
		if err := strictjson.Decode(broken, new(order)); !errors.Is(err, errBroken) {
			t.Errorf("Decode = %v, want the reader's error", err)
		}
	})
}

var errBroken = errors.New("connection reset")

type iotest struct{}

func (iotest) Read([]byte) (int, error) { return 0, errBroken }

// FuzzUnmarshal checks strictjson against encoding/json on any input: it refuses what
// encoding/json finds malformed; what it accepts is valid UTF-8, has no name twice in an
// object, decodes exactly as encoding/json decodes it (so nothing was altered, no U+FFFD
// appeared) and survives a round trip through encoding/json; and it refuses nothing
// encoding/json accepts except for an I-JSON reason.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"customer_id":"c1","items":[{"sku":"BOOK-001","quantity":2}]}`,
		`{"customer_id":"a","customer_id":"b"}`,
		`{"a":{"b":1,"b":2}}`,
		`{"a":1,"A":2}`,
		`{"k":1,"\u212a":2}`,
		`{"\u0061":1,"a":2}`,
		`["\ud800"]`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\ud83d\u0041"`,
		"\"\xff\"", "\"\xed\xa0\x80\"", "{\"\xc3\":1}",
		`"\uffff"`, `"\ufdd0"`, "\"\xef\xbf\xbe\"", `"\ufffd"`, "\"\xef\xbf\xbd\"",
		`{"a":1}  `, `{"a":1} {}`, ``, ` `, `[]`, `{}`, `[[[]]]`,
		`-0.5e+10`, `01`, `1.`, `-`, `1e`, `true`, `nul`, `"\u00"`, `"\x"`,
		`[1,2,]`, `{"a" 1}`, `{"a":}`, "\"a\tb\"", `"\\\ud800"`, `"\\ud800"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got any
		err := strictjson.Unmarshal(data, &got)
		var se *strictjson.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %v is not a *strictjson.Error", err)
		}
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("accepted %q, which encoding/json finds malformed", data)
			}
			return
		}
		if err != nil {
			if se.Reason == strictjson.ReasonSyntax {
				t.Fatalf("refused %q as a syntax error, but encoding/json accepts it: %v", data, err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted %q, which is not UTF-8", data)
		}
		if name, ok := repeatedName(data); ok {
			t.Fatalf("accepted %q, in which an object has the name %q twice", data, name)
		}
		var want any
		if err := json.Unmarshal(data, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %q as %#v, encoding/json as %#v (%v)", data, got, want, err)
		}
		if n, spelled := replacements(got), spelledReplacements(data); n != spelled {
			t.Fatalf("decoding %q produced %d U+FFFD, the document spells %d", data, n, spelled)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back any
		if err := strictjson.Unmarshal(again, &back); err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("round trip of %q through %q: %#v, %v", data, again, back, err)
		}
	})
}

// FuzzDuplicateNames builds objects with two names, written plainly or with every
// character escaped, and checks they are refused exactly when the names are equal
// ignoring case.
func FuzzDuplicateNames(f *testing.F) {
	f.Add("customer_id", "customer_id", false)
	f.Add("customer_id", "Customer_ID", true)
	f.Add("k", "\u212a", false)
	f.Add("s", "ſ", true)
	f.Add("😀", "😀", true)
	f.Add("a", "b", false)
	f.Fuzz(func(t *testing.T, a, b string, escapeSecond bool) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) || hasNoncharacter(a+b) {
			return
		}
		second := quote(b)
		if escapeSecond {
			second = escapeAll(b)
		}
		doc := []byte(`{` + quote(a) + `:1,` + second + `:2}`)
		err := strictjson.Unmarshal(doc, new(map[string]int))
		dup := strings.EqualFold(a, b)
		switch {
		case dup && !errors.Is(err, strictjson.ErrDuplicateMember):
			t.Fatalf("%s: %v, want duplicate_member", doc, err)
		case !dup && err != nil:
			t.Fatalf("%s: refused distinct names: %v", doc, err)
		}
	})
}

// repeatedName walks data with encoding/json's tokenizer and returns a name that occurs
// twice, ignoring case, in one object.
func repeatedName(data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		names  []string
		expect bool // the next token of this object is a name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if name, ok := tok.(string); ok {
				for _, n := range top.names {
					if strings.EqualFold(n, name) {
						return name, true
					}
				}
				top.names = append(top.names, name)
				top.expect = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.expect = true
			}
			stack = append(stack, &frame{object: true, expect: true})
		case json.Delim('['):
			if top != nil && top.object {
				top.expect = true
			}
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.object {
				top.expect = true
			}
		}
	}
}

// replacements counts U+FFFD in every string of a decoded value, names included.
func replacements(v any) int {
	switch v := v.(type) {
	case string:
		return strings.Count(v, "\uFFFD")
	case []any:
		n := 0
		for _, e := range v {
			n += replacements(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range v {
			n += strings.Count(k, "\uFFFD") + replacements(e)
		}
		return n
	}
	return 0
}

// spelledReplacements counts U+FFFD written in data, raw or as an escape (a \ufffd not
// preceded by an escaped backslash).
func spelledReplacements(data []byte) int {
	n := bytes.Count(data, []byte("\uFFFD"))
	s := string(data)
	for i := 0; i+6 <= len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if strings.EqualFold(s[i:i+6], `\ufffd`) && s[i+1] == 'u' {
			n++
		}
		i++ // skip the escaped character, so "\\" is not read as the start of another escape
	}
	return n
}

func hasNoncharacter(s string) bool {
	for _, r := range s {
		if 0xFDD0 <= r && (r <= 0xFDEF || r&0xFFFE == 0xFFFE) {
			return true
		}
	}
	return false
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// escapeAll writes s as a JSON string in which every character is a \u escape.
func escapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, u := range utf16Units(s) {
		b.WriteString(`\u`)
		const hex = "0123456789abcdef"
		b.WriteByte(hex[u>>12&0xF])
		b.WriteByte(hex[u>>8&0xF])
		b.WriteByte(hex[u>>4&0xF])
		b.WriteByte(hex[u&0xF])
	}
	b.WriteByte('"')
	return b.String()
}

func utf16Units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

var benchDoc = []byte(`{"customer_id":"5f0c7f4e-8d1a-4a53-9f62-2b1f8f0d9a11","note":"leave at the door, ring twice — merci","items":[` +
	`{"sku":"BOOK-001","quantity":2},{"sku":"PEN-042","quantity":10},{"sku":"MUG-007","quantity":1},{"sku":"BAG-100","quantity":3}]}`)

func BenchmarkUnmarshal(b *testing.B) {
	b.Run("strictjson", func(b *testing.B) {
		b.SetBytes(int64(len(benchDoc)))
		for b.Loop() {
			var o order
			if err := strictjson.Unmarshal(benchDoc, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(benchDoc)))
		for b.Loop() {
			var o order
			if err := json.Unmarshal(benchDoc, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_Decoder_strict", func(b *testing.B) { // what events.StrictDecode does
		b.SetBytes(int64(len(benchDoc)))
		for b.Loop() {
			var o order
			dec := json.NewDecoder(bytes.NewReader(benchDoc))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&o); err != nil {
				b.Fatal(err)
			}
			if _, err := dec.Token(); err != io.EOF {
				b.Fatal(err)
			}
		}
	})
}
