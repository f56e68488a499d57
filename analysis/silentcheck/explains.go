package silentcheck

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/types/typeutil"
)

// explainsFact marks a function of the checked module that leaves a trace whenever it
// answers "nothing" (nil) or "no" (false) in one of its results: every return that gives
// that answer comes after a log line or another recording, and every other return gives
// a value that cannot be it (&row, a composite literal, new, make, true). For an error
// result the answer explained is the failure: every return that gives it anything but
// nil comes after a recording. Results is a bit per result index. A caller's branch
// taken on that answer (row := toRow(m); if row == nil { return nil }, or if err :=
// s.apply(m); err != nil { return }) carries out a decision the helper already recorded.
type explainsFact struct{ Results uint64 }

func (*explainsFact) AFact()           {}
func (f *explainsFact) String() string { return "explains its empty answers or failures" }

// findExplainers marks the package's functions that explain their empty answers (see
// explainsFact) and exports the mark as a fact.
func (c *checker) findExplainers() {
	for fn := range c.ownFuncDecls() {
		sig := fn.obj.Type().(*types.Signature)
		var mask uint64
		for i := 0; i < sig.Results().Len() && i < 64; i++ {
			if c.explainsEmpty(sig, fn.decl.Body, i) || c.explainsFailure(sig, fn.decl.Body, i) {
				mask |= 1 << i
			}
		}
		if mask != 0 {
			c.explainers[fn.obj] = mask
			c.pass.ExportObjectFact(fn.obj, &explainsFact{Results: mask})
		}
	}
}

// emptyAnswer reports whether t's empty value is an answer a caller can branch on as
// "nothing" or "no": a bool, or a pointer, map, slice or interface other than error (a
// nil error is success, not an empty answer).
func emptyAnswer(t types.Type) bool {
	if isBool(t) {
		return true
	}
	if isErrorType(t) {
		return false
	}
	switch t.Underlying().(type) {
	case *types.Pointer, *types.Map, *types.Slice, *types.Interface:
		return true
	}
	return false
}

// explainsEmpty reports whether body answers empty in result i at least once, and every
// return gives result i either a value that cannot be empty or an empty one after a
// recording on the way to it.
func (c *checker) explainsEmpty(sig *types.Signature, body *ast.BlockStmt, i int) bool {
	if !emptyAnswer(sig.Results().At(i).Type()) {
		return false
	}
	empty := func(e ast.Expr) bool { return c.isNil(e) || c.isConstBool(e, false) }
	return c.explainsAnswer(sig, body, i, empty, c.neverEmpty)
}

// explainsFailure reports whether result i is an error that body answers with something
// other than nil at least once, each time after a recording on the way to it (if err !=
// nil { log.Printf(...); return err }). A failure handed back as it came (return
// s.repo.Save(r)) explains nothing.
func (c *checker) explainsFailure(sig *types.Signature, body *ast.BlockStmt, i int) bool {
	if !isErrorType(sig.Results().At(i).Type()) {
		return false
	}
	failure := func(e ast.Expr) bool { return !c.isNil(e) }
	return c.explainsAnswer(sig, body, i, failure, c.isNil)
}

// explainsAnswer reports whether body gives result i the answer to explain (answer) at
// least once, each time after a recording on the way to it, and at every other return a
// value other accepts. A bare return of named results, or a call's results handed on
// whole, explains nothing.
func (c *checker) explainsAnswer(sig *types.Signature, body *ast.BlockStmt, i int, answer, other func(ast.Expr) bool) bool {
	ok, answered := true, false
	inspectWithStack(body, func(n ast.Node, stack []ast.Node) bool {
		if !ok {
			return false
		}
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt:
			if len(n.Results) != sig.Results().Len() {
				ok = false
				return false
			}
			e := ast.Unparen(n.Results[i])
			switch {
			case answer(e):
				ok, answered = c.recordsOnTheWay(stack), true
			case !other(e):
				ok = false
			}
		}
		return ok
	})
	// A function that never gives the answer explains nothing: a stub that always says
	// yes (func valid(m) bool { return true }) leaves its caller's filter to be judged.
	return ok && answered
}

// neverEmpty reports whether e is a value that is not nil or false: an address, a
// composite literal, new or make, or the constant true.
func (c *checker) neverEmpty(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.UnaryExpr:
		return e.Op == token.AND
	case *ast.CompositeLit:
		return true
	case *ast.CallExpr:
		if id, ok := ast.Unparen(e.Fun).(*ast.Ident); ok {
			if b, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); ok {
				return b.Name() == "new" || b.Name() == "make"
			}
		}
	}
	return c.isConstBool(e, true)
}

func (c *checker) isConstBool(e ast.Expr, want bool) bool {
	tv, ok := c.pass.TypesInfo.Types[e]
	return ok && tv.Value != nil && tv.Value.Kind() == constant.Bool && constant.BoolVal(tv.Value) == want
}

// recordsOnTheWay reports whether, in some block on the path down to the last node of
// stack, the statements before it record something whichever way they go (a log line
// in the branch, or on the function's main path above the branch; not one inside an
// earlier if).
func (c *checker) recordsOnTheWay(stack []ast.Node) bool {
	ret := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		var before []ast.Stmt
		for _, s := range stmtList(stack[i]) {
			if s.End() <= ret.Pos() {
				before = append(before, s)
			}
		}
		if c.recordsOnMainPath(before) {
			return true
		}
	}
	return false
}

