package silentcheck

import (
	"go/ast"
	"go/token"
	"go/types"
	"reflect"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports branches of message-handling code that drop work without a trace.
var Analyzer = &analysis.Analyzer{
	Name: "silentcheck",
	Doc: "report message handlers whose branches drop work without a trace\n\n" +
		"A branch of a message handler (NATS, JetStream, Watermill, or any type with Ack and " +
		"Nak/Nack/Term/Reject) must not report success (return nil, return true from a batch " +
		"handler, a bare return from a callback), acknowledge or terminate the message, or " +
		"swallow an error without leaving a trace: an outcome or an error returned, a log " +
		"line, a span event, a metric, a reply, an error callback. Write " +
		"`//silentcheck:ok <reason>` on the line of a finding to keep a deliberate one.",
	FactTypes:  []analysis.Fact{new(recordsFact), new(dropsFact), new(settlesFact), new(explainsFact)},
	ResultType: reflect.TypeFor[*Result](),
	Run:        run,
}

// listHandlers is the -handlers flag: it prints every function judged as
// message-handling code, so a team adopting the check can see what it covers (and what
// it does not) before trusting a clean run.
var listHandlers bool

// listKept is the -kept flag: it prints every finding a //silentcheck:ok directive kept
// quiet, with its reason, so that a deliberate drop stays visible in a clean run.
var listKept bool

func init() {
	Analyzer.Flags.BoolVar(&listHandlers, "handlers", false,
		"print to stderr every function judged as message-handling code, and why")
	Analyzer.Flags.BoolVar(&listKept, "kept", false,
		"print to stderr every finding kept quiet by //silentcheck:ok, with its reason")
}

// recordsFact marks a function whose body records something (logs, records a decision,
// adds a span event or a metric), so that calling it from a branch counts as recording.
type recordsFact struct{}

func (*recordsFact) AFact()         {}
func (*recordsFact) String() string { return "records" }

var errorType = types.Universe.Lookup("error").Type().Underlying().(*types.Interface)

func run(pass *analysis.Pass) (any, error) {
	c := &checker{
		pass:        pass,
		records:     map[*types.Func]bool{},
		drops:       map[*types.Func]string{},
		suppressed:  map[*token.File]map[int]*directive{},
		handedLits:  map[*ast.FuncLit]bool{},
		handedFuncs: map[*types.Func]bool{},
		carried:     map[*types.Func]bool{},
		settlers:    map[*types.Func]*settlesFact{},
		explainers:  map[*types.Func]uint64{},
		impls:       map[*types.Func][]*types.Func{},
		queuedLits:  map[*ast.FuncLit]bool{},
		result:      &Result{},
	}
	c.findSuppressions()
	c.findSettlers()
	c.findRecorders()
	c.findExplainers()
	c.findHandedHandlers()
	c.findCarriedHandlers()
	c.findDroppers()

	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch fn := n.(type) {
			case *ast.FuncDecl:
				if fn.Body == nil {
					return false
				}
				obj, _ := pass.TypesInfo.Defs[fn.Name].(*types.Func)
				if obj == nil {
					return false
				}
				c.checkFunc(f, obj.Type().(*types.Signature), fn.Body, c.isHanded(obj))
				c.checkLoops(f, obj.Type().(*types.Signature), fn.Body, c.isHanded(obj))
				c.checkHandOffs(f, obj.Type().(*types.Signature), fn.Body, obj)
			case *ast.FuncLit:
				sig, _ := pass.TypesInfo.TypeOf(fn).(*types.Signature)
				if sig != nil && !c.queuedLits[fn] {
					c.checkFunc(f, sig, fn.Body, c.handedLits[fn])
					c.checkLoops(f, sig, fn.Body, c.handedLits[fn])
					c.checkHandOffs(f, sig, fn.Body, nil)
				}
			}
			return true
		})
	}
	return c.result, nil
}

type checker struct {
	pass        *analysis.Pass
	records     map[*types.Func]bool               // functions of this package that record
	drops       map[*types.Func]string             // functions of this package that drop what they are handed, and where
	suppressed  map[*token.File]map[int]*directive // lines carrying a reasoned silentcheck:ok
	handedLits  map[*ast.FuncLit]bool              // literals handed to a place typed as a handler
	handedFuncs map[*types.Func]bool               // functions handed likewise (f, s.onMessage)
	carried     map[*types.Func]bool               // functions handed the message by a handler or a loop over messages
	settlers    map[*types.Func]*settlesFact       // functions of this package that settle the message they are handed
	queuedLits  map[*ast.FuncLit]bool              // the closures those functions queue: judged at their callers
	explainers  map[*types.Func]uint64             // functions of this package that explain their empty answers, by result (see explainsFact)
	impls       map[*types.Func][]*types.Func      // methods of the module's interfaces and their implementations found so far (see implementations)
	result      *Result
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
	// A function or method shaped like a logger that hands its message on (to a writer,
	// another logger, a closure that logs) is a logger by what it does, even when it
	// writes only if configured (if s.log == nil { return }).
	for _, d := range decls {
		if c.passesMessageOn(d.obj.Type().(*types.Signature), d.body) {
			c.records[d.obj] = true
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
			// A panic on a function's main path is an assertion (unreachable code,
			// a broken invariant), not the function's way of reporting: it would make
			// half the standard library "record".
			if c.isRecordingCall(n) && !c.isPanic(n) {
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

// passesMessageOn reports whether a logger-shaped function (see loggerShaped) hands its
// message or format parameter, or its values, to a call in its body.
func (c *checker) passesMessageOn(sig *types.Signature, body *ast.BlockStmt) bool {
	if !loggerShaped(sig) {
		return false
	}
	params := map[types.Object]bool{}
	for v := range sig.Params().Variables() {
		if isString(v.Type()) || isAnySlice(v.Type()) {
			params[v] = true
		}
	}
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || found {
			return !found
		}
		for _, a := range call.Args {
			if id, ok := ast.Unparen(a).(*ast.Ident); ok && params[c.pass.TypesInfo.Uses[id]] {
				found = true
			}
		}
		return !found
	})
	return found
}
