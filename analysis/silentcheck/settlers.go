package silentcheck

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"strconv"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// This file holds the shapes found as misses in the fourth held-out set and fixed on it
// as development data: a Nack or Reject told not to requeue is a termination, and a
// settlement made through a helper of the checked module that queues it (a closure
// calling m.Nack(requeue) appended to a pending list, flushed later) is a settlement at
// the helper's call.

// settlement is one call that settles a message: a method of the message itself
// (m.Ack(), d.Nack(false, false)), or a call to a helper known to settle the message it
// is handed (see settlesFact).
type settlement struct {
	name string   // the settling method: Ack, Nack, Term, …, or Commit for a record
	msg  ast.Expr // what is settled: the receiver, or the argument handed to the helper
	// flag is the requeue argument (the last parameter of Nack or Reject when it is a
	// bool), or nil: hasFlag tells whether the method has one at all.
	flag    ast.Expr
	hasFlag bool
	// fixed is the requeue flag's value when a helper settles with a constant (its own
	// m.Nack(false)); known tells whether fixed is set.
	fixed, known bool
	helper       *types.Func // the helper settled through, or nil
}

// settlesFact marks a function of the checked module that settles the message it is
// handed as parameter Msg with Method, one level down, by queueing the settlement: on
// its main path (outside its branches and loops) it builds a closure or a method value
// on that parameter that only settles it (pending = append(pending, func() {
// m.Nack(requeue) }), acks = append(acks, m.Ack)), to be run later; and every settlement
// of that parameter in its body, direct or queued, is the same. (A function that
// settles the message itself is a handler, or the handler's own work: calling it is not
// taken for a settlement.) The requeue flag is a constant (Flag is "true" or "false") or the
// helper's parameter FlagParam (traced to the caller's argument), or unknown.
type settlesFact struct {
	Method    string
	Msg       int
	HasFlag   bool
	Flag      string
	FlagParam int
}

func (*settlesFact) AFact()           {}
func (f *settlesFact) String() string { return "settles " + f.Method }

// requeueIndex returns the index of a settling method's requeue flag: its last
// parameter when that is a bool (AMQP's Nack(multiple, requeue) and Reject(requeue), a
// wrapper's Nack(requeue bool)), or -1. Only Nack and Reject have one.
func requeueIndex(name string, sig *types.Signature) int {
	if name != "Nack" && name != "Reject" {
		return -1
	}
	params := sig.Params()
	if params.Len() == 0 || sig.Variadic() {
		return -1
	}
	if !isBool(params.At(params.Len() - 1).Type()) {
		return -1
	}
	return params.Len() - 1
}

// methodSettlement returns the settlement of a call (or a method value) that settles a
// message by one of its own methods: sel is the selector (m.Ack), args the call's
// arguments (nil for a method value).
func (c *checker) methodSettlement(sel *ast.SelectorExpr, args []ast.Expr) (settlement, bool) {
	s := c.pass.TypesInfo.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal {
		return settlement{}, false
	}
	name := sel.Sel.Name
	if !settleMethods[name] || !isMessageType(s.Recv()) {
		return settlement{}, false
	}
	st := settlement{name: name, msg: sel.X}
	if fn, ok := s.Obj().(*types.Func); ok {
		if i := requeueIndex(name, fn.Type().(*types.Signature)); i >= 0 {
			st.hasFlag = true
			if i < len(args) {
				st.flag = args[i]
			}
		}
	}
	return st, true
}

