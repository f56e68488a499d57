package silentcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"iter"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// dropsFact marks a function that is handed a message or its payload and, on a decision
// about it, returns without a trace: handle(msg.Subject(), msg.Data()) whose first lines
// are if !filter.Match(data) { return }. At names the silent return, for the finding at
// the call.
type dropsFact struct{ At string }

func (*dropsFact) AFact()           {}
func (f *dropsFact) String() string { return "drops at " + f.At }

// seedHelper seeds a helper's derived set: its message and payload ([]byte) parameters.
func seedHelper(v *types.Var) bool { return isMessageSource(v.Type()) || isBytes(v.Type()) }

// seedWithSub also seeds the subscription a message arrived on (a type with an
// Unsubscribe method, as m.Sub) when the helper is handed a payload beside it: a helper
// that looks the subscription up and returns when it is not found (if !ok { return })
// filters the message with it. Alone, a subscription is what a loop fetches from, and
// its errors are no decision about a message.
func seedWithSub(v *types.Var) bool { return seedHelper(v) || isSubscription(v.Type()) }

func isSubscription(t types.Type) bool {
	obj, _, _ := types.LookupFieldOrMethod(t, true, nil, "Unsubscribe")
	fn, ok := obj.(*types.Func)
	return ok && fn.Type().(*types.Signature).Params().Len() == 0
}

// findDroppers marks the functions of this package that drop what they are handed
// (see dropsFact), directly or by handing it on, on their main path, to another such
// function, and exports the mark as a fact.
func (c *checker) findDroppers() {
	type decl struct {
		obj  *types.Func
		sig  *types.Signature
		body *ast.BlockStmt
		d    derived
	}
	var decls []decl
	for fn := range c.ownFuncDecls() {
		f, fd, obj := fn.file, fn.decl, fn.obj
		sig := obj.Type().(*types.Signature)
		res := sig.Results()
		if res.Len() > 1 || (res.Len() == 1 && !isErrorType(res.At(0).Type())) {
			continue
		}
		if c.handlerReason(f, sig, fd.Body, c.isHanded(obj)) != "" {
			continue // a handler: its own returns are judged where they are
		}
		if sig.Variadic() && isBatchType(sig.Params().At(sig.Params().Len()-1).Type()) {
			continue // takes messages to publish
		}
		seeded := false
		for v := range sig.Params().Variables() {
			seeded = seeded || seedHelper(v)
		}
		if !seeded {
			continue
		}
		seed := seedHelper
		for v := range sig.Params().Variables() {
			if isBytes(v.Type()) {
				seed = seedWithSub
			}
		}
		decls = append(decls, decl{obj, sig, fd.Body, c.deriveFrom(sig, fd.Body, seed)})
	}
	for _, dc := range decls {
		if at := c.silentReturn(dc.sig, dc.body, dc.d); at != "" {
			c.drops[dc.obj] = at
		}
	}
	for changed := true; changed; {
		changed = false
		for _, dc := range decls {
			if c.drops[dc.obj] != "" {
				continue
			}
			for _, s := range dc.body.List {
				if at := c.handsToDropper(s, dc.d, dc.obj); at != "" {
					c.drops[dc.obj] = at
					changed = true
					break
				}
			}
		}
	}
	for _, dc := range decls {
		if at := c.drops[dc.obj]; at != "" {
			c.pass.ExportObjectFact(dc.obj, &dropsFact{At: at})
		}
	}
}

// silentReturn finds a return in body that reports success (a bare return, or return
// nil from a function whose only result is an error) from a branch that decides about
// what the function was handed and records nothing.
func (c *checker) silentReturn(sig *types.Signature, body *ast.BlockStmt, d derived) string {
	at := ""
	inspectWithStack(body, func(n ast.Node, stack []ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok || at != "" {
			return false
		}
		ret, ok := n.(*ast.ReturnStmt)
		if !ok {
			return true
		}
		if len(ret.Results) > 0 && !(len(ret.Results) == 1 && c.isNil(ret.Results[0])) {
			return true
		}
		if len(ret.Results) == 0 && sig.Results().Len() == 1 && sig.Results().At(0).Name() != "" {
			return true // a bare return of a named error: what it hands back is not visible here
		}
		b := c.innermostBranch(stack)
		if b == nil || b.okBranch || !c.decides(b, d) {
			return true
		}
		if c.settlesBefore(b.stmts, ret.Pos()) || c.stmtsRecord(b.stmts, ret.Pos(), nil) {
			return true
		}
		if c.directiveFor(ret.Pos(), token.NoPos) != nil {
			return true // a deliberate, explained skip
		}
		pos := c.pass.Fset.Position(ret.Pos())
		at = fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line)
		return false
	})
	return at
}

