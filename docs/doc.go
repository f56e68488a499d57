// Package docs is the project's documentation: the design, the guides for drills and
// alerts, performance, security and scale-out, all in Markdown. Its test checks that the
// README and these pages link only to files and headings that exist.
package docs