// explainedBy reports whether fn explains its empty answer in result i.
func (c *checker) explainedBy(fn *types.Func, i int) bool {
	if fn == nil || i >= 64 {
		return false
	}
	if fn.Pkg() == c.pass.Pkg {
		return c.explainers[fn]&(1<<i) != 0
	}
	var f explainsFact
	return fn.Pkg() != nil && c.ownCode(fn.Pkg()) && c.pass.ImportObjectFact(fn, &f) && f.Results&(1<<i) != 0
}

// explained reports whether b is taken on an empty answer or a failure that a helper
// already explained: the body of an if whose condition is !f(...), f(...) == nil, !ok or
// v == nil, or err != nil for an error, where f explains that answer (see explainsFact)
// and ok, v or err holds f's answer at every assignment in body.
func (c *checker) explained(b *branch, body ast.Node) bool {
	if !b.inThen() {
		return false
	}
	var x ast.Expr
	failure := false // the branch is taken on an error, not on an empty answer
	switch cond := ast.Unparen(b.ifs.Cond).(type) {
	case *ast.UnaryExpr:
		if cond.Op != token.NOT {
			return false
		}
		x = cond.X
	case *ast.BinaryExpr:
		if cond.Op != token.EQL && cond.Op != token.NEQ {
			return false
		}
		switch {
		case c.isNil(cond.Y) || (cond.Op == token.EQL && c.isConstBool(cond.Y, false)):
			x = cond.X
		case c.isNil(cond.X) || (cond.Op == token.EQL && c.isConstBool(cond.X, false)):
			x = cond.Y
		default:
			return false
		}
		failure = cond.Op == token.NEQ
	default:
		return false
	}
	return c.answerExplained(x, failure, b.ifs, body)
}

// answerExplained reports whether x, tested by ifs, holds an answer a helper explains
// when it is empty or, with failure, when it is an error (see explained): x is the call
// itself, or a variable holding its answer where ifs asks and at every assignment in
// body.
func (c *checker) answerExplained(x ast.Expr, failure bool, ifs *ast.IfStmt, body ast.Node) bool {
	x = ast.Unparen(x)
	if t := c.pass.TypesInfo.TypeOf(x); t == nil || isErrorType(t) != failure {
		return false // err == nil is the success path, row != nil the answer given
	}
	if call, ok := x.(*ast.CallExpr); ok {
		return c.explainedBy(c.calleeFunc(call), 0) && c.resultCount(call) == 1
	}
	id, ok := x.(*ast.Ident)
	if !ok {
		return false
	}
	v, ok := c.pass.TypesInfo.Uses[id].(*types.Var)
	if !ok {
		return false
	}
	// The assignment right where the if asks (in its init, or the statement just before
	// it) decides, whatever the variable holds elsewhere: err = slot.UnmarshalJSON(b)
	// further down does not change what if err != nil asks of decode's failure above.
	if as := assignedJustBefore(body, ifs); as != nil {
		if ok, found := c.assignsExplained(as, v); found {
			return ok
		}
	}
	assigned, explained := 0, true
	ast.Inspect(body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return explained
		}
		if ok, found := c.assignsExplained(as, v); found {
			assigned++
			explained = explained && ok
		}
		return explained
	})
	return assigned > 0 && explained
}

// assignedJustBefore returns the assignment in ifs's init, or the assignment that is the
// statement just before ifs in its block, or nil.
func assignedJustBefore(body ast.Node, ifs *ast.IfStmt) *ast.AssignStmt {
	if as, ok := ifs.Init.(*ast.AssignStmt); ok {
		return as
	}
	var prev ast.Stmt
	ast.Inspect(body, func(n ast.Node) bool {
		list := stmtList(n)
		for i, s := range list {
			if s == ifs && i > 0 {
				prev = list[i-1]
			}
		}
		return prev == nil
	})
	as, _ := prev.(*ast.AssignStmt)
	return as
}

// assignsExplained reports, for an assignment that gives v a value (found), whether
// that value is the answer of a call that explains it.
func (c *checker) assignsExplained(as *ast.AssignStmt, v *types.Var) (ok, found bool) {
	for j, lhs := range as.Lhs {
		lid, isID := ast.Unparen(lhs).(*ast.Ident)
		if !isID || (c.pass.TypesInfo.Defs[lid] != v && c.pass.TypesInfo.Uses[lid] != v) {
			continue
		}
		var call *ast.CallExpr
		idx := 0
		if len(as.Rhs) == 1 && len(as.Lhs) > 1 {
			call, _ = ast.Unparen(as.Rhs[0]).(*ast.CallExpr)
			idx = j
		} else if j < len(as.Rhs) {
			call, _ = ast.Unparen(as.Rhs[j]).(*ast.CallExpr)
		}
		return call != nil && c.explainedBy(c.calleeFunc(call), idx), true
	}
	return false, false
}

// calleeFunc is the function or method a call calls, nil for a builtin, a conversion or
// a function value.
func (c *checker) calleeFunc(call *ast.CallExpr) *types.Func {
	fn, _ := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
	return fn
}

func (c *checker) resultCount(call *ast.CallExpr) int {
	if sig, ok := c.pass.TypesInfo.TypeOf(call.Fun).(*types.Signature); ok {
		return sig.Results().Len()
	}
	return 0
}
