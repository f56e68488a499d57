package silentcheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/inspect"
	"golang.org/x/tools/go/ast/inspector"
	"golang.org/x/tools/go/types/typeutil"
)

// Analyzer reports branches of message-handling code that drop work without a trace.
var Analyzer = &analysis.Analyzer{
	Name: "silentcheck",
	Doc: "report message handlers whose branches drop work without a trace\n\n" +
		"A branch of a NATS/JetStream message handler must not return success (return nil), " +
		"acknowledge or terminate the message, or swallow an error without recording a " +
		"decision: returning an outcome or an error, logging, a span event, a metric or " +
		"a call to the decision recorder. Write `// silentcheck:ok <reason>` on the line " +
		"of a finding to keep a deliberate one.",
	Requires:  []*analysis.Analyzer{inspect.Analyzer},
	FactTypes: []analysis.Fact{new(recordsFact)},
	Run:       run,
}

// recordsFact marks a function whose body records something (logs, records a decision,
// adds a span event or a metric), so that calling it from a branch counts as recording.
type recordsFact struct{}

func (*recordsFact) AFact()         {}
func (*recordsFact) String() string { return "records" }

const suppressTag = "silentcheck:ok"

// Package paths and names of the message types the analyzer knows by name.
const (
	natsPath      = "github.com/nats-io/nats.go"
	jetstreamPath = "github.com/nats-io/nats.go/jetstream"
)

// settleMethods settle a message with the broker; their presence in a function's body
// makes it message-handling code.
var settleMethods = map[string]bool{
	"Ack": true, "AckSync": true, "DoubleAck": true, "Term": true, "TermWithReason": true,
	"Nak": true, "NakWithDelay": true, "InProgress": true,
}

// dropMethods remove the message from the broker for good: rule 2 is about them.
var dropMethods = map[string]bool{
	"Ack": true, "AckSync": true, "DoubleAck": true, "Term": true, "TermWithReason": true,
}

// positiveAcks tell the broker the work succeeded.
var positiveAcks = map[string]bool{"Ack": true, "AckSync": true, "DoubleAck": true}

var (
	slogEmitters = map[string]bool{
		"Debug": true, "DebugContext": true, "Info": true, "InfoContext": true,
		"Warn": true, "WarnContext": true, "Error": true, "ErrorContext": true,
		"Log": true, "LogAttrs": true,
	}
	logEmitters = map[string]bool{
		"Print": true, "Printf": true, "Println": true, "Fatal": true, "Fatalf": true,
		"Fatalln": true, "Panic": true, "Panicf": true, "Panicln": true, "Output": true,
	}
	spanRecorders = map[string]bool{"AddEvent": true, "RecordError": true, "SetStatus": true}
	promRecorders = map[string]bool{"Inc": true, "Add": true, "Observe": true}
)

var errorType = types.Universe.Lookup("error").Type().Underlying().(*types.Interface)

func run(pass *analysis.Pass) (any, error) {
	c := &checker{pass: pass, records: map[*types.Func]bool{}, suppressed: map[*token.File]map[int]bool{}}
	c.findSuppressions()
	c.findRecorders()

	ins := pass.ResultOf[inspect.Analyzer].(*inspector.Inspector)
	ins.Preorder([]ast.Node{(*ast.FuncDecl)(nil), (*ast.FuncLit)(nil)}, func(n ast.Node) {
		switch fn := n.(type) {
		case *ast.FuncDecl:
			if fn.Body == nil {
				return
			}
			obj, _ := pass.TypesInfo.Defs[fn.Name].(*types.Func)
			if obj == nil {
				return
			}
			c.checkFunc(obj.Type().(*types.Signature), fn.Body)
		case *ast.FuncLit:
			sig, _ := pass.TypesInfo.TypeOf(fn).(*types.Signature)
			if sig == nil {
				return
			}
			c.checkFunc(sig, fn.Body)
		}
	})
	return nil, nil
}

type checker struct {
	pass       *analysis.Pass
	records    map[*types.Func]bool         // functions of this package that record
	suppressed map[*token.File]map[int]bool // lines carrying a reasoned silentcheck:ok
}

