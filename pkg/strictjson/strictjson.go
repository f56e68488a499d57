// Package strictjson decodes JSON that follows I-JSON (RFC 7493) and nothing else: one
// value with no trailing data, no member names the target type does not know, no member
// name twice in an object, and text that is valid Unicode throughout.
//
// encoding/json on its own accepts all of those and quietly alters the document: the
// last of two equal names wins, invalid UTF-8 and escaped lone surrogates become U+FFFD,
// and names that differ only in case land in the same field. A producer that sends such
// a document has a bug, and the decision it forced on the decoder is invisible
// downstream. Here each of them is an error with its own Reason, so an API can answer 400
// and a consumer can dead-letter the event with that reason.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reasons, short and stable, for a JSON error body or a dead letter.
const (
	ReasonSyntax          = "syntax"           // not one JSON value (or nested too deeply)
	ReasonDuplicateMember = "duplicate_member" // a name twice in one object
	ReasonInvalidUTF8     = "invalid_utf8"     // bytes that are not UTF-8, or an escaped lone surrogate
	ReasonNoncharacter    = "noncharacter"     // a Unicode noncharacter, which I-JSON forbids
	ReasonUnknownField    = "unknown_field"    // a name the target type does not have
	ReasonType            = "type"             // a value that does not fit the target type
)

// Sentinel errors, one per reason, for errors.Is.
var (
	ErrSyntax          = errors.New(ReasonSyntax)
	ErrDuplicateMember = errors.New(ReasonDuplicateMember)
	ErrInvalidUTF8     = errors.New(ReasonInvalidUTF8)
	ErrNoncharacter    = errors.New(ReasonNoncharacter)
	ErrUnknownField    = errors.New(ReasonUnknownField)
	ErrType            = errors.New(ReasonType)
)

var sentinels = map[string]error{
	ReasonSyntax:          ErrSyntax,
	ReasonDuplicateMember: ErrDuplicateMember,
	ReasonInvalidUTF8:     ErrInvalidUTF8,
	ReasonNoncharacter:    ErrNoncharacter,
	ReasonUnknownField:    ErrUnknownField,
	ReasonType:            ErrType,
}

// Error is why a document was refused. errors.Is matches it against the sentinel of its
// reason, and errors.As reaches encoding/json's error when that found the problem.
type Error struct {
	Reason string // one of the Reason constants
	Offset int64  // byte offset in the document where the problem was found
	Detail string // for a person: what is wrong
	cause  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s at byte %d: %s", e.Reason, e.Offset, e.Detail)
}

