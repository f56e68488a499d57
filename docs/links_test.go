package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// link is a Markdown inline link or image: [text](target) or ![alt](target).
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// pages are the Markdown files whose links are checked: the README and everything in docs/.
func pages(t *testing.T) []string {
	t.Helper()
	files := []string{"../README.md"}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// slug is the anchor GitHub gives a heading: lower case, spaces to hyphens, every other
// character but letters, digits, hyphens and underscores dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are the heading anchors of a Markdown file, outside code blocks.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		out[slug(strings.TrimLeft(line, "#"))] = true
	}
	return out
}

// withoutCode drops fenced code blocks and inline code, where brackets are not links.
func withoutCode(text string) string {
	var b strings.Builder
	fenced := false
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			b.WriteString(regexp.MustCompile("`[^`]*`").ReplaceAllString(line, "") + "\n")
		}
	}
	return b.String()
}

// Every relative link of the README and of docs/ points at a file or directory of the
// repository, and an anchor into a Markdown file at one of its headings: a clone has no
// dead link.
func TestLinks_PointAtWhatExists(t *testing.T) {
	checked := 0
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, m := range link.FindAllStringSubmatch(withoutCode(text), -1) {
			target := m[1]
			// Web addresses, and the runbooks' links into Grafana (/d/UID), are not files.
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "/") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s links %s: %v", page, target, err)
					continue
				}
			}
			checked++
			if anchor == "" || !strings.HasSuffix(file, ".md") {
				continue
			}
			linked, err := os.ReadFile(file)
			if err != nil {
				t.Errorf("%s links %s: %v", page, target, err)
				continue
			}
			if !anchors(string(linked))[anchor] {
				t.Errorf("%s links %s: %s has no heading #%s", page, target, file, anchor)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: the link pattern no longer matches the pages", checked)
	}
}

// The README is for users: short enough to read from the clone to a fired alert, and
// nothing in the repository's documentation points outside it.
func TestReadme_ShortAndSelfContained(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n >= 400 {
		t.Errorf("README.md has %d lines; keep it under 400 and move detail into docs/", n)
	}
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "../shared") {
			t.Errorf("%s refers to ../shared, which is outside the repository", page)
		}
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		" Demo without Docker":                "demo-without-docker",
		" No silent paths: `silentcheck`":     "no-silent-paths-silentcheck",
		" The drill path (alert → dashboard)": "the-drill-path-alert--dashboard",
		" Load test and soak":                 "load-test-and-soak",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}