// findSuppressions collects the lines with a `// silentcheck:ok <reason>` comment and
// reports the ones without a reason.
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
				if strings.TrimSpace(rest) == "" {
					c.pass.Reportf(cm.Pos(), "silentcheck:ok needs a reason: write // silentcheck:ok <why this branch may stay silent>; without one it suppresses nothing")
					continue
				}
				lines := c.suppressed[tf]
				if lines == nil {
					lines = map[int]bool{}
					c.suppressed[tf] = lines
				}
				lines[tf.Line(cm.Pos())] = true
			}
		}
	}
}

func startsWithSpace(s string) bool { return s[0] == ' ' || s[0] == '\t' }

// isSuppressed reports whether a silentcheck:ok comment covers pos: on its line, on the
// line above, or on any line up to end (for findings about a whole block).
func (c *checker) isSuppressed(pos, end token.Pos) bool {
	tf := c.pass.Fset.File(pos)
	if tf == nil {
		return false
	}
	lines := c.suppressed[tf]
	if lines == nil {
		return false
	}
	first := tf.Line(pos)
	last := first
	if end.IsValid() && end > pos {
		last = tf.Line(end)
	}
	for l := first - 1; l <= last; l++ {
		if lines[l] {
			return true
		}
	}
	return false
}

// findRecorders marks the functions of this package that record something on their main
// path (not only in some branch), directly or through another such function, and exports
// the mark as a fact for importing packages.
func (c *checker) findRecorders() {
	type decl struct {
		obj  *types.Func
		body *ast.BlockStmt
	}
	var decls []decl
	for _, f := range c.pass.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			if obj, ok := c.pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
				decls = append(decls, decl{obj, fd.Body})
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, d := range decls {
			if c.records[d.obj] {
				continue
			}
			if c.recordsOnMainPath(d.body.List) {
				c.records[d.obj] = true
				changed = true
			}
		}
	}
	for _, d := range decls {
		if c.records[d.obj] {
			c.pass.ExportObjectFact(d.obj, new(recordsFact))
		}
	}
}

// recordsOnMainPath reports whether stmts record something outside every branch and loop
// body: whatever the function does, it leaves that trace (or returns before it).
func (c *checker) recordsOnMainPath(stmts []ast.Stmt) bool {
	found := false
	var visit func(n ast.Node, inLit bool) bool
	visit = func(n ast.Node, inLit bool) bool {
		if found {
			return false
		}
		var heads []ast.Node // the parts of a branching statement that always run
		switch n := n.(type) {
		case *ast.IfStmt:
			heads = []ast.Node{n.Init, n.Cond}
		case *ast.SwitchStmt:
			heads = []ast.Node{n.Init, n.Tag}
		case *ast.TypeSwitchStmt:
			heads = []ast.Node{n.Init, n.Assign}
		case *ast.ForStmt:
			heads = []ast.Node{n.Init, n.Cond}
		case *ast.RangeStmt:
			heads = []ast.Node{n.X}
		case *ast.SelectStmt:
			return false
		case *ast.CallExpr:
			if c.isRecordingCall(n) {
				found = true
			}
			return !found
		default:
			return true
		}
		for _, h := range heads {
			if h != nil {
				c.inspectBody(h, visit)
			}
		}
		return false
	}
	for _, s := range stmts {
		c.inspectBody(s, visit)
	}
	return found
}

// isRecordingCall reports whether call leaves a trace: a log line, a decision, a span
// event or status, a metric, or a call to a function known to do one of those.
func (c *checker) isRecordingCall(call *ast.CallExpr) bool {
	fn, _ := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
	if fn == nil {
		return false
	}
	fn = fn.Origin()
	name := fn.Name()
	sig, _ := fn.Type().(*types.Signature)
	isMethod := sig != nil && sig.Recv() != nil
	path := ""
	if fn.Pkg() != nil {
		path = fn.Pkg().Path()
	}
	switch {
	case path == "log/slog":
		return slogEmitters[name]
	case path == "log":
		return logEmitters[name]
	case isMethod && name == "Record":
		return true // the decision helper, and OTel histograms
	case isMethod && spanRecorders[name]:
		return true
	case isMethod && name == "Add" && strings.HasPrefix(path, "go.opentelemetry.io/otel/metric"):
		return true
	case isMethod && promRecorders[name] && path == "github.com/prometheus/client_golang/prometheus":
		return true
	}
	if fn.Pkg() == c.pass.Pkg {
		return c.records[fn]
	}
	return c.pass.ImportObjectFact(fn, new(recordsFact))
}

