package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/services/events"
)

// The dlq group works on the dead-letter stream through package deadletter only, so the
// CLI and the consumers agree on what a letter is.
var dlqCommands = []command{
	{name: "list", args: "[-limit N] [-json]", summary: "list dead letters, oldest first", runE: dlqList},
	{name: "show", args: "SEQ [-json]", summary: "show everything about one dead letter", runE: dlqShow},
	{name: "redrive", args: "SEQ... | -all [-reason R] [-consumer C] [-dry-run]", summary: "publish dead letters back to their original subject", runE: dlqRedrive},
	{name: "stats", args: "[-json]", summary: "count dead letters per consumer and reason", runE: dlqStats},
}

func runDLQ(ctx context.Context, c *cli, self command, args []string) error {
	return c.runGroup(ctx, group{
		name:     self.name,
		about:    "Dead letters are the messages a consumer gave up on, kept in the " + deadletter.Stream + " stream\nwith the reason; SEQ is a letter's sequence in that stream.",
		commands: dlqCommands,
	}, args)
}

func dlqList(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Lists dead letters, oldest first: sequence, when and by which consumer it was given up,\n"+
		"why, after how many deliveries, the original subject and Nats-Msg-Id, the order it is\n"+
		"about (the payload's key, when it has one) and the start of the error.")
	limit := l.fs.Int("limit", 100, "show at most `N` letters; 0 shows all")
	asJSON := l.fs.Bool("json", false, "print a JSON array instead of a table")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return l.usagef("-limit must be 0 or more")
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()

	letters, err := deadletter.List(ctx, js, *limit)
	if err != nil {
		return explain(err)
	}
	total := uint64(len(letters))
	if *limit > 0 && len(letters) == *limit {
		if total, err = deadletter.Count(ctx, js); err != nil {
			return explain(err)
		}
	}
	if total > uint64(len(letters)) {
		// On stderr, so stdout stays exactly a table (or one JSON document) for scripts.
		fmt.Fprintf(c.stderr, "showing %d of %d dead letters, oldest first; -limit 0 shows all\n", len(letters), total)
	}

	if *asJSON {
		views := make([]letterView, 0, len(letters))
		for _, lt := range letters {
			views = append(views, describe(lt))
		}
		return c.writeJSON(views)
	}
	if len(letters) == 0 {
		fmt.Fprintln(c.stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCONSUMER\tOUTCOME\tREASON\tDELIVERIES\tSUBJECT\tMSG-ID\tKEY\tERROR")
	for _, lt := range letters {
		v := describe(lt)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			lt.Seq, when(lt.Time), cell(lt.Consumer, 0), cell(lt.Outcome, 0), cell(lt.Reason, 0), lt.Deliveries,
			cell(lt.Subject, 0), cell(v.MsgID, 0), cell(v.Key, 0), cell(lt.Error, 48))
	}
	tw.Flush()
	return nil
}