// handsToDropper looks in n (not in function literals) for a call that hands a derived
// value to a function that drops it, and returns where that function drops it.
func (c *checker) handsToDropper(n ast.Node, d derived, self *types.Func) string {
	at := ""
	c.dropperCalls(n, d, self, func(_ *ast.CallExpr, drop string) bool {
		at = drop
		return false
	})
	return at
}

// dropperCalls calls found for each call in n (not in function literals) that hands a
// derived value to a function other than self that drops it, until found returns false.
func (c *checker) dropperCalls(n ast.Node, d derived, self *types.Func, found func(call *ast.CallExpr, at string) bool) {
	more := true
	c.inspectBody(n, func(n ast.Node, _ bool) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || !more {
			return more
		}
		fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
		if !ok || fn.Origin() == self {
			return true
		}
		at := c.dropsAt(fn.Origin())
		if at == "" {
			return true
		}
		for _, a := range call.Args {
			if d.mentions(c.pass.TypesInfo, a) {
				more = found(call, at)
				break
			}
		}
		return more
	})
}

func (c *checker) dropsAt(fn *types.Func) string {
	if fn.Pkg() == c.pass.Pkg {
		return c.drops[fn]
	}
	var f dropsFact
	if fn.Pkg() != nil && c.ownCode(fn.Pkg()) && c.pass.ImportObjectFact(fn, &f) {
		return f.At
	}
	return ""
}

// ownCode reports whether pkg belongs to the module being checked: the team's own
// helpers are followed, a library's are not. A client library's producer that returns
// early when it is closed (kgo's Produce) is no filter of the team's messages. Without
// module information (a driver that gives none) only the package itself is the team's.
func (c *checker) ownCode(pkg *types.Package) bool {
	if pkg == c.pass.Pkg {
		return true
	}
	if c.pass.Module == nil || c.pass.Module.Path == "" {
		return false
	}
	mod, path := c.pass.Module.Path, trimVendor(pkg.Path())
	return path == mod || strings.HasPrefix(path, mod+"/")
}

// checkHandOffs reports, in a function that receives a message, each call that hands the
// message or its payload to a helper that drops it without a trace.
func (c *checker) checkHandOffs(file *ast.File, sig *types.Signature, body *ast.BlockStmt, self *types.Func) {
	if c.clientCode(file) || !receivesMessage(sig) {
		return
	}
	d := c.deriveFrom(sig, body, seedMessages)
	c.dropperCalls(body, d, self, func(call *ast.CallExpr, at string) bool {
		c.report(call.Pos(), token.NoPos, "silent path: %s is handed the message (or its payload) and returns "+
			"without a trace at %s, so the message is dropped unrecorded; record why it is skipped there, or "+
			"return an outcome to the handler", c.text(call.Fun), at)
		return true
	})
}

// inspectWithStack is ast.Inspect with the path from root down to each node (root first,
// the node last): visit is called for every node in depth-first order and returns
// whether to go into the node's children.
func inspectWithStack(root ast.Node, visit func(n ast.Node, stack []ast.Node) bool) {
	var stack []ast.Node
	ast.Inspect(root, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return false
		}
		stack = append(stack, n)
		if !visit(n, stack) {
			stack = stack[:len(stack)-1] // Inspect calls no nil for a node it does not enter
			return false
		}
		return true
	})
}

// ownFuncDecl is a function declared with a body in one of the package's own files.
type ownFuncDecl struct {
	file *ast.File
	decl *ast.FuncDecl
	obj  *types.Func
}

// ownFuncDecls yields the functions declared with a body in the package's files, leaving
// out a broker client's own code (see clientCode).
func (c *checker) ownFuncDecls() iter.Seq[ownFuncDecl] {
	return func(yield func(ownFuncDecl) bool) {
		for _, f := range c.pass.Files {
			if c.clientCode(f) {
				continue
			}
			for _, dcl := range f.Decls {
				fd, ok := dcl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				obj, ok := c.pass.TypesInfo.Defs[fd.Name].(*types.Func)
				if !ok {
					continue
				}
				if !yield(ownFuncDecl{f, fd, obj}) {
					return
				}
			}
		}
	}
}

// walkWithStack calls visit for every node of body in depth-first order, with the path from
// body down to the node (body first, the node last), leaving out function literals
// and what is inside them: each is visited on its own, as a function.
func walkWithStack(body *ast.BlockStmt, visit func(n ast.Node, stack []ast.Node)) {
	inspectWithStack(body, func(n ast.Node, stack []ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		visit(n, stack)
		return true
	})
}