// stmtsRecord reports whether stmts, a branch of a function, record something before
// limit (anywhere when limit is NoPos). Returns of the function with an explicit value
// count too, except a return of the error of the call skip (a settlement's own error).
func (c *checker) stmtsRecord(stmts []ast.Stmt, limit token.Pos, skip *ast.CallExpr) bool {
	found := false
	for _, s := range stmts {
		if found || (limit.IsValid() && s.Pos() >= limit) {
			break
		}
		c.inspectBody(s, func(n ast.Node, inLit bool) bool {
			if found || (limit.IsValid() && n.Pos() >= limit) {
				return false
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				if c.isRecordingCall(n) {
					found = true
				}
			case *ast.ReturnStmt:
				if !inLit && c.returnsExplicit(n, skip) {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// inspectBody walks n without entering function literals, except those called on the
// spot (defer func() { ... }(), func() { ... }()), whose nodes are visited with inLit set.
func (c *checker) inspectBody(n ast.Node, visit func(n ast.Node, inLit bool) bool) {
	var walk func(n ast.Node, inLit bool)
	walk = func(n ast.Node, inLit bool) {
		ast.Inspect(n, func(m ast.Node) bool {
			if m == nil {
				return false
			}
			switch m := m.(type) {
			case *ast.FuncLit:
				return false
			case *ast.GoStmt:
				// A goroutine's body may run after the branch is long gone: only the
				// arguments, evaluated here, count.
				if _, ok := ast.Unparen(m.Call.Fun).(*ast.FuncLit); !ok {
					return visit(m, inLit)
				}
				if !visit(m, inLit) {
					return false
				}
				for _, a := range m.Call.Args {
					walk(a, inLit)
				}
				return false
			case *ast.CallExpr:
				if !visit(m, inLit) {
					return false
				}
				if lit, ok := ast.Unparen(m.Fun).(*ast.FuncLit); ok {
					walk(lit.Body, true)
					for _, a := range m.Args {
						walk(a, inLit)
					}
					return false
				}
				return true
			}
			return visit(m, inLit)
		})
	}
	walk(n, false)
}

// returnsExplicit reports whether ret hands something to the caller: a non-nil value of
// a non-error type (an outcome) or a non-nil error other than skip's.
func (c *checker) returnsExplicit(ret *ast.ReturnStmt, skip *ast.CallExpr) bool {
	if len(ret.Results) == 0 {
		return false // what a bare return hands back is not visible here
	}
	for _, e := range ret.Results {
		if c.isNil(e) {
			continue
		}
		if skip != nil && ast.Unparen(e) == skip {
			continue
		}
		return true
	}
	return false
}

func (c *checker) isNil(e ast.Expr) bool {
	tv, ok := c.pass.TypesInfo.Types[e]
	return ok && tv.IsNil()
}

// isMessageType reports whether t is a message a handler receives.
func isMessageType(t types.Type) bool {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	if n, ok := t.(*types.Named); ok && n.Obj().Pkg() != nil {
		path, name := trimVendor(n.Obj().Pkg().Path()), n.Obj().Name()
		switch {
		case name == "Msg" && (path == natsPath || path == jetstreamPath):
			return true
		case name == "Message" && (path == "consumer" || strings.HasSuffix(path, "/consumer")):
			return true
		}
	}
	return hasMessageMethods(t)
}

// hasMessageMethods reports whether t has Ack() error (variadic options allowed) and
// Data() []byte.
func hasMessageMethods(t types.Type) bool {
	ack, _, _ := types.LookupFieldOrMethod(t, true, nil, "Ack")
	data, _, _ := types.LookupFieldOrMethod(t, true, nil, "Data")
	ackFn, ok1 := ack.(*types.Func)
	dataFn, ok2 := data.(*types.Func)
	if !ok1 || !ok2 {
		return false
	}
	as := ackFn.Type().(*types.Signature)
	ds := dataFn.Type().(*types.Signature)
	ackOK := (as.Params().Len() == 0 || (as.Params().Len() == 1 && as.Variadic())) &&
		as.Results().Len() == 1 && types.Identical(as.Results().At(0).Type(), types.Universe.Lookup("error").Type())
	dataOK := ds.Params().Len() == 0 && ds.Results().Len() == 1 &&
		types.Identical(ds.Results().At(0).Type(), types.NewSlice(types.Typ[types.Byte]))
	return ackOK && dataOK
}

func trimVendor(path string) string {
	if i := strings.LastIndex(path, "/vendor/"); i >= 0 {
		return path[i+len("/vendor/"):]
	}
	return path
}

// settleCall returns the method name when call settles a message (m.Ack(), …).
func (c *checker) settleCall(call *ast.CallExpr) (string, bool) {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || !settleMethods[sel.Sel.Name] {
		return "", false
	}
	s := c.pass.TypesInfo.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal || !isMessageType(s.Recv()) {
		return "", false
	}
	return sel.Sel.Name, true
}

// isMessageHandler reports whether a function with this signature and body is
// message-handling code: it receives a message or settles one.
func (c *checker) isMessageHandler(sig *types.Signature, body *ast.BlockStmt) bool {
	if receivesMessage(sig) {
		return true
	}
	settles := false
	c.inspectBody(body, func(n ast.Node, _ bool) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if _, ok := c.settleCall(call); ok {
				settles = true
			}
		}
		return !settles
	})
	return settles
}

func receivesMessage(sig *types.Signature) bool {
	for v := range sig.Params().Variables() {
		if isMessageType(v.Type()) {
			return true
		}
	}
	return false
}

// branch is the innermost if/else/case block holding a node.
type branch struct {
	stmts     []ast.Stmt
	desc      string         // how the diagnostic names it
	errBranch bool           // taken when an error is not nil
	okBranch  bool           // taken when an error is nil: the success path
	errVars   []types.Object // the error variables its condition tests
}

// checkFunc applies the rules to one function body, leaving nested function literals to
// their own visit.
func (c *checker) checkFunc(sig *types.Signature, body *ast.BlockStmt) {
	if !c.isMessageHandler(sig, body) {
		return
	}
	var stack []ast.Node
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return false
		}
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *ast.ReturnStmt:
			c.checkReturn(n, sig, stack)
		case *ast.CallExpr:
			if name, ok := c.settleCall(n); ok && dropMethods[name] {
				c.checkSettle(n, name, stack)
			}
		case *ast.IfStmt:
			if len(n.Body.List) == 0 {
				if ok, _ := c.errCheck(n.Cond, true); ok {
					c.reportEmpty(n.Pos(), n.Body.Rbrace, "if "+c.text(n.Cond))
				}
			}
		case *ast.CaseClause:
			if len(n.Body) == 0 && len(stack) >= 3 {
				if sw, ok := stack[len(stack)-3].(*ast.SwitchStmt); ok && sw.Tag == nil {
					for _, e := range n.List {
						if ok, _ := c.errCheck(e, true); ok {
							c.reportEmpty(n.Pos(), n.End(), "case "+c.exprList(n.List))
							break
						}
					}
				}
			}
		}
		return true
	})
}

