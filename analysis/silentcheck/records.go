package silentcheck

import (
	"go/ast"
	"go/types"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// What counts as leaving a trace is decided from the callee's package and type, so that
// a method that happens to be called Error or Record on an unrelated type does not
// silence a finding. Each table lists the calls that emit (a log line, a span event, a
// metric sample); builders such as logrus.WithField or zerolog's Error() that return
// something still to be emitted are deliberately absent.
var (
	slogEmitters = names("Debug", "DebugContext", "Info", "InfoContext", "Warn", "WarnContext",
		"Error", "ErrorContext", "Log", "LogAttrs")
	logEmitters = names("Print", "Printf", "Println", "Fatal", "Fatalf", "Fatalln", "Panic",
		"Panicf", "Panicln", "Output")
	// logrus: package functions and the methods of *Logger and *Entry.
	logrusEmitters = names("Trace", "Debug", "Info", "Print", "Warn", "Warning", "Error", "Fatal",
		"Panic", "Tracef", "Debugf", "Infof", "Printf", "Warnf", "Warningf", "Errorf", "Fatalf",
		"Panicf", "Traceln", "Debugln", "Infoln", "Println", "Warnln", "Warningln", "Errorln",
		"Fatalln", "Panicln", "Log", "Logf", "Logln")
	// zap: *Logger and *SugaredLogger.
	zapEmitters = names("Debug", "Info", "Warn", "Error", "DPanic", "Panic", "Fatal", "Log",
		"Debugf", "Infof", "Warnf", "Errorf", "DPanicf", "Panicf", "Fatalf", "Logf",
		"Debugw", "Infow", "Warnw", "Errorw", "DPanicw", "Panicw", "Fatalw", "Logw",
		"Debugln", "Infoln", "Warnln", "Errorln", "DPanicln", "Panicln", "Fatalln", "Logln")
	// zerolog: an *Event is emitted by Msg, Msgf, MsgFunc or Send; Logger.Print* emit too.
	zerologEmitters = names("Msg", "Msgf", "MsgFunc", "Send", "Print", "Printf", "Println")
	// Watermill's LoggerAdapter, which its examples and middlewares log through.
	watermillEmitters = names("Error", "Info", "Debug", "Trace")
	// testing: a failed or logged test is a trace the test's reader sees.
	testingEmitters = names("Error", "Errorf", "Fatal", "Fatalf", "Fail", "FailNow", "Log", "Logf")
	// An error tracker is a trace an operator is paged by.
	sentryEmitters = names("CaptureException", "CaptureMessage", "CaptureEvent")
	fmtEmitters    = names("Print", "Printf", "Println")
	fmtWriters     = names("Fprint", "Fprintf", "Fprintln")
	spanRecorders  = names("AddEvent", "RecordError", "SetStatus")
	otelMetrics    = names("Add", "Record")
	promRecorders  = names("Inc", "Add", "Observe")
	// Replying to the requester hands the decision to whoever asked.
	replies = names("Respond", "RespondMsg", "RespondJSON")
)

func names(list ...string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, n := range list {
		m[n] = true
	}
	return m
}

// isRecordingCall reports whether call leaves a trace: a log line, a span event or
// status, a metric, a failed test, a reply to the requester, an error handed to an
// error callback, a panic, or a call to a function known to do one of those.
func (c *checker) isRecordingCall(call *ast.CallExpr) bool {
	info := c.pass.TypesInfo
	if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok {
		if b, ok := info.Uses[id].(*types.Builtin); ok {
			// panic is recovered into an error or crashes: loud either way; print and
			// println write to stderr, a log line by another name.
			return b.Name() == "panic" || b.Name() == "print" || b.Name() == "println"
		}
	}
	if c.repliesTo(call) {
		return true
	}
	switch callee := typeutil.Callee(info, call).(type) {
	case *types.Var:
		// A parameter or field of type func(..., error) called with an error: the
		// caller's error callback (nats.ErrHandler, an OnError option) decides. A
		// function value shaped like a logger (logf(format, args...)) logs.
		sig, _ := callee.Type().Underlying().(*types.Signature)
		return c.callsErrorCallback(call) || (sig != nil && loggerShaped(sig))
	case *types.Func:
		sig, _ := callee.Type().(*types.Signature)
		if sig != nil && sig.Recv() != nil && levelFamily(callee, sig) {
			return true // one of a family of level methods, on an interface or any type
		}
		if sig != nil && sig.Recv() != nil && types.IsInterface(sig.Recv().Type()) {
			// A method of an interface: whatever implements it is not visible here, so
			// it is judged by its shape (see loggerShaped).
			return c.funcRecords(callee.Origin(), call) || loggerShaped(sig) || valuesLogger(callee, sig) ||
				c.implementedRecording(callee, call)
		}
		return c.funcRecords(callee.Origin(), call)
	}
	return false
}

// loggerShaped reports whether a method of an interface (or a function value) looks like
// a logger's: it returns nothing, and takes a message or a format (a string, after an
// optional context) followed by what to write with it: values (args ...any, keyvals
// ...any), an error, fields. Printf, Errorf, Warnf, Noticef, Info(msg, kv...) and
// Watermill's Error(msg, err, fields) all are; a method that answers something
// (Sprintf, Publish(subject, data) error) is not, nor one taking only a string
// (SetName(s)).
func loggerShaped(sig *types.Signature) bool {
	if sig.Results().Len() != 0 {
		return false
	}
	params := sig.Params()
	i := 0
	if i < params.Len() && isContext(params.At(i).Type()) {
		i++
	}
	if i < params.Len() && isLevel(params.At(i).Type()) {
		// A level first: Log(level, v ...any), Logf(level, format, v ...any).
		i++
		if i == params.Len()-1 && sig.Variadic() && isAnySlice(params.At(i).Type()) {
			return true
		}
	}
	if i >= params.Len() || !isString(params.At(i).Type()) || params.At(i).Type() != types.Typ[types.String] {
		return false
	}
	rest := params.Len() - i - 1
	if rest == 0 {
		return false
	}
	if sig.Variadic() {
		last := params.At(params.Len() - 1).Type().(*types.Slice).Elem()
		if it, ok := last.Underlying().(*types.Interface); ok && it.Empty() {
			return true
		}
	}
	for j := i + 1; j < params.Len(); j++ {
		if isErrorType(params.At(j).Type()) {
			return true
		}
	}
	return false
}

// valuesLogger reports whether a method of an interface that takes only values
// (Error(args ...any), with no result) logs: it does when its interface also has the
// formatting sibling a logger has beside it (Errorf(format string, args ...any)), so
// that l.Error(err) counts as the log line it is, judged by the type's behaviour and not
// by its name alone.
func valuesLogger(fn *types.Func, sig *types.Signature) bool {
	params := sig.Params()
	if sig.Results().Len() != 0 || !sig.Variadic() || params.Len() != 1 || !isAnySlice(params.At(0).Type()) {
		return false
	}
	return hasFormattingSibling(fn, sig, fn.Name())
}

// levelFamily reports whether fn, a method, is one of a family of level methods: it
// returns nothing, takes a message (a string, after an optional context) first, is named
// for a level (Warn), and its type has at least two methods named for other levels with
// the same signature (Debug(string), Info(string), Error(string)). That family is a
// logger's API whatever the type is called, and however its implementation filters by
// level; a lone Warn(msg string) is not enough.
func levelFamily(fn *types.Func, sig *types.Signature) bool {
	if sig.Results().Len() != 0 || !levelNames[fn.Name()] {
		return false
	}
	params := sig.Params()
	i := 0
	if i < params.Len() && isContext(params.At(i).Type()) {
		i++
	}
	if i >= params.Len() || !types.Identical(params.At(i).Type(), types.Typ[types.String]) {
		return false
	}
	siblings := 0
	for _, l := range levelList {
		if l == fn.Name() {
			continue
		}
		obj, _, _ := types.LookupFieldOrMethod(sig.Recv().Type(), true, fn.Pkg(), l)
		// Identical ignores the receivers: the same parameters and results.
		if m, ok := obj.(*types.Func); ok && types.Identical(m.Type(), sig) {
			siblings++
		}
	}
	return siblings >= 2
}

// hasFormattingSibling reports whether fn's receiver type (or, for a function, its
// package) has a logger-shaped formatting method or function named for one of levels
// with an f (Error → Errorf(format string, args ...any)).
func hasFormattingSibling(fn *types.Func, sig *types.Signature, levels ...string) bool {
	for _, l := range levels {
		var sib types.Object
		if sig.Recv() != nil {
			sib, _, _ = types.LookupFieldOrMethod(sig.Recv().Type(), true, fn.Pkg(), l+"f")
		} else {
			sib = fn.Pkg().Scope().Lookup(l + "f")
		}
		if sf, ok := sib.(*types.Func); ok {
			if ssig, ok := sf.Type().(*types.Signature); ok && loggerShaped(ssig) {
				return true
			}
		}
	}
	return false
}

// implementedRecording reports whether a method of an interface of the checked module
// records in some implementation the module gives it: a type declared beside the
// interface (or in the package being checked) whose method of that name records on its
// main path (a team's Logger interface, Error(args ...any), implemented by an adapter
// that hands it to logrus). What the interface's methods do is then known from the code
// and not guessed from their shape. A type whose method records nothing (a no-op logger
// for tests) does not take that away.
func (c *checker) implementedRecording(method *types.Func, call *ast.CallExpr) bool {
	for _, impl := range c.implementations(method) {
		if c.funcRecords(impl, call) {
			return true
		}
	}
	return false
}

// implementations lists the methods that implement an interface's method in the types
// declared beside the interface (or in the package being checked), for an interface of
// the checked module; the list is found once per method.
func (c *checker) implementations(method *types.Func) []*types.Func {
	if impls, ok := c.impls[method]; ok {
		return impls
	}
	var impls []*types.Func
	sig := method.Type().(*types.Signature)
	iface, ok := sig.Recv().Type().Underlying().(*types.Interface)
	if ok && method.Pkg() != nil && c.ownCode(method.Pkg()) {
		for _, pkg := range []*types.Package{method.Pkg(), c.pass.Pkg} {
			scope := pkg.Scope()
			for _, name := range scope.Names() {
				tn, ok := scope.Lookup(name).(*types.TypeName)
				if !ok || tn.IsAlias() || types.IsInterface(tn.Type()) {
					continue
				}
				ptr := types.NewPointer(tn.Type())
				if !types.Implements(ptr, iface) {
					continue
				}
				obj, _, _ := types.LookupFieldOrMethod(ptr, true, pkg, method.Name())
				if impl, ok := obj.(*types.Func); ok {
					impls = append(impls, impl)
				}
			}
			if method.Pkg() == c.pass.Pkg {
				break
			}
		}
	}
	c.impls[method] = impls
	return impls
}

func isContext(t types.Type) bool { return isNamed(t, "context", "Context") }

func (c *checker) funcRecords(fn *types.Func, call *ast.CallExpr) bool {
	name := fn.Name()
	sig, _ := fn.Type().(*types.Signature)
	isMethod := sig != nil && sig.Recv() != nil
	path := ""
	if fn.Pkg() != nil {
		path = trimVendor(fn.Pkg().Path())
	}
	switch {
	case path == "log/slog":
		return slogEmitters[name]
	case path == "log":
		return logEmitters[name]
	case path == "github.com/sirupsen/logrus":
		return logrusEmitters[name]
	case path == "go.uber.org/zap":
		return zapEmitters[name]
	case path == "github.com/rs/zerolog" || strings.HasPrefix(path, "github.com/rs/zerolog/"):
		return zerologEmitters[name]
	case path == "github.com/ThreeDotsLabs/watermill":
		return isMethod && watermillEmitters[name]
	case path == "testing":
		return isMethod && testingEmitters[name]
	case path == "github.com/getsentry/sentry-go":
		return sentryEmitters[name]
	case path == "fmt":
		return fmtEmitters[name] || (fmtWriters[name] && len(call.Args) > 0 && c.writesOut(call.Args[0]))
	case strings.HasPrefix(path, "go.opentelemetry.io/otel/trace"):
		return isMethod && spanRecorders[name]
	case strings.HasPrefix(path, "go.opentelemetry.io/otel/metric"):
		return isMethod && otelMetrics[name]
	case strings.HasPrefix(path, "github.com/prometheus/client_golang/prometheus"):
		return isMethod && promRecorders[name]
	}
	if fn.Pkg() == c.pass.Pkg {
		return c.records[fn]
	}
	return c.pass.ImportObjectFact(fn, new(recordsFact)) || (sig != nil && c.loggingLibrary(fn, sig))
}

// levelNames are what logging libraries call the functions that emit at a level.
var (
	levelList = []string{"Trace", "Debug", "Info", "Notice", "Warn", "Warning", "Error", "Critical",
		"Fatal", "Panic", "Print"}
	levelNames = names(levelList...)
)

// loggingLibrary reports whether fn, a function or method of another module that the
// tables above do not list (a logging library such as charmbracelet/log), emits a log
// line, judged by the family it belongs to: it returns nothing, is named for a level
// (Error, Warnf, Infoln, Errorw), takes what to write as values last (msg any, keyvals
// ...any; args ...any), and its package (or its receiver's type) also has a formatting
// sibling for that level or another, Errorf(format string, args ...any) or Printf. That
// pair is a logger's API; a lone Error(v ...any) is not enough, and the team's own
// packages are judged by what their code does instead.
func (c *checker) loggingLibrary(fn *types.Func, sig *types.Signature) bool {
	if fn.Pkg() == nil || c.ownCode(fn.Pkg()) || sig.Results().Len() != 0 || !sig.Variadic() {
		return false
	}
	if !isAnySlice(sig.Params().At(sig.Params().Len() - 1).Type()) {
		return false
	}
	level := fn.Name()
	for _, suffix := range []string{"f", "ln", "w"} {
		if base, ok := strings.CutSuffix(level, suffix); ok && levelNames[base] {
			level = base
		}
	}
	if !levelNames[level] {
		return false
	}
	// Its own level's sibling or any other's (a logger with Warn and Printf, no Warnf).
	return hasFormattingSibling(fn, sig, levelList...)
}

func (c *checker) isPanic(call *ast.CallExpr) bool {
	id, ok := ast.Unparen(call.Fun).(*ast.Ident)
	if !ok {
		return false
	}
	b, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin)
	return ok && b.Name() == "panic"
}