// Unwrap returns the sentinel of the reason and, if any, encoding/json's error.
func (e *Error) Unwrap() []error {
	errs := []error{sentinels[e.Reason]}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// MaxDepth is how deeply arrays and objects may nest, the same limit encoding/json has.
const MaxDepth = 10000

// Decode reads r to its end and decodes it with Unmarshal. An error reading r, such as
// *http.MaxBytesError from a size-limited request body, is returned as it is, so the
// caller can still tell "too large" (413) from "not acceptable JSON" (400).
func Decode(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return Unmarshal(data, v)
}

// Unmarshal decodes data into v if data is exactly one I-JSON value whose every member
// name v knows; otherwise it returns an *Error and leaves v untouched. Two names in one
// object that are equal ignoring case count as duplicates, because encoding/json matches
// struct fields ignoring case and would keep only the last.
//
// The document is checked in one pass over its bytes before encoding/json decodes it,
// so v is never half-filled from a document that is then refused for its Unicode or
// its names. (A type error found while decoding can still leave v partly set, as with
// encoding/json.)
func Unmarshal(data []byte, v any) error {
	c := checker{data: data, names: make([][]byte, 0, 8)}
	if err := c.document(); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return &Error{Reason: ReasonType, Offset: typeErr.Offset, Detail: err.Error(), cause: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error, nor an offset.
		return &Error{Reason: ReasonUnknownField, Offset: dec.InputOffset(), Detail: strings.TrimPrefix(err.Error(), "json: "), cause: err}
	}
	return err // v is not a non-nil pointer, or similar: the caller's mistake, not the document's
}

// checker walks a document once, checking its syntax, its Unicode and the member names
// of each object. The names of the objects being walked are kept on one stack, each
// object's after the ones of the objects around it.
type checker struct {
	data  []byte
	pos   int
	depth int
	names [][]byte // member names of the open objects, innermost last
}

func (c *checker) fail(reason string, at int, format string, args ...any) *Error {
	return &Error{Reason: reason, Offset: int64(at), Detail: fmt.Sprintf(format, args...)}
}

func (c *checker) document() error {
	c.space()
	if c.pos == len(c.data) {
		return c.fail(ReasonSyntax, c.pos, "no JSON value")
	}
	if err := c.value(); err != nil {
		return err
	}
	c.space()
	if c.pos < len(c.data) {
		return c.unexpected("after the JSON value; want one value only")
	}
	return nil
}

func (c *checker) space() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// unexpected reports the byte at pos, or the end of the data.
func (c *checker) unexpected(context string) *Error {
	if c.pos >= len(c.data) {
		return c.fail(ReasonSyntax, c.pos, "unexpected end of data %s", context)
	}
	b := c.data[c.pos]
	if b >= utf8.RuneSelf {
		if r, size := utf8.DecodeRune(c.data[c.pos:]); r == utf8.RuneError && size <= 1 {
			return c.fail(ReasonInvalidUTF8, c.pos, "byte 0x%02x is not UTF-8", b)
		}
	}
	return c.fail(ReasonSyntax, c.pos, "unexpected %q %s", b, context)
}

func (c *checker) value() error {
	if c.pos >= len(c.data) {
		return c.unexpected("where a value belongs")
	}
	switch b := c.data[c.pos]; {
	case b == '{':
		return c.object()
	case b == '[':
		return c.array()
	case b == '"':
		_, err := c.str(false)
		return err
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	case b == '-' || '0' <= b && b <= '9':
		return c.number()
	}
	return c.unexpected("where a value belongs")
}

func (c *checker) enter() error {
	c.depth++
	if c.depth > MaxDepth {
		return c.fail(ReasonSyntax, c.pos, "nested more than %d levels deep", MaxDepth)
	}
	c.pos++
	return nil
}

func (c *checker) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	first := len(c.names)
	defer func() { c.names = c.names[:first] }()
	var large map[string][]byte
	c.space()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		c.depth--
		return nil
	}
	for {
		c.space()
		if c.pos >= len(c.data) || c.data[c.pos] != '"' {
			return c.unexpected("where a member name belongs")
		}
		at := c.pos
		name, err := c.str(true)
		if err != nil {
			return err
		}
		if err := c.addName(first, name, at, &large); err != nil {
			return err
		}
		c.space()
		if c.pos >= len(c.data) || c.data[c.pos] != ':' {
			return c.unexpected("after a member name; want ':'")
		}
		c.pos++
		c.space()
		if err := c.value(); err != nil {
			return err
		}
		c.space()
		if c.pos >= len(c.data) {
			return c.unexpected("in an object")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case '}':
			c.pos++
			c.depth--
			return nil
		default:
			return c.unexpected("in an object; want ',' or '}'")
		}
	}
}

// addName records name in the innermost object, whose names start at first, unless the
// object already has it. Objects are small, so comparing with each earlier name beats
// hashing; an object with many members gets a set of case-folded names (*large, built
// on first need) so that checking it stays linear.
func (c *checker) addName(first int, name []byte, at int, large *map[string][]byte) error {
	earlier := c.names[first:]
	if len(earlier) < 32 {
		for _, e := range earlier {
			if bytes.EqualFold(e, name) {
				return c.duplicate(e, name, at)
			}
		}
		c.names = append(c.names, name)
		return nil
	}
	if *large == nil {
		*large = make(map[string][]byte, 2*len(earlier))
		for _, e := range earlier {
			(*large)[foldKey(e)] = e
		}
	}
	key := foldKey(name)
	if e, ok := (*large)[key]; ok {
		return c.duplicate(e, name, at)
	}
	(*large)[key] = name
	c.names = append(c.names, name)
	return nil
}

func (c *checker) duplicate(earlier, name []byte, at int) *Error {
	if bytes.Equal(earlier, name) {
		return c.fail(ReasonDuplicateMember, at, "member name %q appears twice in one object", name)
	}
	return c.fail(ReasonDuplicateMember, at, "member names %q and %q differ only in case, and a decoder would keep one of them", earlier, name)
}

// foldKey maps each character to the smallest one it equals ignoring case, so two names
// have the same key exactly when bytes.EqualFold holds for them.
func foldKey(name []byte) string {
	var b strings.Builder
	for _, r := range string(name) {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

func (c *checker) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.space()
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		c.depth--
		return nil
	}
	for {
		c.space()
		if err := c.value(); err != nil {
			return err
		}
		c.space()
		if c.pos >= len(c.data) {
			return c.unexpected("in an array")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
		case ']':
			c.pos++
			c.depth--
			return nil
		default:
			return c.unexpected("in an array; want ',' or ']'")
		}
	}
}

func (c *checker) literal(word string) error {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(word)) {
		return c.unexpected("where a value belongs")
	}
	c.pos += len(word)
	return nil
}