func (c *checker) reportEmpty(pos, end token.Pos, desc string) {
	if c.isSuppressed(pos, end) {
		return
	}
	c.pass.Reportf(pos, "silent path: empty error branch %q in a message handler swallows the error; "+
		"return an outcome (consumer.Retry(reason, err)), return the error, or record it with telemetry Decisions.Record", desc)
}

// checkReturn applies rule 1 to ret, the top of stack.
func (c *checker) checkReturn(ret *ast.ReturnStmt, sig *types.Signature, stack []ast.Node) {
	results := sig.Results()
	what := "returns nil from a message handler without recording a decision"
	fix := "return an outcome (consumer.Invalid(reason, err)) or record it with telemetry Decisions.Record before returning"
	switch {
	case len(ret.Results) > 0:
		if results.Len() == 0 || !isError(results.At(results.Len()-1).Type()) {
			return
		}
		for _, e := range ret.Results {
			if !c.isNil(e) {
				return
			}
		}
	case results.Len() == 0:
		if !receivesMessage(sig) {
			return
		}
		what = "returns from a message handler without settling the message or recording a decision"
		fix = "record it with telemetry Decisions.Record and settle it (NakWithDelay to retry, TermWithReason once dead-lettered) before returning, or hand the message to the consumer runner"
	case results.Len() == 1 && isError(results.At(0).Type()) && results.At(0).Name() != "":
		what = "ends with a bare return that reports success (" + results.At(0).Name() +
			" is not set) from a message handler without recording a decision"
	default:
		return
	}
	b := c.innermostBranch(stack)
	if b == nil || b.okBranch {
		return // the main path or the success path of an error check, not an early exit
	}
	if results.Len() == 1 && len(ret.Results) == 0 {
		named := results.At(0)
		for _, v := range b.errVars {
			if v == named {
				return // the branch tests the error it returns
			}
		}
		if c.assignsBefore(b.stmts, named, ret.Pos()) {
			return
		}
	}
	if c.settlesBefore(b.stmts, ret.Pos()) {
		return // the settlement is what rule 2 judges
	}
	if c.stmtsRecord(b.stmts, ret.Pos(), nil) {
		return
	}
	if c.isSuppressed(ret.Pos(), token.NoPos) {
		return
	}
	c.pass.Reportf(ret.Pos(), "silent path: branch %q %s; %s", b.desc, what, fix)
}