// writesOut reports whether a print to the writer e leaves the program: os.Stdout,
// os.Stderr, a log file, a writer the code was given (a sample's w, an HTTP response).
// Only a buffer in memory (bytes.Buffer, strings.Builder, which build a string for
// later) is no trace.
func (c *checker) writesOut(e ast.Expr) bool {
	t := c.pass.TypesInfo.TypeOf(e)
	if t == nil {
		return false
	}
	t = derefType(t)
	return !isNamed(t, "bytes", "Buffer") && !isNamed(t, "strings", "Builder")
}

// callsErrorCallback reports whether call invokes a function value whose parameters
// include an error and passes it a non-nil error.
func (c *checker) callsErrorCallback(call *ast.CallExpr) bool {
	for _, a := range call.Args {
		t := c.pass.TypesInfo.TypeOf(a)
		if t != nil && !c.isNil(a) && isErrorType(t) {
			return true
		}
	}
	return false
}

// repliesTo reports whether call answers a request: Respond, RespondMsg or RespondJSON
// on a message or a request (a core-NATS reply, a nats micro request), its Error method
// when it also responds, or a publish to a message's Reply subject.
func (c *checker) repliesTo(call *ast.CallExpr) bool {
	info := c.pass.TypesInfo
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		if s := info.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
			recv := s.Recv()
			name := sel.Sel.Name
			if replies[name] || (name == "Error" && hasMethod(recv, "Respond")) {
				if isMessageType(recv) || hasMethod(recv, "Respond") {
					return true
				}
			}
		}
	}
	for _, a := range call.Args {
		sel, ok := ast.Unparen(a).(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Reply" {
			continue
		}
		if t := info.TypeOf(sel.X); t != nil && isMessageType(t) {
			return true
		}
	}
	return false
}

// isHandOff reports whether a send statement passes the problem or the message on: an
// error sent to whoever waits for it, or the message forwarded to a channel another
// goroutine consumes.
//
// Any other value counts too: a send hands something to a goroutine that waits for it (a
// first acknowledgement forwarded to a waiter, a result to a collector), which is where
// the program goes on with it.
func (c *checker) isHandOff(send *ast.SendStmt) bool {
	return !c.isNil(send.Value)
}

// isLevel reports whether t is a logger's level: a named integer or string type
// (logger.ErrorLevel, slog.Level), not a plain string (the message itself).
func isLevel(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	b, ok := n.Underlying().(*types.Basic)
	return ok && b.Info()&(types.IsInteger|types.IsString) != 0
}

func isAnySlice(t types.Type) bool {
	s, ok := t.(*types.Slice)
	if !ok {
		return false
	}
	it, ok := s.Elem().Underlying().(*types.Interface)
	return ok && it.Empty()
}