func dlqShow(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Shows one dead letter: the dead-letter headers (why, when, by whom), the original\n"+
		"message's headers, and its payload, pretty-printed when it is JSON and quoted otherwise.")
	asJSON := l.fs.Bool("json", false, "print the letter as a JSON object")
	pos, err := l.parseArgs(args, 1, 1)
	if err != nil {
		return err
	}
	seq, err := parseSeq(pos[0])
	if err != nil {
		return l.usagef("%v", err)
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()

	lt, err := deadletter.Get(ctx, js, seq)
	if err != nil {
		return letterError(seq, err)
	}
	v := describe(lt)
	if *asJSON {
		return c.writeJSON(v)
	}

	w := c.stdout
	fmt.Fprintf(w, "Dead letter %d in stream %s\n\nDead-letter headers:\n", lt.Seq, deadletter.Stream)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, h := range [][2]string{
		{deadletter.HeaderTime, timestamp(lt.Time)},
		{deadletter.HeaderConsumer, lt.Consumer},
		{deadletter.HeaderOutcome, lt.Outcome},
		{deadletter.HeaderReason, lt.Reason},
		{deadletter.HeaderDeliveries, strconv.FormatUint(lt.Deliveries, 10)},
		{deadletter.HeaderStream, lt.Stream},
		{deadletter.HeaderStreamSeq, strconv.FormatUint(lt.StreamSeq, 10)},
		{deadletter.HeaderSubject, lt.Subject},
		{deadletter.HeaderError, lt.Error},
	} {
		if h[1] != "" {
			fmt.Fprintf(tw, "  %s:\t%s\n", h[0], printable(h[1]))
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nOriginal headers:")
	if len(lt.Headers) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	keys := make([]string, 0, len(lt.Headers))
	for k := range lt.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, k := range keys {
		for _, val := range lt.Headers[k] {
			fmt.Fprintf(tw, "  %s:\t%s\n", printable(k), printable(val))
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Key:\t%s\n", cell(v.Key, 0))
	if v.EventError == "" {
		fmt.Fprintf(tw, "Event:\tvalid %s event\n", printable(v.eventType))
	} else {
		fmt.Fprintf(tw, "Event:\tnot a valid event: %s\n", printable(v.EventError))
	}
	tw.Flush()

	fmt.Fprintln(w)
	switch {
	case len(lt.Data) == 0:
		fmt.Fprintln(w, "Payload: (empty)")
	case v.Payload != nil:
		fmt.Fprintf(w, "Payload (%d bytes, JSON):\n%s\n", len(lt.Data), prettyJSON(lt.Data))
	default:
		fmt.Fprintf(w, "Payload (%d bytes, not JSON):\n%s\n", len(lt.Data), strconv.Quote(string(lt.Data)))
	}
	return nil
}

func dlqRedrive(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Publishes dead letters back to the subject they came from, with their original payload\n"+
		"and headers (a new Nats-Msg-Id, so the broker's duplicate window does not swallow them,\n"+
		"and "+deadletter.HeaderRedriven+" set to SEQ), and deletes each letter once the broker has\n"+
		"confirmed the publish. Give sequences, or -all with optional filters.")
	all := l.fs.Bool("all", false, "redrive every letter (that matches -reason and -consumer)")
	reason := l.fs.String("reason", "", "with -all: only letters whose reason is `R`")
	consumer := l.fs.String("consumer", "", "with -all: only letters from consumer `C`")
	dryRun := l.fs.Bool("dry-run", false, "print what would be redriven, change nothing")
	pos, err := l.parseArgs(args, 0, -1)
	if err != nil {
		return err
	}
	var seqs []uint64
	for _, p := range pos {
		seq, err := parseSeq(p)
		if err != nil {
			return l.usagef("%v", err)
		}
		seqs = append(seqs, seq)
	}
	switch {
	case *all && len(seqs) > 0:
		return l.usagef("give sequences or -all, not both")
	case !*all && len(seqs) == 0:
		return l.usagef("which letters? give sequences, or -all")
	case !*all && (*reason != "" || *consumer != ""):
		return l.usagef("-reason and -consumer filter -all")
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()

	// Work from the letters themselves, so each line can say where a letter went.
	var letters []deadletter.Letter
	if *all {
		list, err := deadletter.List(ctx, js, 0)
		if err != nil {
			return explain(err)
		}
		for _, lt := range list {
			if (*reason == "" || lt.Reason == *reason) && (*consumer == "" || lt.Consumer == *consumer) {
				letters = append(letters, lt)
			}
		}
		if len(letters) == 0 {
			fmt.Fprintln(c.stdout, "no dead letters match")
			return nil
		}
	} else {
		for _, seq := range seqs {
			lt, err := deadletter.Get(ctx, js, seq)
			if err != nil {
				fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), letterError(seq, err))
				continue
			}
			letters = append(letters, lt)
		}
	}

	done := 0
	for _, lt := range letters {
		if ctx.Err() != nil {
			break // interrupted: what is left stays in the stream, and the count says so
		}
		if *dryRun {
			fmt.Fprintf(c.stdout, "would redrive %d to %s (consumer %s, reason %s)\n", lt.Seq, cell(lt.Subject, 0), cell(lt.Consumer, 0), cell(lt.Reason, 0))
			done++
			continue
		}
		if err := deadletter.Redrive(ctx, js, lt.Seq); err != nil {
			fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), letterError(lt.Seq, err))
			continue
		}
		fmt.Fprintf(c.stdout, "redriven %d to %s\n", lt.Seq, cell(lt.Subject, 0))
		done++
	}
	tried := len(seqs)
	if *all {
		tried = len(letters)
	}
	verb := "redriven"
	if *dryRun {
		verb = "would redrive"
	}
	if done == tried {
		fmt.Fprintf(c.stdout, "%s %d %s\n", verb, done, plural(done, "letter", "letters"))
		return nil
	}
	fmt.Fprintf(c.stdout, "%s %d of %d %s; %d failed\n", verb, done, tried, plural(tried, "letter", "letters"), tried-done)
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return fmt.Errorf("%d of %d %s not redriven", tried-done, tried, plural(tried, "letter", "letters"))
}