func (c *checker) number() error {
	digits := func() int {
		start := c.pos
		for c.pos < len(c.data) && '0' <= c.data[c.pos] && c.data[c.pos] <= '9' {
			c.pos++
		}
		return c.pos - start
	}
	if c.data[c.pos] == '-' {
		c.pos++
	}
	switch {
	case c.pos < len(c.data) && c.data[c.pos] == '0':
		c.pos++
	case digits() == 0:
		return c.unexpected("in a number")
	}
	if c.pos < len(c.data) && c.data[c.pos] == '.' {
		c.pos++
		if digits() == 0 {
			return c.unexpected("after a decimal point")
		}
	}
	if c.pos < len(c.data) && (c.data[c.pos] == 'e' || c.data[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.data) && (c.data[c.pos] == '+' || c.data[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return c.unexpected("in an exponent")
		}
	}
	return nil
}

// str checks the string starting at pos (at its opening quote). For a member name
// (name true) it returns the name as a decoder sees it: a slice of the document when it
// has no escapes, else its decoded form.
func (c *checker) str(name bool) ([]byte, error) {
	c.pos++ // opening quote
	start := c.pos
	var decoded []byte // set once an escape is seen in a name
	for c.pos < len(c.data) {
		b := c.data[c.pos]
		switch {
		case b == '"':
			out := c.data[start:c.pos]
			if decoded != nil {
				out = decoded
			}
			c.pos++
			return out, nil
		case b < 0x20:
			return nil, c.fail(ReasonSyntax, c.pos, "control character 0x%02x in a string; it must be escaped", b)
		case b == '\\':
			if name && decoded == nil {
				decoded = append(make([]byte, 0, c.pos-start+8), c.data[start:c.pos]...)
			}
			r, err := c.escape()
			if err != nil {
				return nil, err
			}
			if decoded != nil {
				decoded = utf8.AppendRune(decoded, r)
			}
		case b < utf8.RuneSelf:
			c.pos++
			if decoded != nil {
				decoded = append(decoded, b)
			}
		default:
			r, size := utf8.DecodeRune(c.data[c.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, c.fail(ReasonInvalidUTF8, c.pos, "byte 0x%02x in a string is not UTF-8", b)
			}
			if noncharacter(r) {
				return nil, c.fail(ReasonNoncharacter, c.pos, "noncharacter U+%04X in a string", r)
			}
			if decoded != nil {
				decoded = append(decoded, c.data[c.pos:c.pos+size]...)
			}
			c.pos += size
		}
	}
	return nil, c.fail(ReasonSyntax, c.pos, "unexpected end of data in a string")
}

// escape reads the escape sequence at pos (at its backslash) and returns the character
// it stands for; a surrogate pair, written as two escapes, is one character.
func (c *checker) escape() (rune, error) {
	at := c.pos
	if c.pos+1 >= len(c.data) {
		return 0, c.fail(ReasonSyntax, at, "unexpected end of data in an escape")
	}
	c.pos += 2
	switch c.data[at+1] {
	case '"':
		return '"', nil
	case '\\':
		return '\\', nil
	case '/':
		return '/', nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		return 0, c.fail(ReasonSyntax, at, "invalid escape %q", c.data[at:c.pos])
	}
	r, ok := c.hex4()
	if !ok {
		return 0, c.fail(ReasonSyntax, at, "\\u must be followed by four hex digits")
	}
	switch {
	case 0xDC00 <= r && r <= 0xDFFF:
		return 0, c.fail(ReasonInvalidUTF8, at, "escaped low surrogate \\u%04x without a high surrogate before it", r)
	case 0xD800 <= r && r <= 0xDBFF:
		if c.pos+1 < len(c.data) && c.data[c.pos] == '\\' && c.data[c.pos+1] == 'u' {
			save := c.pos
			c.pos += 2
			if lo, ok := c.hex4(); ok && 0xDC00 <= lo && lo <= 0xDFFF {
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				break
			}
			c.pos = save
		}
		return 0, c.fail(ReasonInvalidUTF8, at, "escaped high surrogate \\u%04x without a low surrogate after it", r)
	}
	if noncharacter(r) {
		return 0, c.fail(ReasonNoncharacter, at, "escaped noncharacter U+%04X", r)
	}
	return r, nil
}

func (c *checker) hex4() (rune, bool) {
	if c.pos+4 > len(c.data) {
		return 0, false
	}
	var r rune
	for _, b := range c.data[c.pos : c.pos+4] {
		switch {
		case '0' <= b && b <= '9':
			r = r<<4 | rune(b-'0')
		case 'a' <= b && b <= 'f':
			r = r<<4 | rune(b-'a'+10)
		case 'A' <= b && b <= 'F':
			r = r<<4 | rune(b-'A'+10)
		default:
			return 0, false
		}
	}
	c.pos += 4
	return r, true
}

// noncharacter reports the 66 code points Unicode reserves for internal use, which
// I-JSON forbids in names and strings: U+FDD0 to U+FDEF, and the last two of each plane.
func noncharacter(r rune) bool {
	return 0xFDD0 <= r && (r <= 0xFDEF || r&0xFFFE == 0xFFFE)
}