// settlementOf returns the settlement call makes, if any: a message's own settling
// method, a mark or commit of Kafka records, or a helper of the checked module that
// settles the message it is handed (see settlesFact).
func (c *checker) settlementOf(call *ast.CallExpr) (settlement, bool) {
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		if s := c.pass.TypesInfo.Selections[sel]; s != nil && s.Kind() == types.MethodVal {
			name := sel.Sel.Name
			if strings.HasPrefix(name, "Mark") || strings.HasPrefix(name, "Commit") {
				for _, a := range call.Args {
					if t := c.pass.TypesInfo.TypeOf(a); t != nil && (isRecordType(t) || isRecordBatch(t)) {
						return settlement{name: "Commit", msg: sel.X}, true
					}
				}
				return settlement{}, false
			}
			if st, ok := c.methodSettlement(sel, call.Args); ok {
				return st, true
			}
		}
	}
	fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
	if !ok {
		return settlement{}, false
	}
	fn = fn.Origin()
	f := c.settlesAt(fn)
	if f == nil || f.Msg >= len(call.Args) {
		return settlement{}, false
	}
	msg := ast.Unparen(call.Args[f.Msg])
	if u, ok := msg.(*ast.UnaryExpr); ok && u.Op == token.AND {
		msg = ast.Unparen(u.X)
	}
	if t := c.pass.TypesInfo.TypeOf(msg); t == nil || !isMessageType(t) {
		return settlement{}, false
	}
	st := settlement{name: f.Method, msg: msg, hasFlag: f.HasFlag, helper: fn}
	switch {
	case f.Flag == "true" || f.Flag == "false":
		st.fixed, st.known = f.Flag == "true", true
	case f.FlagParam >= 0 && f.FlagParam < len(call.Args):
		st.flag = call.Args[f.FlagParam]
	}
	return st, true
}

// requeues reports what a settlement's requeue flag says: (value, true) when it is known
// (a constant at the call, or in the helper), (false, false) otherwise.
func (c *checker) requeues(st settlement) (bool, bool) {
	if st.known {
		return st.fixed, true
	}
	if st.flag == nil {
		return false, false
	}
	tv, ok := c.pass.TypesInfo.Types[st.flag]
	if !ok || tv.Value == nil || tv.Value.Kind() != constant.Bool {
		return false, false
	}
	return constant.BoolVal(tv.Value), true
}

// discards reports whether a settlement removes the message for good, which rule 2 is
// about: an ack or commit, Term or TermWithReason, a Reject without a requeue flag or
// whose flag is not known to be true, and a Nack whose requeue flag is the constant
// false (AMQP's Nack(multiple, false), a wrapper's Nack(false)). A Nack or Reject told to
// requeue hands the message back: a retry, like Nak.
func (c *checker) discards(st settlement) bool {
	if dropMethods[st.name] {
		if st.name == "Reject" && st.hasFlag {
			requeue, known := c.requeues(st)
			return !(known && requeue)
		}
		return true
	}
	if st.name == "Nack" && st.hasFlag {
		requeue, known := c.requeues(st)
		return known && !requeue
	}
	return false
}

// settleDesc names a settlement in a finding: m.Ack, d.Nack without requeue,
// saver.SaveNack (which settles m with Nack without requeue).
func (c *checker) settleDesc(st settlement, call *ast.CallExpr) string {
	what := st.name
	if st.name == "Nack" || st.name == "Reject" {
		if requeue, known := c.requeues(st); known && !requeue {
			what += " without requeue"
		}
	}
	if st.helper != nil {
		return c.text(call.Fun) + ", which settles " + c.text(st.msg) + " with " + what
	}
	return c.text(st.msg) + "." + what
}

func (c *checker) settlesAt(fn *types.Func) *settlesFact {
	if fn.Pkg() == c.pass.Pkg {
		return c.settlers[fn]
	}
	f := new(settlesFact)
	if fn.Pkg() != nil && c.ownCode(fn.Pkg()) && c.pass.ImportObjectFact(fn, f) {
		return f
	}
	return nil
}

// findSettlers marks the functions of this package that settle the message they are
// handed (see settlesFact) and exports the mark as a fact.
func (c *checker) findSettlers() {
	for fn := range c.ownFuncDecls() {
		sig := fn.obj.Type().(*types.Signature)
		if sig.Recv() != nil && isMessageType(sig.Recv().Type()) {
			continue // a message's own method (a wrapper's Nack) is the message
		}
		for i := 0; i < sig.Params().Len(); i++ {
			if fact := c.helperSettles(sig, fn.decl.Body, i); fact != nil {
				c.settlers[fn.obj] = fact
				c.pass.ExportObjectFact(fn.obj, fact)
				break
			}
		}
	}
}