func dlqStats(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Counts dead letters per consumer and reason, with the oldest and newest of each.")
	asJSON := l.fs.Bool("json", false, "print a JSON array instead of a table")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()

	letters, err := deadletter.List(ctx, js, 0)
	if err != nil {
		return explain(err)
	}
	type key struct{ consumer, reason string }
	type row struct {
		Consumer string    `json:"consumer"`
		Reason   string    `json:"reason"`
		Count    int       `json:"count"`
		Oldest   time.Time `json:"oldest"`
		Newest   time.Time `json:"newest"`
	}
	byKey := map[key]*row{}
	for _, lt := range letters {
		k := key{lt.Consumer, lt.Reason}
		r := byKey[k]
		if r == nil {
			r = &row{Consumer: lt.Consumer, Reason: lt.Reason, Oldest: lt.Time, Newest: lt.Time}
			byKey[k] = r
		}
		r.Count++
		if lt.Time.Before(r.Oldest) {
			r.Oldest = lt.Time
		}
		if lt.Time.After(r.Newest) {
			r.Newest = lt.Time
		}
	}
	rows := make([]row, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, *r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Consumer != rows[j].Consumer {
			return rows[i].Consumer < rows[j].Consumer
		}
		return rows[i].Reason < rows[j].Reason
	})

	if *asJSON {
		return c.writeJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(c.stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSUMER\tREASON\tCOUNT\tOLDEST\tNEWEST")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", cell(r.Consumer, 0), cell(r.Reason, 0), r.Count, when(r.Oldest), when(r.Newest))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "total %d %s\n", len(letters), plural(len(letters), "letter", "letters"))
	return nil
}

// letterView is a letter as the CLI shows it: the letter itself, and what can be read
// from it without knowing which consumer it belongs to.
type letterView struct {
	deadletter.Letter
	MsgID      string          `json:"msg_id,omitempty"`      // the original Nats-Msg-Id
	Key        string          `json:"key,omitempty"`         // the entity the payload is about (its envelope key)
	EventError string          `json:"event_error,omitempty"` // why the payload is not a valid event
	Payload    json.RawMessage `json:"payload,omitempty"`     // the payload again, readable, when it is JSON

	eventType string
}

// describe reads the entity key from a letter's payload: from the event when it is a
// valid one, and otherwise from any "key" string in a JSON object, since a letter is often
// there precisely because its event is not valid (an unknown version, a bad field).
func describe(lt deadletter.Letter) letterView {
	v := letterView{Letter: lt, MsgID: lt.Headers.Get(jetstream.MsgIDHeader)}
	if env, err := events.Decode(lt.Data); err == nil {
		v.Key, v.eventType = env.Key, env.Type
	} else {
		v.EventError = err.Error()
		var loose struct {
			Key any `json:"key"`
		}
		if json.Unmarshal(lt.Data, &loose) == nil {
			v.Key, _ = loose.Key.(string)
		}
	}
	if json.Valid(lt.Data) {
		v.Payload = lt.Data
	}
	return v
}

// parseSeq reads a letter's sequence; sequences start at 1.
func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("SEQ %q: want a dead-letter sequence, a whole number from 1", s)
	}
	return seq, nil
}

// explain adds to err what an operator can do about it.
func explain(err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s does not exist on this server; Loudly's services create it when they start: %w", deadletter.Stream, err)
	}
	return err
}

// letterError is explain for one letter.
func letterError(seq uint64, err error) error {
	if errors.Is(err, deadletter.ErrNotFound) {
		return fmt.Errorf("no dead letter %d (never was, expired, or already redriven)", seq)
	}
	return explain(fmt.Errorf("dead letter %d: %w", seq, err))
}

// cell makes an untrusted string safe for one table cell: "-" when empty (so every row
// has every column), whitespace collapsed (a tab would split the cell, a newline the
// row), no control characters (a payload must not drive the terminal), and at most max
// runes (0: no limit).
func cell(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) && r != ' ' {
			return '?'
		}
		return r
	}, s)
	if max > 0 && utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// printable returns s as it is when every rune in it prints, and Go-quoted otherwise, so a
// header value shows exactly what it holds and cannot drive the terminal.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// prettyJSON indents a valid JSON document and escapes the characters JSON allows raw in
// strings but a terminal would act on (DEL, C1 controls, bidirectional overrides), which
// keeps the output valid JSON.
func prettyJSON(data []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return strconv.Quote(string(data))
	}
	var out strings.Builder
	for _, r := range buf.String() {
		if r == '\n' || unicode.IsPrint(r) {
			out.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.String()
}

// when is a table's time: UTC to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// timestamp is a detail view's time: UTC, exact.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