// checkSettle applies rule 2 to a call that acks or terminates a message.
func (c *checker) checkSettle(call *ast.CallExpr, name string, stack []ast.Node) {
	b := c.innermostBranch(stack)
	if b == nil || (b.okBranch && positiveAcks[name]) {
		return // acking on the main path or the success path of an error check
	}
	recv := c.text(ast.Unparen(call.Fun).(*ast.SelectorExpr).X) + "." + name
	if b.errBranch && positiveAcks[name] {
		if c.isSuppressed(call.Pos(), token.NoPos) {
			return
		}
		c.pass.Reportf(call.Pos(), "silent path: branch %q acknowledges the message (%s) on an error path, "+
			"so the broker deletes it as if it had succeeded; return an outcome (consumer.Retry(reason, err) "+
			"or consumer.Invalid(reason, err)) and let the runner settle it", b.desc, recv)
		return
	}
	if c.stmtsRecord(b.stmts, token.NoPos, call) || c.isSuppressed(call.Pos(), token.NoPos) {
		return
	}
	fix := "consumer.Applied(reason) or consumer.Duplicate(reason)"
	if !positiveAcks[name] {
		fix = "consumer.Invalid(reason, err), which dead-letters it"
	}
	c.pass.Reportf(call.Pos(), "silent path: branch %q settles the message (%s) without recording a decision; "+
		"return an outcome (%s) or record it with telemetry Decisions.Record before settling", b.desc, recv, fix)
}

