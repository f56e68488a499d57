package silentcheck

import (
	"go/ast"
	"go/token"
	"go/types"
)

// derived is the set of a function's variables whose values come from the messages it
// handles: its message parameters and message-holding locals, and every variable
// assigned from an expression that mentions one of those (an event decoded from the
// payload, the error of that decoding, a key looked up from the event). A branch whose
// condition mentions none of them decides nothing about the message: a timer that fired,
// a counter that reached its limit, a flag of the program's own configuration.
type derived map[types.Object]bool

// deriveFrom computes the variables of body derived from the parameters for which seed
// is true and from the locals that hold messages.
func (c *checker) deriveFrom(sig *types.Signature, body *ast.BlockStmt, seed func(v *types.Var) bool) derived {
	info := c.pass.TypesInfo
	d := derived{}
	for v := range sig.Params().Variables() {
		if seed(v) {
			d[v] = true
		}
	}
	ast.Inspect(body, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if v, ok := info.Defs[id].(*types.Var); ok && isMessageSource(v.Type()) {
				d[v] = true
			}
		}
		return true
	})
	// Variables declared without a value (var ev Event): a method of one that is given
	// something derived from the message and answers only an error fills it in from
	// the message (ev.Deserialize(fields), whatever it takes).
	zero := map[types.Object]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Values) == 0 {
			for _, name := range vs.Names {
				if obj := info.Defs[name]; obj != nil {
					zero[obj] = true
				}
			}
		}
		return true
	})
	mark := func(lhs ast.Expr) bool {
		id, ok := ast.Unparen(lhs).(*ast.Ident)
		if !ok || id.Name == "_" {
			return false
		}
		obj := info.ObjectOf(id)
		if obj == nil || d[obj] {
			return false
		}
		d[obj] = true
		return true
	}
	for changed := true; changed; {
		changed = false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) == 2 && len(n.Rhs) == 1 {
					if u, ok := ast.Unparen(n.Rhs[0]).(*ast.UnaryExpr); ok && u.Op == token.ARROW {
						// v, ok := <-ch: ok tells that the channel closed, not
						// anything about a message.
						if d.mentions(info, u) && mark(n.Lhs[0]) {
							changed = true
						}
						return true
					}
				}
				for i, l := range n.Lhs {
					var r ast.Expr
					if len(n.Rhs) == len(n.Lhs) {
						r = n.Rhs[i]
					} else if len(n.Rhs) == 1 {
						r = n.Rhs[0]
					}
					if r != nil && d.mentions(info, r) && mark(l) {
						changed = true
					}
				}
			case *ast.CallExpr:
				// json.Unmarshal(m.Data, &ev): what the call fills in comes from the
				// message too.
				tainted := false
				for _, a := range n.Args {
					tainted = tainted || d.mentions(info, a)
				}
				if tainted {
					sig, _ := info.TypeOf(n.Fun).(*types.Signature)
					for i, a := range n.Args {
						if u, ok := ast.Unparen(a).(*ast.UnaryExpr); ok && u.Op == token.AND {
							if mark(u.X) {
								changed = true
							}
						}
						// json.Unmarshal(m.Data, ev) with ev := &Event{}: a pointer
						// handed where any value goes is filled in the same way.
						if id, ok := ast.Unparen(a).(*ast.Ident); ok && sig != nil && intoAny(sig, i) {
							if _, ok := info.TypeOf(id).Underlying().(*types.Pointer); ok && mark(id) {
								changed = true
							}
						}
					}
					// req.Unmarshal(m.Data): a method shaped like a decoder (it takes the
					// bytes and answers only an error) fills in its receiver.
					if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok && (decoderShaped(info, sel) || fillsZero(info, sel, zero)) {
						if mark(sel.X) {
							changed = true
						}
					}
				}
			case *ast.ValueSpec:
				for i, name := range n.Names {
					var r ast.Expr
					if len(n.Values) == len(n.Names) {
						r = n.Values[i]
					} else if len(n.Values) == 1 {
						r = n.Values[0]
					}
					if r != nil && d.mentions(info, r) && mark(name) {
						changed = true
					}
				}
			case *ast.RangeStmt:
				if d.mentions(info, n.X) {
					for _, e := range []ast.Expr{n.Key, n.Value} {
						if e != nil && mark(e) {
							changed = true
						}
					}
				}
			case *ast.TypeSwitchStmt:
				var x ast.Expr
				switch a := n.Assign.(type) {
				case *ast.AssignStmt:
					x = a.Rhs[0]
				case *ast.ExprStmt:
					x = a.X
				}
				if x != nil && d.mentions(info, x) {
					for _, cl := range n.Body.List {
						if obj := info.Implicits[cl]; obj != nil && !d[obj] {
							d[obj] = true
							changed = true
						}
					}
				}
			}
			return true
		})
	}
	return d
}

// mentions reports whether n refers to a derived variable.
func (d derived) mentions(info *types.Info, n ast.Node) bool {
	if n == nil || len(d) == 0 {
		return false
	}
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if found {
			return false
		}
		if id, ok := m.(*ast.Ident); ok {
			if obj := info.ObjectOf(id); obj != nil && d[obj] {
				found = true
			}
		}
		return !found
	})
	return found
}

// seedMessages seeds a handler's derived set with its message parameters.
func seedMessages(v *types.Var) bool { return isMessageSource(v.Type()) }

// seedPayloads seeds a helper's derived set with its message parameters and its payload
// parameters ([]byte, string): a helper handed msg.Data() decides about the message
// when it tests that payload.
func seedPayloads(v *types.Var) bool {
	return isMessageSource(v.Type()) || isBytes(v.Type()) || isString(v.Type())
}

// decoderShaped reports whether sel is a method that fills in its receiver from bytes:
// one []byte parameter and an error as its only result (a protobuf or a hand-written
// Unmarshal, a Decode).
func decoderShaped(info *types.Info, sel *ast.SelectorExpr) bool {
	s := info.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal {
		return false
	}
	sig, ok := s.Obj().Type().(*types.Signature)
	return ok && decodesBytes(sig)
}

// fillsZero reports whether sel is a method answering only an error, of a variable
// declared without a value (see deriveFrom): given something derived from the message,
// it fills that variable in (var ev Event; err = ev.Deserialize(fields)).
func fillsZero(info *types.Info, sel *ast.SelectorExpr, zero map[types.Object]bool) bool {
	id, ok := ast.Unparen(sel.X).(*ast.Ident)
	if !ok || !zero[info.Uses[id]] {
		return false
	}
	s := info.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal {
		return false
	}
	sig, ok := s.Obj().Type().(*types.Signature)
	return ok && sig.Params().Len() > 0 && answersOnlyError(sig)
}

// intoAny reports whether the i-th argument of a call to sig goes to a parameter of
// interface type (Unmarshal(data []byte, v any)): where a decoder takes what to fill in.
func intoAny(sig *types.Signature, i int) bool {
	params := sig.Params()
	if params.Len() == 0 {
		return false
	}
	var t types.Type
	switch {
	case i < params.Len()-1 || (i == params.Len()-1 && !sig.Variadic()):
		t = params.At(i).Type()
	case sig.Variadic():
		return false // a variadic ...any is values to print or format, not a target
	default:
		return false
	}
	_, ok := t.Underlying().(*types.Interface)
	return ok
}