// helperSettles returns the settlesFact of a function whose parameter i is a message it
// settles (see settlesFact), or nil.
func (c *checker) helperSettles(sig *types.Signature, body *ast.BlockStmt, i int) *settlesFact {
	info := c.pass.TypesInfo
	param := sig.Params().At(i)
	if !isMessageType(param.Type()) || isRecordType(param.Type()) {
		return nil
	}
	isParam := func(e ast.Expr) bool {
		e = ast.Unparen(e)
		if s, ok := e.(*ast.StarExpr); ok {
			e = ast.Unparen(s.X)
		}
		id, ok := e.(*ast.Ident)
		return ok && info.Uses[id] == param
	}
	var fact *settlesFact
	var lits []*ast.FuncLit
	consistent, queued := true, false
	// note records one settlement of the parameter; queued tells whether it is made in a
	// closure or a method value, to run later.
	note := func(st settlement, stack []ast.Node, later bool) {
		f := &settlesFact{Method: st.name, Msg: i, HasFlag: st.hasFlag, FlagParam: -1}
		if requeue, known := c.requeues(st); known {
			f.Flag = strconv.FormatBool(requeue)
		} else if st.flag != nil {
			if id, ok := ast.Unparen(st.flag).(*ast.Ident); ok {
				for j := 0; j < sig.Params().Len(); j++ {
					if info.Uses[id] == sig.Params().At(j) {
						f.FlagParam = j
					}
				}
			}
		}
		if fact == nil {
			fact = f
		} else if *fact != *f {
			consistent = false
		}
		if later && onMainPath(stack) {
			queued = true
		}
	}
	inspectWithStack(body, func(n ast.Node, stack []ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			// A closure that only settles the parameter (func() { m.Nack(requeue) }):
			// the settlement is queued for later. Any other closure is not followed.
			if st, ok := c.onlySettles(n, isParam); ok {
				note(st, stack, true)
				lits = append(lits, n)
			}
			return false
		case *ast.CallExpr:
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok && isParam(sel.X) {
				if st, ok := c.methodSettlement(sel, n.Args); ok && st.name != "InProgress" {
					note(st, stack, false)
					return false // its selector is no method value
				}
			}
		case *ast.SelectorExpr:
			// A method value (acks = append(acks, m.Ack)): settled when it is called.
			if isParam(n.X) {
				if st, ok := c.methodSettlement(n, nil); ok && st.name != "InProgress" {
					if st.hasFlag {
						st.flag = nil // called later with a flag not visible here
					}
					note(st, stack, true)
				}
			}
		}
		return true
	})
	if fact == nil || !consistent || !queued {
		return nil
	}
	for _, lit := range lits {
		c.queuedLits[lit] = true
	}
	return fact
}

// onlySettles reports whether the body of lit is a single settlement of the parameter
// (isParam), and returns it.
func (c *checker) onlySettles(lit *ast.FuncLit, isParam func(ast.Expr) bool) (settlement, bool) {
	if len(lit.Body.List) != 1 {
		return settlement{}, false
	}
	var call *ast.CallExpr
	switch s := lit.Body.List[0].(type) {
	case *ast.ExprStmt:
		call, _ = ast.Unparen(s.X).(*ast.CallExpr)
	case *ast.ReturnStmt:
		if len(s.Results) == 1 {
			call, _ = ast.Unparen(s.Results[0]).(*ast.CallExpr)
		}
	case *ast.AssignStmt:
		if len(s.Rhs) == 1 {
			call, _ = ast.Unparen(s.Rhs[0]).(*ast.CallExpr)
		}
	}
	if call == nil {
		return settlement{}, false
	}
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || !isParam(sel.X) {
		return settlement{}, false
	}
	st, ok := c.methodSettlement(sel, call.Args)
	if !ok || st.name == "InProgress" {
		return settlement{}, false
	}
	return st, true
}

// onMainPath reports whether the node at the top of stack (a path from a function's
// body) runs whenever the function gets that far: no if, switch, select or loop body
// holds it. A function literal's body counts as where the literal is built.
func onMainPath(stack []ast.Node) bool {
	for i := 1; i < len(stack); i++ {
		switch stack[i].(type) {
		case *ast.BlockStmt:
			if _, ok := stack[i-1].(*ast.FuncLit); !ok {
				return false
			}
		case *ast.CaseClause, *ast.CommClause:
			return false
		}
	}
	return true
}