// settlesBefore reports whether stmts settle a message (other than InProgress) before pos.
func (c *checker) settlesBefore(stmts []ast.Stmt, pos token.Pos) bool {
	found := false
	for _, s := range stmts {
		if s.Pos() >= pos {
			break
		}
		c.inspectBody(s, func(n ast.Node, _ bool) bool {
			if call, ok := n.(*ast.CallExpr); ok && call.Pos() < pos {
				if name, ok := c.settleCall(call); ok && name != "InProgress" {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// assignsBefore reports whether stmts assign a non-nil value to v before pos.
func (c *checker) assignsBefore(stmts []ast.Stmt, v *types.Var, pos token.Pos) bool {
	found := false
	for _, s := range stmts {
		if s.Pos() >= pos {
			break
		}
		c.inspectBody(s, func(n ast.Node, inLit bool) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || n.Pos() >= pos {
				return !found
			}
			for i, lhs := range as.Lhs {
				id, ok := ast.Unparen(lhs).(*ast.Ident)
				if !ok || c.pass.TypesInfo.ObjectOf(id) != v {
					continue
				}
				if len(as.Rhs) == len(as.Lhs) && c.isNil(as.Rhs[i]) {
					continue
				}
				found = true
			}
			return !found
		})
	}
	return found
}

// innermostBranch finds the branch holding the node at the top of stack, or nil when it
// is on the function's main path.
func (c *checker) innermostBranch(stack []ast.Node) *branch {
	node := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 1; i-- {
		switch n := stack[i].(type) {
		case *ast.BlockStmt:
			ifs, ok := stack[i-1].(*ast.IfStmt)
			if !ok {
				continue
			}
			if ifs.Body == n || ifs.Else == n {
				then := ifs.Body == n
				b := &branch{stmts: n.List, desc: "if " + c.text(ifs.Cond)}
				if !then {
					b.desc = "else of " + b.desc
				}
				b.errBranch, b.errVars = c.errCheck(ifs.Cond, then)
				b.okBranch = c.okCheck(ifs.Cond, then)
				return b
			}
		case *ast.CaseClause:
			if node.Pos() <= n.Colon {
				continue // in the case expressions, not the body
			}
			b := &branch{stmts: n.Body, desc: "default"}
			if n.List != nil {
				b.desc = "case " + c.exprList(n.List)
			}
			if i >= 2 {
				if sw, ok := stack[i-2].(*ast.SwitchStmt); ok && sw.Tag == nil {
					for _, e := range n.List {
						if isErr, vars := c.errCheck(e, true); isErr {
							b.errBranch = true
							b.errVars = append(b.errVars, vars...)
						}
					}
				}
			}
			return b
		case *ast.CommClause:
			if node.Pos() <= n.Colon {
				continue
			}
			b := &branch{stmts: n.Body, desc: "default"}
			if n.Comm != nil {
				b.desc = "case " + c.text(n.Comm)
			}
			return b
		}
	}
	return nil
}

// errCheck reports whether a branch guarded by cond is taken on an error: cond tests an
// error against nil (err != nil, within && or ||) when then is true; cond is err == nil
// when then is false (the else block). It returns the error variables tested.
func (c *checker) errCheck(cond ast.Expr, then bool) (bool, []types.Object) {
	cond = ast.Unparen(cond)
	be, ok := cond.(*ast.BinaryExpr)
	if !ok {
		return false, nil
	}
	switch be.Op {
	case token.LAND, token.LOR:
		if !then {
			return false, nil
		}
		l, lv := c.errCheck(be.X, true)
		r, rv := c.errCheck(be.Y, true)
		return l || r, append(lv, rv...)
	case token.NEQ, token.EQL:
		if (be.Op == token.NEQ) != then {
			return false, nil
		}
		x, y := ast.Unparen(be.X), ast.Unparen(be.Y)
		if c.isNil(x) {
			x, y = y, x
		}
		if !c.isNil(y) {
			return false, nil
		}
		t := c.pass.TypesInfo.TypeOf(x)
		if t == nil || !isError(t) {
			return false, nil
		}
		var vars []types.Object
		if id, ok := x.(*ast.Ident); ok {
			if obj := c.pass.TypesInfo.ObjectOf(id); obj != nil {
				vars = append(vars, obj)
			}
		}
		return true, vars
	}
	return false, nil
}

// okCheck reports whether a branch guarded by cond is taken only when an error is nil:
// the body of if err == nil (within &&), the else block of if err != nil (within ||).
func (c *checker) okCheck(cond ast.Expr, then bool) bool {
	cond = ast.Unparen(cond)
	be, ok := cond.(*ast.BinaryExpr)
	if !ok {
		return false
	}
	switch {
	case (be.Op == token.LAND && then) || (be.Op == token.LOR && !then):
		return c.okCheck(be.X, then) || c.okCheck(be.Y, then)
	case (be.Op == token.EQL && then) || (be.Op == token.NEQ && !then):
		x, y := ast.Unparen(be.X), ast.Unparen(be.Y)
		if c.isNil(x) {
			x, y = y, x
		}
		t := c.pass.TypesInfo.TypeOf(x)
		return c.isNil(y) && t != nil && isError(t)
	}
	return false
}

func isError(t types.Type) bool { return types.Implements(t, errorType) }

// text renders a node for a diagnostic, shortened to one line.
func (c *checker) text(n ast.Node) string {
	var buf bytes.Buffer
	if err := format.Node(&buf, c.pass.Fset, n); err != nil {
		return fmt.Sprintf("%T", n)
	}
	return shorten(strings.Join(strings.Fields(buf.String()), " "))
}

func (c *checker) exprList(list []ast.Expr) string {
	parts := make([]string, len(list))
	for i, e := range list {
		parts[i] = c.text(e)
	}
	return shorten(strings.Join(parts, ", "))
}

// shorten keeps a branch's description to one readable line.
func shorten(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
