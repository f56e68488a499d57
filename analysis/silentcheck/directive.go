package silentcheck

import (
	"fmt"
	"go/token"
	"os"
	"strings"
)

const suppressTag = "silentcheck:ok"

// Result is what the analyzer hands its driver for one package: the findings a
// //silentcheck:ok directive kept quiet, so that the command can list them in its
// summary. A deliberate drop stays visible, just not failing.
type Result struct {
	Suppressed []Suppressed
}

// Suppressed is one finding kept quiet by a directive.
type Suppressed struct {
	Pos     token.Pos
	Message string // the finding that would have been reported
	Reason  string // the directive's reason
}

// directive is a reasoned //silentcheck:ok comment.
type directive struct {
	reason string
	used   bool
}

// findSuppressions collects the lines with a //silentcheck:ok <reason> comment (a space
// after the slashes is allowed too) and reports the ones without a reason.
func (c *checker) findSuppressions() {
	for _, f := range c.pass.Files {
		tf := c.pass.Fset.File(f.Pos())
		if tf == nil {
			continue
		}
		for _, group := range f.Comments {
			for _, cm := range group.List {
				text := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(cm.Text, "//"), "/*"))
				text = strings.TrimSpace(strings.TrimSuffix(text, "*/"))
				if !strings.HasPrefix(text, suppressTag) {
					continue
				}
				rest := strings.TrimPrefix(text, suppressTag)
				if rest != "" && !startsWithSpace(rest) {
					continue // some other word, e.g. silentcheck:okay
				}
				if i := strings.Index(rest, "//"); i >= 0 {
					rest = rest[:i] // a second comment on the line is not the reason
				}
				reason := strings.TrimSpace(rest)
				if reason == "" {
					c.pass.Reportf(cm.Pos(), "silentcheck:ok needs a reason: write //silentcheck:ok <why this branch may stay silent>; without one it suppresses nothing")
					continue
				}
				lines := c.suppressed[tf]
				if lines == nil {
					lines = map[int]*directive{}
					c.suppressed[tf] = lines
				}
				lines[tf.Line(cm.Pos())] = &directive{reason: reason}
			}
		}
	}
}

func startsWithSpace(s string) bool { return s[0] == ' ' || s[0] == '\t' }

// report reports a finding at pos unless a directive covers it: on its line, on the
// line above, or on any line up to end (for findings about a whole block). A covered
// finding goes to the Result instead.
func (c *checker) report(pos, end token.Pos, format string, args ...any) {
	if d := c.directiveFor(pos, end); d != nil {
		d.used = true
		s := Suppressed{Pos: pos, Message: sprintf(format, args...), Reason: d.reason}
		c.result.Suppressed = append(c.result.Suppressed, s)
		if listKept {
			fmt.Fprintf(os.Stderr, "%s: kept by //silentcheck:ok %q: %s\n", c.pass.Fset.Position(pos), s.Reason, s.Message)
		}
		return
	}
	c.pass.Reportf(pos, format, args...)
}

func (c *checker) directiveFor(pos, end token.Pos) *directive {
	tf := c.pass.Fset.File(pos)
	if tf == nil {
		return nil
	}
	lines := c.suppressed[tf]
	if lines == nil {
		return nil
	}
	first := tf.Line(pos)
	last := first
	if end.IsValid() && end > pos {
		last = tf.Line(end)
	}
	for l := first - 1; l <= last; l++ {
		if d := lines[l]; d != nil {
			return d
		}
	}
	return nil
}
