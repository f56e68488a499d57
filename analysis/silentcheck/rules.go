package silentcheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/constant"
	"go/format"
	"go/token"
	"go/types"
	"os"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// isMessageHandler reports whether a function with this signature and body is
// message-handling code:
//
//   - it is handed to a place typed as a message handler (handed);
//   - it settles a message it holds; or
//   - it receives a message (or a batch) and returns what a handler returns, so that its
//     result tells its caller what became of the message (see handlerResults).
//
// A callback without results that receives a message but is neither handed to a
// subscription nor settles anything is left alone: a core-NATS callback with nothing to
// settle is judged only where it is subscribed. A broker client's own code is not judged
// (see clientCode).
func (c *checker) isMessageHandler(file *ast.File, sig *types.Signature, body *ast.BlockStmt, handed bool) bool {
	why := c.handlerReason(file, sig, body, handed)
	if why != "" && listHandlers {
		fmt.Fprintf(os.Stderr, "%s: message handler (%s)\n", c.pass.Fset.Position(body.Pos()), why)
	}
	return why != ""
}

func (c *checker) handlerReason(file *ast.File, sig *types.Signature, body *ast.BlockStmt, handed bool) string {
	if c.clientCode(file) {
		return ""
	}
	if receivesMessage(sig) && handed {
		return "handed to a subscription, or the message by its handler"
	}
	if sig.Recv() != nil && isMessageType(sig.Recv().Type()) {
		return "" // a message's own method (a wrapper's Term) is the message, not its consumer
	}
	if receivesMessage(sig) && handlerResults(sig) && !c.outgoingOnly(sig, body) {
		return "receives a message and returns a result"
	}
	if claimsRecords(sig) {
		return "receives a claim of records (a consumer group's ConsumeClaim)"
	}
	if c.returnsOffset(sig, body) {
		return "receives a record and returns the offset to commit"
	}
	if c.settlesIn(body) {
		return "settles a message"
	}
	return ""
}

// handlerResults reports whether sig returns what a handler returns to whoever settles
// the message: an error (Watermill's NoPublishHandlerFunc, a team's func(m) error), a
// batch handler's bool, Watermill's ([]*Message, error), or one value of some other type
// (an outcome). A function that takes messages to publish (variadic) or turns a message
// into something else (Marshal: (X, error)) is not a handler.
func handlerResults(sig *types.Signature) bool {
	if sig.Variadic() && receivesMessage(types.NewSignatureType(nil, nil, nil,
		types.NewTuple(sig.Params().At(sig.Params().Len()-1)), nil, false)) {
		return false
	}
	res := sig.Results()
	switch res.Len() {
	case 1:
		// One message in, a bool out is a question about it (shouldAck(m), isFlowControl(m));
		// a batch in, a bool out is a batch handler's verdict.
		return !isBool(res.At(0).Type()) || receivesBatch(sig)
	case 2:
		return isError(res.At(1).Type()) && isBatchType(res.At(0).Type())
	}
	return false
}

// claimsRecords reports whether sig receives a claim: a value whose Messages() method
// returns a channel of Kafka records (sarama's ConsumerGroupClaim), so that the function
// is a consumer group's handler of that partition's records whatever it marks them with.
func claimsRecords(sig *types.Signature) bool {
	for v := range sig.Params().Variables() {
		obj, _, _ := types.LookupFieldOrMethod(v.Type(), true, nil, "Messages")
		fn, ok := obj.(*types.Func)
		if !ok {
			continue
		}
		msig := fn.Type().(*types.Signature)
		if msig.Params().Len() != 0 || msig.Results().Len() != 1 {
			continue
		}
		if ch, ok := msig.Results().At(0).Type().Underlying().(*types.Chan); ok && isRecordType(ch.Elem()) {
			return true
		}
	}
	return false
}

// returnsOffset reports whether a function receiving a Kafka record returns, among
// several results, an integer computed from the record's Offset (msg.Offset + 1): the
// offset its caller commits, which settles the record.
func (c *checker) returnsOffset(sig *types.Signature, body *ast.BlockStmt) bool {
	if body == nil || sig.Results().Len() < 2 {
		return false
	}
	recs := false
	for v := range sig.Params().Variables() {
		recs = recs || isRecordType(v.Type())
	}
	if !recs {
		return false
	}
	offs := c.offsetVars(body)
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		if ret, ok := n.(*ast.ReturnStmt); ok && len(ret.Results) == sig.Results().Len() {
			for i, e := range ret.Results {
				if b, ok := sig.Results().At(i).Type().Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 && c.mentionsOffset(e, offs) {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

// offsetVars are the variables of body assigned from a record's Offset, or from one of
// them (offset := msg.Offset + 1; offset = t.Offset(msg.Partition, offset)).
func (c *checker) offsetVars(body *ast.BlockStmt) map[types.Object]bool {
	offs := map[types.Object]bool{}
	for changed := true; changed; {
		changed = false
		ast.Inspect(body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || len(as.Lhs) != len(as.Rhs) {
				return true
			}
			for i, l := range as.Lhs {
				id, ok := l.(*ast.Ident)
				if !ok {
					continue
				}
				obj := c.pass.TypesInfo.ObjectOf(id)
				if obj != nil && !offs[obj] && c.mentionsOffset(as.Rhs[i], offs) {
					offs[obj] = true
					changed = true
				}
			}
			return true
		})
	}
	return offs
}

// mentionsOffset reports whether e reads a record's Offset field or an offset variable.
func (c *checker) mentionsOffset(e ast.Node, offs map[types.Object]bool) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if n.Sel.Name == "Offset" {
				if t := c.pass.TypesInfo.TypeOf(n.X); t != nil && isRecordType(t) {
					found = true
				}
			}
		case *ast.Ident:
			if obj := c.pass.TypesInfo.Uses[n]; obj != nil && offs[obj] {
				found = true
			}
		}
		return !found
	})
	return found
}

func receivesBatch(sig *types.Signature) bool {
	for v := range sig.Params().Variables() {
		if isBatchType(v.Type()) {
			return true
		}
	}
	return false
}

// outgoingOnly reports whether every use of the function's message parameters writes to
// them (msg.Header.Set(...), msg.Data = ...): a helper that fills in a message to be sent
// is not handling one it received.
func (c *checker) outgoingOnly(sig *types.Signature, body *ast.BlockStmt) bool {
	info := c.pass.TypesInfo
	params := map[types.Object]bool{}
	for v := range sig.Params().Variables() {
		if isMessageType(v.Type()) {
			params[v] = true
		}
	}
	uses, writes := 0, 0
	inspectWithStack(body, func(n ast.Node, stack []ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if !ok || !params[info.ObjectOf(id)] {
			return true
		}
		uses++
		if len(stack) < 3 {
			return true
		}
		sel, ok := stack[len(stack)-2].(*ast.SelectorExpr)
		if !ok || sel.X != id {
			return true
		}
		switch parent := stack[len(stack)-3].(type) {
		case *ast.AssignStmt:
			for _, l := range parent.Lhs {
				if l == sel {
					writes++
				}
			}
		case *ast.SelectorExpr: // msg.Header.Set(...), msg.Header.Add(...)
			if sel.Sel.Name == "Header" || sel.Sel.Name == "Headers" {
				writes++
			}
		}
		return true
	})
	return uses > 0 && uses == writes
}

// settleCall returns the method name when call settles a message (m.Ack(), …), or
// "Commit" when it marks or commits Kafka records (session.MarkMessage(rec, ""),
// client.CommitRecords(ctx, recs...), reader.CommitMessages(ctx, m)): for a record that
// is its acknowledgement. A helper of the checked module that settles the message it is
// handed (saver.SaveNack(&m, false)) settles it with its method (see settlementOf).
func (c *checker) settleCall(call *ast.CallExpr) (string, bool) {
	st, ok := c.settlementOf(call)
	return st.name, ok
}

func isRecordBatch(t types.Type) bool {
	s, ok := types.Unalias(t).Underlying().(*types.Slice)
	return ok && isRecordType(s.Elem())
}

// stmtsRecord reports whether stmts, a branch of a function, leave a trace before limit
// (anywhere when limit is NoPos): a recording call, an error or a message handed on
// through a channel, or a return of the function with an explicit value, except a
// return of the error of the call skip (a settlement's own error).
func (c *checker) stmtsRecord(stmts []ast.Stmt, limit token.Pos, skip *ast.CallExpr) bool {
	found := false
	kept := c.settlementErrs(stmts, skip)
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
			case *ast.SendStmt:
				if c.isHandOff(n) {
					found = true
				}
			case *ast.ReturnStmt:
				if !inLit && c.returnsExplicit(n, skip, kept) {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// settlementErrs returns the variables that stmts assign the error of the settlement
// call skip to (err = d.Nack(false, false)) and nothing else: returning one of them
// (if err != nil { return err }; return err) hands back the settlement's own failure,
// or nil, and says nothing about why the message was settled.
func (c *checker) settlementErrs(stmts []ast.Stmt, skip *ast.CallExpr) map[types.Object]bool {
	if skip == nil {
		return nil
	}
	kept := map[types.Object]bool{}
	other := map[types.Object]bool{}
	for _, s := range stmts {
		ast.Inspect(s, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			fromSkip := len(as.Rhs) == 1 && ast.Unparen(as.Rhs[0]) == skip
			for _, l := range as.Lhs {
				if id, ok := ast.Unparen(l).(*ast.Ident); ok {
					if obj := c.pass.TypesInfo.ObjectOf(id); obj != nil {
						if fromSkip {
							kept[obj] = true
						} else {
							other[obj] = true
						}
					}
				}
			}
			return true
		})
	}
	for v := range other {
		delete(kept, v)
	}
	return kept
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
				if c.onceDo(m) {
					// once.Do(func() { ... }) runs its function on the spot (the
					// first time: a log line once per process is still a trace).
					if lit, ok := ast.Unparen(m.Args[0]).(*ast.FuncLit); ok {
						walk(lit.Body, true)
						return false
					}
				}
				return true
			}
			return visit(m, inLit)
		})
	}
	walk(n, false)
}

// onceDo reports whether call is (*sync.Once).Do, which calls its argument before it
// returns.
func (c *checker) onceDo(call *ast.CallExpr) bool {
	fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
	return ok && len(call.Args) == 1 && fn.Name() == "Do" && fn.Pkg() != nil && fn.Pkg().Path() == "sync"
}

// returnsExplicit reports whether ret hands something to the caller: a non-nil value of
// a type that is neither error nor bool (an outcome, a settlement label, messages to
// publish) or a non-nil error other than skip's (or a variable in kept holding it). A
// bool is a batch handler's verdict, which return true makes a success report, not a
// trace.
func (c *checker) returnsExplicit(ret *ast.ReturnStmt, skip *ast.CallExpr, kept map[types.Object]bool) bool {
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
		if id, ok := ast.Unparen(e).(*ast.Ident); ok && kept[c.pass.TypesInfo.ObjectOf(id)] {
			continue // the settlement's own error, kept in a variable
		}
		if t := c.pass.TypesInfo.TypeOf(e); t != nil {
			if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsBoolean != 0 {
				continue
			}
		}
		return true
	}
	return false
}

func (c *checker) isNil(e ast.Expr) bool {
	tv, ok := c.pass.TypesInfo.Types[e]
	return ok && tv.IsNil()
}

func (c *checker) isTrue(e ast.Expr) bool {
	tv, ok := c.pass.TypesInfo.Types[e]
	return ok && tv.Value != nil && tv.Value.Kind() == constant.Bool && constant.BoolVal(tv.Value)
}

// branch is the innermost if/else/case block holding a node.
type branch struct {
	stmts     []ast.Stmt
	desc      string         // how the diagnostic names it
	errBranch bool           // taken when an error is not nil
	okBranch  bool           // taken when an error is nil, or when the work succeeded
	errVars   []types.Object // the error variables its condition tests
	cond      []ast.Node     // what decides whether it is taken
	ifs       *ast.IfStmt    // the if it belongs to, if any
	shutdown  bool           // taken when the context ends (see shutdownCond)
	absent    bool           // taken when the message itself is nil (see absentMessage)
}

// inThen reports whether b is the body of its if (not the else block).
func (b *branch) inThen() bool {
	return b != nil && b.ifs != nil && b.ifs.Body != nil && len(b.stmts) > 0 && &b.ifs.Body.List[0] == &b.stmts[0]
}

// nilCompared returns what be compares with nil (x in x == nil, nil != x), or nil when
// neither side is nil.
func (c *checker) nilCompared(be *ast.BinaryExpr) ast.Expr {
	switch {
	case c.isNil(be.X):
		return be.Y
	case c.isNil(be.Y):
		return be.X
	}
	return nil
}

// absentMessage reports whether cond is only the message's own nil check (msg == nil):
// a receive from a closed channel of records, a nil handed in. There is no message to
// drop; the branch decides nothing about one.
func (c *checker) absentMessage(cond ast.Expr) bool {
	be, ok := ast.Unparen(cond).(*ast.BinaryExpr)
	if !ok || be.Op != token.EQL {
		return false
	}
	x := c.nilCompared(be)
	if x == nil {
		return false
	}
	id, ok := ast.Unparen(x).(*ast.Ident)
	if !ok {
		return false
	}
	t := c.pass.TypesInfo.TypeOf(id)
	return t != nil && isMessageType(t)
}

// fetchFailed reports whether ifs tests the error of the call that was to take the
// message, right where it was taken (m, err := r.ReadMessage(ctx) just before it, or in
// its init): the fetch failed, so there is no message to drop. The same variable may be
// given a message's error later on (_, err = json.Marshal(m)), which is why this is asked
// of the statement, not of the variable.
func (c *checker) fetchFailed(ifs *ast.IfStmt, errVars []types.Object, parent ast.Node) bool {
	if len(errVars) == 0 {
		return false
	}
	fetch := ifs.Init
	if fetch == nil {
		if block, ok := parent.(*ast.BlockStmt); ok {
			for i, s := range block.List {
				if s == ifs && i > 0 {
					fetch = block.List[i-1]
				}
			}
		}
	}
	as, ok := fetch.(*ast.AssignStmt)
	if !ok || len(as.Rhs) != 1 {
		return false
	}
	if _, ok := ast.Unparen(as.Rhs[0]).(*ast.CallExpr); !ok {
		return false
	}
	assigned := map[types.Object]bool{}
	takes := false
	for _, l := range as.Lhs {
		id, ok := ast.Unparen(l).(*ast.Ident)
		if !ok {
			continue
		}
		obj := c.pass.TypesInfo.ObjectOf(id)
		if obj == nil {
			continue
		}
		assigned[obj] = true
		takes = takes || isMessageType(obj.Type())
	}
	for _, v := range errVars {
		if !assigned[v] {
			return false
		}
	}
	return takes
}

// shutdownCond reports whether cond asks whether the program is shutting down: it tests
// an error against context.Canceled or context.DeadlineExceeded (errors.Is(err,
// context.Canceled), err == context.Canceled) or a context's own Err() against nil. A
// return there leaves the message unsettled for the broker to hand out again; it is not
// a decision about the message.
func (c *checker) shutdownCond(cond ast.Expr) bool {
	if cond == nil {
		return false
	}
	found := false
	ast.Inspect(cond, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if obj, ok := c.pass.TypesInfo.Uses[n.Sel].(*types.Var); ok && obj.Pkg() != nil &&
				obj.Pkg().Path() == "context" && (obj.Name() == "Canceled" || obj.Name() == "DeadlineExceeded") {
				found = true
			}
		case *ast.CallExpr:
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok && sel.Sel.Name == "Err" && len(n.Args) == 0 {
				if t := c.pass.TypesInfo.TypeOf(sel.X); t != nil && isContext(t) {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

// decides reports whether the branch's condition is about the message: it mentions a
// value derived from it (see derived).
func (c *checker) decides(b *branch, d derived) bool {
	for _, n := range b.cond {
		if n != nil && d.mentions(c.pass.TypesInfo, n) {
			return true
		}
	}
	return false
}

// checkFunc applies the rules to one function body, leaving nested function literals to
// their own visit.
func (c *checker) checkFunc(file *ast.File, sig *types.Signature, body *ast.BlockStmt, handed bool) {
	if !c.isMessageHandler(file, sig, body, handed) {
		return
	}
	d := c.deriveFrom(sig, body, seedHandler(sig))
	visit := func(n ast.Node, stack []ast.Node) {
		switch n := n.(type) {
		case *ast.ReturnStmt:
			c.checkReturn(n, sig, stack, d)
		case *ast.CallExpr:
			if st, ok := c.settlementOf(n); ok && c.discards(st) {
				// stack[0] is the body walked: the function's, or a continuation's.
				c.checkSettle(n, st, sig, stack[0].(*ast.BlockStmt), stack, d)
			}
		case *ast.BranchStmt:
			if n.Tok == token.CONTINUE {
				c.checkContinue(n, stack, d)
			}
		case *ast.SelectStmt:
			c.checkFullChannel(n, d)
		case *ast.ExprStmt, *ast.GoStmt, *ast.AssignStmt:
			c.checkDiscard(n.(ast.Stmt), d)
		case *ast.IfStmt:
			c.checkImplicitElse(n, sig, stack, d)
			if c.swallowsError(n) {
				c.reportEmpty(n.Pos(), n.Body.Rbrace, "if "+c.text(n.Cond), "a message handler")
			}
		case *ast.SwitchStmt, *ast.TypeSwitchStmt:
			c.checkImplicitDefault(n.(ast.Stmt), sig, stack, d)
		case *ast.CaseClause:
			if len(n.Body) == 0 && len(stack) >= 3 {
				if sw, ok := stack[len(stack)-3].(*ast.SwitchStmt); ok && sw.Tag == nil {
					for _, e := range n.List {
						if ok, _ := c.errCheck(e, true); ok {
							c.reportEmpty(n.Pos(), n.End(), "case "+c.exprList(n.List), "a message handler")
							break
						}
					}
				}
			}
		}
	}
	walkWithStack(body, visit)
	// A goroutine the handler starts on the spot to go on with the message is the
	// handler's own continuation: its branches are judged as the handler's.
	for _, lit := range c.continuations(body, d) {
		walkWithStack(lit.Body, visit)
	}
}

// continuations returns the function literals body starts as goroutines on the spot to
// go on with the message: go func() { ... m ... }(), taking and returning nothing, whose
// body mentions something derived from it. (Not inside other function literals.)
func (c *checker) continuations(body *ast.BlockStmt, d derived) []*ast.FuncLit {
	var lits []*ast.FuncLit
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.GoStmt:
			lit, ok := ast.Unparen(n.Call.Fun).(*ast.FuncLit)
			if !ok || len(n.Call.Args) != 0 {
				return true
			}
			if sig, ok := c.pass.TypesInfo.TypeOf(lit).(*types.Signature); ok &&
				sig.Params().Len() == 0 && sig.Results().Len() == 0 && d.mentions(c.pass.TypesInfo, lit.Body) {
				lits = append(lits, lit)
			}
			return false
		}
		return true
	})
	return lits
}

// checkContinue reports a continue that skips a Kafka record in a branch that decides
// about it and records nothing. A record's offset is positional: committing any later
// record commits this one, so skipping it is acknowledging it. (A skipped NATS or AMQP
// message is not acknowledged and comes back; those loops are left alone.)
func (c *checker) checkContinue(cont *ast.BranchStmt, stack []ast.Node, d derived) {
	loop, records := c.inMessageLoop(stack, cont.Pos())
	if loop == nil || cont.Label != nil {
		return // not a loop over messages: the skipped thing was never this loop's
	}
	if !records && c.loopSettles(loop) && !c.acksFirst(loop, cont.Pos()) {
		return // a skipped message that the loop does not settle comes back
	}
	b := c.innermostBranch(stack)
	if b == nil || b.okBranch || b.absent || c.explained(b, stack[0]) {
		return
	}
	if !c.decides(b, d) && (b.errBranch || (records && !c.guardsWorkOut(stack, d)) || (!records && !c.guardsWork(stack, true, d))) {
		return
	}
	if !records {
		for _, s := range b.stmts {
			if s.Pos() < cont.Pos() && c.worksOn(s, d) {
				return // handled there, then the next one (if first(m) { check(m); continue })
			}
		}
	}
	if c.settlesBefore(b.stmts, cont.Pos()) || c.stmtsRecord(b.stmts, cont.Pos(), nil) {
		return
	}
	if !records {
		c.report(cont.Pos(), token.NoPos, "silent path: branch %q skips a message without a trace; nothing in this "+
			"loop settles messages (core NATS, auto-ack), so it is gone; log or record why it is skipped", b.desc)
		return
	}
	c.report(cont.Pos(), token.NoPos, "silent path: branch %q skips a record without a trace; its offset is "+
		"committed with the next record's, so it is dropped for good; log or record why it is skipped", b.desc)
}

// loopsOverRecords reports whether loop handles Kafka records: it ranges over records or
// takes one (from a channel, a fetch) in its body.
func (c *checker) loopsOverRecords(loop ast.Node) bool { return c.loopsOver(loop, isRecordType) }

// rangesOver reports whether a range statement yields items of a kind: its value is one,
// or it ranges over a channel of them or over a function yielding them (range over func,
// iter.Seq[Message]).
func (c *checker) rangesOver(l *ast.RangeStmt, kind func(types.Type) bool) bool {
	info := c.pass.TypesInfo
	if l.Value != nil {
		if t := info.TypeOf(l.Value); t != nil && kind(t) {
			return true
		}
	}
	if t := info.TypeOf(l.X); t != nil {
		switch u := t.Underlying().(type) {
		case *types.Chan:
			return kind(u.Elem())
		case *types.Signature:
			// A range over a function (an iter.Seq[Message] a team's queue wraps its
			// deliveries in): it yields what its yield function is given.
			if u.Params().Len() != 1 {
				return false
			}
			yield, ok := u.Params().At(0).Type().Underlying().(*types.Signature)
			if !ok {
				return false
			}
			for v := range yield.Params().Variables() {
				if kind(v.Type()) {
					return true
				}
			}
		}
	}
	return false
}

// loopsOver reports whether loop handles one item of a kind at a time: it ranges over
// them or takes one (from a channel, a fetch) in its body. A message it builds from its
// own items to send (see builds) is not one it handles.
func (c *checker) loopsOver(loop ast.Node, kind func(types.Type) bool) bool {
	info := c.pass.TypesInfo
	var body *ast.BlockStmt
	switch l := loop.(type) {
	case *ast.RangeStmt:
		if c.rangesOver(l, kind) {
			return true
		}
		body = l.Body
	case *ast.ForStmt:
		body = l.Body
	}
	found := false
	built := map[*ast.Ident]bool{} // messages the loop builds to send (see builds)
	c.inspectBody(body, func(n ast.Node, _ bool) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Rhs) == 1 && c.builds(n.Rhs[0], loop) {
				for _, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						built[id] = true
					}
				}
			}
		case *ast.Ident:
			if v, ok := info.Defs[n].(*types.Var); ok && kind(v.Type()) && !built[n] {
				found = true
			}
		}
		return !found
	})
	return found
}

// checkImplicitElse reports an if without an else that holds all the work done on the
// message, when nothing but its settlement follows: when the condition is false the
// message is settled (or the callback returns) having done nothing and said nothing.
// if t, ok := triggers[key]; ok { t.Fire(rec) } followed by the offset's commit is a
// filter without a trace.
func (c *checker) checkImplicitElse(ifs *ast.IfStmt, sig *types.Signature, stack []ast.Node, d derived) {
	if ifs.Else != nil || len(stack) < 2 {
		return
	}
	if isErr, _ := c.errCheck(ifs.Cond, true); isErr {
		return
	}
	// if err := decode(m, &ev); err == nil { work }: the error's path is the implicit
	// else. It is judged only where the message ends with the function: nothing
	// follows the if, in a callback without results that settles nothing (a core NATS
	// subscriber; a JetStream message left unacknowledged there comes back).
	// In the body of a loop over Kafka records the error's path is judged too: the record
	// is committed with the next one, whatever follows the if.
	okCond := c.okCheck(ifs.Cond, true)
	inRecords := c.inRecordLoopBody(stack)
	if okCond && !inRecords && (sig.Results().Len() != 0 || len(stack) != 2 || c.settlesIn(stack[0])) {
		return
	}
	if !d.mentions(c.pass.TypesInfo, ifs.Cond) && !d.mentions(c.pass.TypesInfo, ifs.Init) {
		return
	}
	block, ok := stack[len(stack)-2].(*ast.BlockStmt)
	if !ok || !c.decidesWhole(stack) {
		return // inside another branch (its own decision), or a loop over something else
	}
	if okCond && !inRecords && ifs != block.List[len(block.List)-1] {
		return // something follows: the message does not end with the if
	}
	// The body must do the work on the message and leave through the bottom.
	exits, works := c.bodyWork(ifs.Body, d, false)
	if exits || !works {
		return
	}
	if !c.aloneWithSettlement(block, decision{ifs, []ast.Node{ifs.Init, ifs.Cond}, ifs.Body}, sig, stack, d) {
		return
	}
	// if h.Handle(ctx, m) { commit } (or if ok := h.Handle(ctx, m); ok): the false path
	// is the helper's "no", which it leaves a trace of itself (see explainsFact).
	if !okCond && c.answerExplained(ifs.Cond, false, ifs, stack[0]) {
		return
	}
	if okCond {
		c.report(ifs.Pos(), token.NoPos, "silent path: when %q is false (the error's path, the if has no else) "+
			"the message is dropped without a trace; log or record the error", c.text(ifs.Cond))
		return
	}
	c.report(ifs.Pos(), token.NoPos, "silent path: when %q is false the message is dropped without a trace "+
		"(the if has no else); record why it is skipped, or return an outcome", c.text(ifs.Cond))
}

// bodyWork reports whether body leaves through something other than its bottom (a
// return, a break or continue, a panic; with errReturns, a return of an error or an
// outcome does not count, only one that reports success) and whether it does work on
// the message (see checkImplicitElse).
func (c *checker) bodyWork(body ast.Node, d derived, errReturns bool) (exits, works bool) {
	c.inspectBody(body, func(n ast.Node, inLit bool) bool {
		switch n := n.(type) {
		case *ast.ReturnStmt:
			// A return inside a function literal called on the spot (func() { ...;
			// return }()) leaves the literal, not the if.
			if errReturns && len(n.Results) > 0 && !c.settlesOrSucceeds(n, nil) {
				break // return err: a failure handed back, not a way around the bottom
			}
			exits = exits || !inLit
		case *ast.BranchStmt:
			exits = true
		case *ast.CallExpr:
			if c.isPanic(n) {
				exits = true
			}
			// Work is what is done with the message: not settling it, and not only
			// reporting on it (if got != want { t.Errorf(...) } is a check); answering
			// the requester is work.
			// Reading the message (m.Data(), string(b)) is not work either.
			if tv, ok := c.pass.TypesInfo.Types[n.Fun]; ok && tv.IsType() {
				break // a conversion
			}
			if c.reads(n) || c.collectsErrors(n) {
				return false // fmt.Errorf, strings.EqualFold; errs = append(errs, err)
			}
			if _, ok := c.settleCall(n); !ok && len(n.Args) > 0 && (c.repliesTo(n) || !c.isRecordingCall(n)) {
				for _, a := range n.Args {
					works = works || d.mentions(c.pass.TypesInfo, a)
				}
				if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok {
					works = works || d.mentions(c.pass.TypesInfo, sel.X)
				}
			}
		}
		return !exits
	})
	return exits, works
}

// checkImplicitDefault reports the implicit default (rule 5): a switch on a value derived
// from the message (or a type switch on one), without a default, whose cases hold all
// the work done on it, when nothing but its settlement follows and nothing was done with
// the message before it. A value no case names is settled having done nothing (switch
// version { case 0, 1: decodeCommit(rec); case 2: decodeMetadata(rec) } then return
// nil; switch e := ev.(type) { case Created: ...; case Deleted: ... } then m.Ack()). A
// case may hand a failure back (return err); one that leaves otherwise is an early exit,
// not the work.
func (c *checker) checkImplicitDefault(sw ast.Stmt, sig *types.Signature, stack []ast.Node, d derived) {
	var init ast.Stmt
	var tag ast.Expr
	var body *ast.BlockStmt
	what := "a value"
	switch sw := sw.(type) {
	case *ast.SwitchStmt:
		init, tag, body = sw.Init, sw.Tag, sw.Body
	case *ast.TypeSwitchStmt:
		init, tag, body = sw.Init, typeSwitched(sw), sw.Body
		what = "a type"
	}
	if tag == nil || len(stack) < 2 {
		return
	}
	if !d.mentions(c.pass.TypesInfo, tag) && (init == nil || !d.mentions(c.pass.TypesInfo, init)) {
		return
	}
	block, ok := stack[len(stack)-2].(*ast.BlockStmt)
	if !ok || !c.decidesWhole(stack) {
		return
	}
	works := false
	for _, cl := range body.List {
		cc, ok := cl.(*ast.CaseClause)
		if !ok || cc.List == nil {
			return // a default: every value has its case
		}
		exits, w := c.bodyWork(cc, d, true)
		if exits {
			return
		}
		works = works || w
	}
	if !works {
		return
	}
	if !c.aloneWithSettlement(block, decision{sw, []ast.Node{init, tag}, body}, sig, stack, d) {
		return
	}
	c.report(sw.Pos(), token.NoPos, "silent path: %s of %q that no case names is dropped without a trace "+
		"(the switch has no default); record why it is skipped, or return an outcome", what, c.text(tag))
}

// typeSwitched is the value a type switch asks the type of: v in switch v.(type) or
// switch x := v.(type).
func typeSwitched(sw *ast.TypeSwitchStmt) ast.Expr {
	var e ast.Expr
	switch a := sw.Assign.(type) {
	case *ast.ExprStmt:
		e = a.X
	case *ast.AssignStmt:
		if len(a.Rhs) == 1 {
			e = a.Rhs[0]
		}
	}
	if ta, ok := ast.Unparen(e).(*ast.TypeAssertExpr); ok {
		return ta.X
	}
	return nil
}

// decidesWhole reports whether the statement at the top of stack stands in the
// function's body or in the body of a loop over messages: one message's whole handling,
// not a branch inside another decision.
func (c *checker) decidesWhole(stack []ast.Node) bool {
	if len(stack) <= 2 {
		return true
	}
	switch loop := stack[len(stack)-3].(type) {
	case *ast.ForStmt, *ast.RangeStmt:
		return c.loopsOver(loop, isMessageType)
	}
	return false
}

// decision is an if or a switch deciding about the message: the statement, what it
// decides on (an if's init and condition, a switch's init and tag) and its body.
type decision struct {
	stmt  ast.Stmt
	heads []ast.Node
	body  ast.Node
}

// aloneWithSettlement reports whether the decision (an if or a switch in block) holds
// all the work on the message: nothing before it in block did work on the
// message, and only its settlement follows (see checkImplicitElse).
func (c *checker) aloneWithSettlement(block *ast.BlockStmt, dec decision, sig *types.Signature, stack []ast.Node, d derived) bool {
	var offs map[types.Object]bool // for a record handler returning the offset to commit
	if body, ok := stack[0].(*ast.BlockStmt); ok && c.returnsOffset(sig, body) {
		offs = c.offsetVars(body)
	}
	// Before it: no work on the message. When the message was already put to use above
	// (a function invoked, a row written), an if at the end (if req.CallbackURL != nil {
	// post the result }) is an extra, not all the work.
	after := false
	settleErrs := map[types.Object]bool{}
	for _, s := range block.List {
		if s == dec.stmt {
			after = true
			continue
		}
		if !after {
			if c.worksBefore(s, dec, d) {
				return false
			}
			continue
		}
		// After it: only settlements, or a return that reports success (for a record
		// handler returning the offset to commit, the offset's bookkeeping and that return),
		// or a settlement whose error is kept (err = saver.Ack(&m)) and the check of that
		// error (if err != nil { log }).
		if vars := c.assignsSettlement(s); vars != nil {
			for _, v := range vars {
				settleErrs[v] = true
			}
			continue
		}
		if c.checksSettlement(s, settleErrs) {
			continue
		}
		if !c.settlesOrSucceeds(s, sig) && !c.commitsOffset(s, dec, sig, stack[0], offs) {
			return false
		}
	}
	return true
}

// settlesIn reports whether n settles a message anywhere outside function literals.
func (c *checker) settlesIn(n ast.Node) bool {
	found := false
	c.inspectBody(n, func(n ast.Node, _ bool) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if _, ok := c.settleCall(call); ok {
				found = true
			}
		}
		return !found
	})
	return found
}

// settlesOrSucceeds reports whether s only settles the message (m.Ack(),
// sess.MarkMessage(rec, "")) or reports success (return nil, return true, return).
func (c *checker) settlesOrSucceeds(s ast.Stmt, sig *types.Signature) bool {
	switch s := s.(type) {
	case *ast.ExprStmt:
		if call, ok := ast.Unparen(s.X).(*ast.CallExpr); ok {
			name, ok := c.settleCall(call)
			return ok && positiveAcks[name]
		}
	case *ast.ReturnStmt:
		if len(s.Results) == 0 {
			return true
		}
		for _, e := range s.Results {
			if !c.isNil(e) && !c.isTrue(e) {
				return false
			}
		}
		return true
	case *ast.IfStmt: // if err := m.Ack(); err != nil { ... }
		if s.Init == nil {
			return false
		}
		found := false
		c.inspectBody(s.Init, func(n ast.Node, _ bool) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if name, ok := c.settleCall(call); ok && positiveAcks[name] {
					found = true
				}
			}
			return !found
		})
		return found
	}
	return false
}

// assignsSettlement returns the variables s assigns the result of a positive ack to
// (err = saver.Ack(&m), err := m.Ack()), or nil when s is not that.
func (c *checker) assignsSettlement(s ast.Stmt) []types.Object {
	as, ok := s.(*ast.AssignStmt)
	if !ok || len(as.Rhs) != 1 {
		return nil
	}
	call, ok := ast.Unparen(as.Rhs[0]).(*ast.CallExpr)
	if !ok {
		return nil
	}
	if name, ok := c.settleCall(call); !ok || !positiveAcks[name] {
		return nil
	}
	vars := []types.Object{}
	for _, l := range as.Lhs {
		if id, ok := ast.Unparen(l).(*ast.Ident); ok && id.Name != "_" {
			if obj := c.pass.TypesInfo.ObjectOf(id); obj != nil {
				vars = append(vars, obj)
			}
		}
	}
	return vars
}

// checksSettlement reports whether s is an if without an else that only tests the error
// of a settlement (one of errs) against nil: what it does is about the settlement
// failing, not the message's work.
func (c *checker) checksSettlement(s ast.Stmt, errs map[types.Object]bool) bool {
	ifs, ok := s.(*ast.IfStmt)
	if !ok || ifs.Init != nil || ifs.Else != nil || len(errs) == 0 {
		return false
	}
	isErr, vars := c.errCheck(ifs.Cond, true)
	if !isErr || len(vars) == 0 {
		return false
	}
	for _, v := range vars {
		if !errs[v] {
			return false
		}
	}
	return true
}

// commitsOffset reports whether s, after ifs in a record handler that returns the
// offset to commit (offs is not nil), only keeps that offset or returns it: an
// assignment to offset variables (or a loop of nothing else), or a return whose results
// are nil, the offset, or what only the decision's body filled in (the messages its work
// produced, a callback it chose).
func (c *checker) commitsOffset(s ast.Stmt, dec decision, sig *types.Signature, body ast.Node, offs map[types.Object]bool) bool {
	if offs == nil {
		return false
	}
	info := c.pass.TypesInfo
	keeps := func(s ast.Stmt) bool {
		as, ok := s.(*ast.AssignStmt)
		if !ok {
			return false
		}
		for _, l := range as.Lhs {
			id, ok := l.(*ast.Ident)
			if !ok || !offs[info.ObjectOf(id)] {
				return false
			}
		}
		return true
	}
	switch s := s.(type) {
	case *ast.AssignStmt:
		return keeps(s)
	case *ast.RangeStmt:
		for _, b := range s.Body.List {
			if !keeps(b) {
				return false
			}
		}
		return true
	case *ast.ReturnStmt:
		if len(s.Results) != sig.Results().Len() {
			return false
		}
		for _, e := range s.Results {
			if c.isNil(e) || c.isTrue(e) || c.mentionsOffset(e, offs) {
				continue
			}
			id, ok := ast.Unparen(e).(*ast.Ident)
			if !ok || !c.filledOnlyIn(info.ObjectOf(id), dec.body, body) {
				return false
			}
		}
		return true
	}
	return false
}

// filledOnlyIn reports whether every assignment to v outside filled (the decision's
// body) gives it an empty value (nil, an empty literal, its declaration without a
// value), so that what it holds was produced by that body.
func (c *checker) filledOnlyIn(v types.Object, filled ast.Node, body ast.Node) bool {
	if v == nil || v.Parent() == nil {
		return false
	}
	empty := func(e ast.Expr) bool {
		if c.isNil(e) {
			return true
		}
		lit, ok := ast.Unparen(e).(*ast.CompositeLit)
		return ok && len(lit.Elts) == 0
	}
	ok := true
	ast.Inspect(body, func(n ast.Node) bool {
		if n == filled {
			return false
		}
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if id, isID := l.(*ast.Ident); isID && c.pass.TypesInfo.ObjectOf(id) == v {
					if len(n.Rhs) != len(n.Lhs) || !empty(n.Rhs[i]) {
						ok = false
					}
				}
			}
		case *ast.ValueSpec:
			for i, id := range n.Names {
				if c.pass.TypesInfo.ObjectOf(id) == v && i < len(n.Values) && !empty(n.Values[i]) {
					ok = false
				}
			}
		}
		return ok
	})
	return ok
}

func (c *checker) reportEmpty(pos, end token.Pos, desc, where string) {
	c.report(pos, end, "silent path: empty error branch %q in %s swallows the error; "+
		"return an outcome (consumer.Retry(reason, err)), return the error, or record it with telemetry Decisions.Record", desc, where)
}

// checkReturn applies rule 1 to ret, the top of stack. What reports success depends on
// the handler's shape: return nil (every result nil) when the last result is an error,
// return true when the only result is a bool (a batch handler: true acknowledges the
// batch), a bare return from a callback without results.
func (c *checker) checkReturn(ret *ast.ReturnStmt, sig *types.Signature, stack []ast.Node, d derived) {
	if claimsRecords(sig) {
		// A consumer group's ConsumeClaim that returns ends its claim: the records it
		// has not marked are not committed, and the partition's next owner reads them
		// again. Only a skip that a later mark commits past drops one (rule 4).
		return
	}
	results := sig.Results()
	what := "returns nil from a message handler without recording a decision"
	fix := "return an outcome (consumer.Invalid(reason, err)) or record it with telemetry Decisions.Record before returning"
	switch {
	case len(ret.Results) > 0 && results.Len() == 1 && isBool(results.At(0).Type()):
		if !c.isTrue(ret.Results[0]) {
			return // false asks for redelivery; anything else is not visible here
		}
		what = "returns true (the batch is acknowledged) from a message handler without recording a decision"
		fix = "log or record why the message is dropped, or return false to have it redelivered"
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
			// A goroutine ranging over deliveries, settling them itself: a return there
			// leaves the loop, not a message's handler (see checkLoopReturn).
			if loop := c.leavesMessageLoop(ret, stack); loop != nil {
				c.checkLoopReturn(ret, stack, loop, d)
			}
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
		return // the main path or the success path, not an early exit
	}
	if b.absent || c.explained(b, stack[0]) {
		return // no message (msg == nil), or a helper's empty answer it has already explained
	}
	if b.shutdown && results.Len() == 0 {
		// The context ended: a callback or loop without results leaves the message
		// unsettled for the broker to hand out again. (A handler returning nil there
		// still reports success.)
		return
	}
	if !receivesMessage(sig) && !b.errBranch && !c.decides(b, d) {
		// A loop that fetches or claims messages (a fetch loop, a group's
		// ConsumeClaim) leaves when the source closes or the context ends: no verdict
		// about a message.
		return
	}
	guard := false
	if results.Len() == 0 && !b.errBranch && !c.decides(b, d) {
		// A callback's branch that decides nothing about the message (a timer reset,
		// a limit reached, a flag of the program's): the work is done or was never the
		// callback's to do. A handler that returns nil there still reports success for
		// a message it did not handle, and stays a finding. Unless the branch leaves
		// before the work, which follows it (if s.isClosed() { return } and then the
		// message handed on): a decision about the subscriber drops the message too.
		if !c.guardsWork(stack, false, d) {
			return
		}
		guard = true
	}
	if results.Len() == 1 && len(ret.Results) == 0 && results.Len() > 0 {
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
	if c.settlesBefore(b.stmts, ret.Pos()) || c.guardsSettlement(stack) {
		return // the settlement is what rule 2 judges
	}
	if c.stmtsRecord(b.stmts, ret.Pos(), nil) {
		return
	}
	if guard {
		what = "returns before the message's work (which follows it) without settling the message or recording why"
	}
	c.report(ret.Pos(), token.NoPos, "silent path: branch %q %s; %s", b.desc, what, fix)
}

// checkSettle applies rule 2 to a call that acks or terminates a message. A positive
// ack is judged only in a branch; a termination anywhere, because a message removed for
// good with no trace is the silent drop in its purest form, whether it happens in a
// branch, in the body of a loop over a fetched batch or on a handler's main path.
func (c *checker) checkSettle(call *ast.CallExpr, st settlement, sig *types.Signature, body *ast.BlockStmt, stack []ast.Node, d derived) {
	name := st.name
	b := c.innermostBranch(stack)
	if b == nil {
		if positiveAcks[name] {
			return // acking on the main path
		}
		b = c.enclosingScope(body, stack)
	}
	if b.okBranch && positiveAcks[name] {
		return // acking on the success path
	}
	if positiveAcks[name] && !b.errBranch && (!c.decides(b, d) || c.choosesHowToAck(b)) {
		return // a choice of how (or whether, by configuration) to acknowledge, not of the message's fate
	}
	if c.explained(b, stack[0]) {
		return // settling on a helper's empty answer, which the helper explained
	}
	if positiveAcks[name] && !b.errBranch && c.acksBeforeWork(b, stack, d) {
		return // acknowledged up front (at most once), and the work goes on below
	}
	if c.handedOutcome(b, sig, body) {
		return // an ack function carrying out the error it was handed
	}
	if positiveAcks[name] && c.nilGuard(b, st.msg) {
		return // if msg != nil { msg.Ack() }: acking what there is, once its work was delivered
	}
	recv := c.settleDesc(st, call)
	if b.errBranch && positiveAcks[name] {
		if c.stmtsRecord(b.stmts, token.NoPos, call) {
			return // the branch leaves a trace (a log, a returned error): not silent
		}
		c.report(call.Pos(), token.NoPos, "silent path: branch %q acknowledges the message (%s) on an error path, "+
			"so the broker deletes it as if it had succeeded; return an outcome (consumer.Retry(reason, err) "+
			"or consumer.Invalid(reason, err)) and let the runner settle it", b.desc, recv)
		return
	}
	if c.stmtsRecord(b.stmts, token.NoPos, call) {
		return
	}
	fix := "consumer.Applied(reason) or consumer.Duplicate(reason)"
	if !positiveAcks[name] {
		fix = "consumer.Invalid(reason, err), which dead-letters it"
	}
	c.report(call.Pos(), token.NoPos, "silent path: branch %q settles the message (%s) without recording a decision; "+
		"return an outcome (%s) or record it with telemetry Decisions.Record before settling", b.desc, recv, fix)
}

// handedOutcome reports whether b decides on an error the function was handed: a
// function that receives no message but an error (an ack function returned beside the
// message, func(ctx, res error) error, called with the outcome of its processing)
// settles the message it captured the way that error says. The decision was made, and
// its error returned, where the message was processed: that error is the trace. (A
// settlement the function decides on anything else is still judged.)
func (c *checker) handedOutcome(b *branch, sig *types.Signature, body *ast.BlockStmt) bool {
	if b == nil || receivesMessage(sig) {
		return false
	}
	handed := false
	for v := range sig.Params().Variables() {
		if isMessageSource(v.Type()) {
			return false
		}
		if isErrorType(v.Type()) {
			handed = true
		}
	}
	if !handed {
		return false
	}
	return c.decides(b, c.deriveFrom(sig, body, func(v *types.Var) bool { return isErrorType(v.Type()) }))
}

// nilGuard reports whether b is the body of an if whose whole condition is x != nil: a
// guard that the message exists (it was found again after its work was tracked to
// delivery), not a decision about what happens to it.
func (c *checker) nilGuard(b *branch, x ast.Expr) bool {
	if !b.inThen() {
		return false
	}
	be, ok := ast.Unparen(b.ifs.Cond).(*ast.BinaryExpr)
	if !ok || be.Op != token.NEQ {
		return false
	}
	other := c.nilCompared(be)
	return other != nil && c.text(other) == c.text(x)
}

// acksBeforeWork reports whether b is the body of an if that acknowledges the message
// and falls through to its work: nothing in it leaves, and a statement after the if puts
// the message to use (if opts.AutoAck { d.Ack(false) } then the job is pushed). The
// message is acknowledged before it is processed, not instead: a choice of when to
// acknowledge, not a decision to drop it.
func (c *checker) acksBeforeWork(b *branch, stack []ast.Node, d derived) bool {
	if !b.inThen() {
		return false
	}
	if exits, _ := c.bodyWork(b.ifs.Body, d, false); exits {
		return false
	}
	for i := len(stack) - 1; i > 0; i-- {
		if stack[i] != b.ifs {
			continue
		}
		after := false
		for _, s := range stmtList(stack[i-1]) {
			if s == b.ifs {
				after = true
				continue
			}
			if after && c.worksOn(s, d) {
				return true
			}
		}
		return false
	}
	return false
}

// choosesHowToAck reports whether b is one branch of an if whose every branch
// acknowledges the message (if double { m.DoubleAck() } else { m.Ack() }).
func (c *checker) choosesHowToAck(b *branch) bool {
	if b.ifs == nil || b.ifs.Else == nil {
		return false
	}
	acks := func(n ast.Node) bool {
		found := false
		c.inspectBody(n, func(n ast.Node, _ bool) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if name, ok := c.settleCall(call); ok && positiveAcks[name] {
					found = true
				}
			}
			return !found
		})
		return found
	}
	return acks(b.ifs.Body) && acks(b.ifs.Else)
}

// enclosingScope is the block a settlement outside every branch belongs to: the body of
// the innermost loop (one fetched message's handling), else the function's body.
func (c *checker) enclosingScope(body *ast.BlockStmt, stack []ast.Node) *branch {
	for i := len(stack) - 2; i >= 0; i-- {
		switch n := stack[i].(type) {
		case *ast.RangeStmt:
			return &branch{stmts: n.Body.List, desc: "for range " + c.text(n.X)}
		case *ast.ForStmt:
			return &branch{stmts: n.Body.List, desc: "for loop body"}
		}
	}
	return &branch{stmts: body.List, desc: "main path"}
}

// guardsSettlement reports whether the innermost if holding the top of stack tests a
// settlement's own result (if err := m.Ack(); err != nil { return }): the message was
// handed back to the broker, which redelivers it when the settlement failed, so
// returning there drops nothing.
func (c *checker) guardsSettlement(stack []ast.Node) bool {
	for i := len(stack) - 2; i >= 0; i-- {
		ifs, ok := stack[i].(*ast.IfStmt)
		if !ok {
			continue
		}
		return (ifs.Init != nil && c.settlesIn(ifs.Init)) || c.settlesIn(ifs.Cond)
	}
	return false
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
				b := &branch{stmts: n.List, desc: "if " + c.text(ifs.Cond), cond: []ast.Node{ifs.Init, ifs.Cond}, ifs: ifs}
				if !then {
					b.desc = "else of " + b.desc
				}
				b.errBranch, b.errVars = c.errCheck(ifs.Cond, then)
				var parent ast.Node
				if i >= 2 {
					parent = stack[i-2]
				}
				b.okBranch = c.okCheck(ifs.Cond, then) || c.succeeded(ifs, then, parent)
				b.shutdown = then && c.shutdownCond(ifs.Cond)
				b.absent = then && (c.absentMessage(ifs.Cond) || c.fetchFailed(ifs, b.errVars, parent))
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
			for _, e := range n.List {
				b.cond = append(b.cond, e)
			}
			if i >= 2 {
				switch sw := stack[i-2].(type) {
				case *ast.SwitchStmt:
					b.cond = append(b.cond, sw.Init, sw.Tag)
				case *ast.TypeSwitchStmt:
					b.cond = append(b.cond, sw.Init, sw.Assign)
				}
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
			if c.receivesMessage(n.Comm) {
				continue // case msg := <-msgs: where the message arrives, its main path
			}
			b := &branch{stmts: n.Body, desc: "default", cond: []ast.Node{n.Comm}}
			if n.Comm != nil {
				b.desc = "case " + c.text(n.Comm)
			}
			if _, ok := n.Comm.(*ast.SendStmt); ok {
				// case out <- m: the message (or whatever was sent) has been handed
				// on; what the case does next follows that hand-off.
				b.okBranch = true
			}
			return b
		}
	}
	return nil
}

// succeeded reports whether the branch of ifs is conditioned on the handler's own work
// succeeding: the body of if process(m) (or if ok, a bool the work produced), the else
// of if !process(m). Only when the if decides how the message ends, not when it is an
// early exit before the work: it has an else, or it is the last statement of its block.
// if duplicate(m) { m.Ack(); return nil } followed by the real work stays a finding.
func (c *checker) succeeded(ifs *ast.IfStmt, then bool, parent ast.Node) bool {
	cond := ast.Unparen(ifs.Cond)
	if u, ok := cond.(*ast.UnaryExpr); ok && u.Op == token.NOT {
		cond, then = ast.Unparen(u.X), !then
	}
	if !then {
		return false
	}
	switch cond.(type) {
	case *ast.CallExpr, *ast.Ident:
	default:
		return false
	}
	if t := c.pass.TypesInfo.TypeOf(cond); t == nil || !isBool(t) {
		return false
	}
	if ifs.Else != nil {
		return true
	}
	list := stmtList(parent)
	return len(list) > 0 && list[len(list)-1] == ifs
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
		if c.isNil(y) && t != nil && isError(t) {
			return true
		}
	}
	return c.httpSuccess(be, then)
}

// httpSuccess reports whether a branch guarded by be is taken only when an HTTP
// response's status is a success (2xx): the body of if resp.StatusCode < 300 (or ==
// http.StatusOK, <= 299), the else block of if resp.StatusCode >= 300 (or != 200, >
// 299). After a request, that is the work's success, as err == nil is: a helper's
// return nil there is the work done, not a decision to skip it.
func (c *checker) httpSuccess(be *ast.BinaryExpr, then bool) bool {
	info := c.pass.TypesInfo
	x, y, op := ast.Unparen(be.X), ast.Unparen(be.Y), be.Op
	if tv := info.Types[x]; tv.Value != nil {
		// 300 > resp.StatusCode: the status on the left.
		x, y = y, x
		if o, ok := mirrored[op]; ok {
			op = o
		}
	}
	sel, ok := x.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "StatusCode" {
		return false
	}
	if t := info.TypeOf(sel.X); t == nil || !isNamed(derefType(t), "net/http", "Response") {
		return false
	}
	tv := info.Types[y]
	if tv.Value == nil || tv.Value.Kind() != constant.Int {
		return false
	}
	n, exact := constant.Int64Val(tv.Value)
	if !exact {
		return false
	}
	if !then {
		// The else block of the opposite test: != 200, >= 300, > 299.
		if op, ok = elseOf[op]; !ok {
			return false
		}
	}
	switch op {
	case token.EQL, token.LEQ:
		return n >= 200 && n < 300
	case token.LSS:
		return n > 200 && n <= 300
	}
	return false
}

var (
	// mirrored is the comparison with its sides swapped (a < b is b > a).
	mirrored = map[token.Token]token.Token{token.LSS: token.GTR, token.GTR: token.LSS, token.LEQ: token.GEQ, token.GEQ: token.LEQ}
	// elseOf is the comparison an else block is taken on, for those httpSuccess asks.
	elseOf = map[token.Token]token.Token{token.NEQ: token.EQL, token.GEQ: token.LSS, token.GTR: token.LEQ}
)

func isError(t types.Type) bool { return types.Implements(t, errorType) }

func isBool(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsBoolean != 0
}

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

// readingPackages are the standard packages (and OpenTelemetry's attribute and trace
// API) whose functions read, convert, decode or describe a value: calling them on the
// message is looking at it, not working on it.
var readingPackages = []string{"encoding", "strings", "bytes", "strconv", "fmt", "errors", "time",
	"unicode", "net/url", "path", "sort", "slices", "maps", "context", "sync", "math", "regexp",
	"go.opentelemetry.io"}

// worksBefore reports whether the statement s, which comes before the decision (an if or
// a switch) in the same block, already puts the message to use: a call given something
// derived from it that does not settle it, record it, read it (a method of the message, a
// conversion, a decoder or string function of the standard library) or derive what the
// decision decides on (ev, err := decode(m) followed by if ev.Wanted { ... } is reading,
// and so is a method of ev answering only an error, err = ev.Deserialize(fields), which
// fills it in).
func (c *checker) worksBefore(s ast.Stmt, dec decision, d derived) bool {
	info := c.pass.TypesInfo
	// What the if decides on: results assigned here and used in its condition are a
	// derivation, not work.
	decidedOn := map[types.Object]bool{}
	for _, h := range dec.heads {
		if h == nil {
			continue
		}
		ast.Inspect(h, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && info.Uses[id] != nil {
				decidedOn[info.Uses[id]] = true
			}
			return true
		})
	}
	if as, ok := s.(*ast.AssignStmt); ok {
		for _, l := range as.Lhs {
			if id, ok := ast.Unparen(l).(*ast.Ident); ok && decidedOn[info.ObjectOf(id)] {
				return false
			}
		}
	}
	works := false
	c.inspectBody(s, func(n ast.Node, inLit bool) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || inLit || works {
			return !works && !inLit
		}
		if c.neverWork(call, false) {
			return true
		}
		if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
			// ev.Deserialize(fields) fills in what the if decides on: deriving it.
			if id, ok := ast.Unparen(sel.X).(*ast.Ident); ok && decidedOn[info.Uses[id]] {
				if sig, ok := info.TypeOf(call.Fun).(*types.Signature); ok && answersOnlyError(sig) {
					return true
				}
			}
		}
		works = c.handedDerived(call, d)
		return !works
	})
	return works
}

// reads reports whether call is a function of a reading package (see readingPackages).
func (c *checker) reads(call *ast.CallExpr) bool {
	fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
	if !ok || fn.Pkg() == nil {
		return false
	}
	path := fn.Pkg().Path()
	for _, p := range readingPackages {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// collectsErrors reports whether call is append(errs, err...): a check that collects
// what it found for someone to report, not work done with the message.
func (c *checker) collectsErrors(call *ast.CallExpr) bool {
	id, ok := ast.Unparen(call.Fun).(*ast.Ident)
	if !ok || len(call.Args) < 2 {
		return false
	}
	if b, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); !ok || b.Name() != "append" {
		return false
	}
	for _, a := range call.Args[1:] {
		if t := c.pass.TypesInfo.TypeOf(a); t == nil || !isErrorType(t) {
			return false
		}
	}
	return true
}

// receivesMessage reports whether a select case's communication receives a message into
// a new variable (case msg := <-msgs, case m, ok := <-sub): the body is that message's
// handling from its start, not a branch deciding about it.
func (c *checker) receivesMessage(comm ast.Stmt) bool {
	as, ok := comm.(*ast.AssignStmt)
	if !ok || as.Tok != token.DEFINE || len(as.Rhs) != 1 || len(as.Lhs) == 0 {
		return false
	}
	if u, ok := ast.Unparen(as.Rhs[0]).(*ast.UnaryExpr); !ok || u.Op != token.ARROW {
		return false
	}
	id, ok := as.Lhs[0].(*ast.Ident)
	if !ok {
		return false
	}
	obj := c.pass.TypesInfo.Defs[id]
	return obj != nil && isMessageType(obj.Type())
}

// checkFullChannel reports a select that hands the message (or something derived from
// it) on a channel next to an empty default: when the channel is full, the message is
// gone without a trace (select { case ch <- m: default: }).
func (c *checker) checkFullChannel(sel *ast.SelectStmt, d derived) {
	var def *ast.CommClause
	hands := false
	for _, s := range sel.Body.List {
		cc := s.(*ast.CommClause)
		if cc.Comm == nil {
			def = cc
			continue
		}
		if send, ok := cc.Comm.(*ast.SendStmt); ok && d.mentions(c.pass.TypesInfo, send.Value) {
			hands = true
		}
	}
	if def == nil || !hands || len(def.Body) != 0 {
		return
	}
	c.report(def.Pos(), token.NoPos, "silent path: the select's empty default drops the message without a trace "+
		"when the channel is full; record why it is dropped, or block (or settle it for redelivery)")
}

// stmtList is the statement list of a block, or of a case or select clause; nil for any
// other node.
func stmtList(n ast.Node) []ast.Stmt {
	switch n := n.(type) {
	case *ast.BlockStmt:
		return n.List
	case *ast.CaseClause:
		return n.Body
	case *ast.CommClause:
		return n.Body
	}
	return nil
}

// isNamed reports whether t is the named type path.name.
func isNamed(t types.Type, path, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == path && n.Obj().Name() == name
}

// derefType is t, or what t points to.
func derefType(t types.Type) types.Type {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// checkDiscard reports s, a statement in message-handling code (or in a loop over
// messages), when it throws away the error of a work step on the message: a call given
// something derived from the message (see isWork, replies aside) whose error result is
// dropped (see discardedError). When the step fails, the message ends as if its work
// were done and nothing records that it was not. A function of the checked module that
// records every failure before handing it back (see explainsFact) has explained it.
func (c *checker) checkDiscard(s ast.Stmt, d derived) {
	if call, last := c.discardedError(s); call != nil {
		c.judgeDiscard(s, call, last, d)
	}
}

// judgeDiscard is checkDiscard for call, the call s makes, whose error (result last) s
// drops.
func (c *checker) judgeDiscard(s ast.Stmt, call *ast.CallExpr, last int, d derived) {
	if !c.handedDerived(call, d) || c.neverWork(call, false) || c.explainedBy(c.calleeFunc(call), last) {
		return
	}
	c.report(s.Pos(), token.NoPos, "silent failure: the error of %s is thrown away; when that step fails the message "+
		"ends as if its work were done, with no trace; check the error and record it (or hand it back)", shorten(c.text(call.Fun)))
}

// discardedError returns the call s makes whose every result, the last an error, is
// dropped: a statement of its own (nc.Publish(subj, out)), assigned to _ (_ =
// ch.Publish(...), _, _ = svc.Fill(ctx, ev)) or started as a goroutine (go
// c.handler(m)), with the error's index; nil otherwise. A call whose value is kept (ev, _
// := decode(b)) is a derivation, and what is done with the value is judged where it is
// used; a literal called or started here is judged as a continuation, if at all.
func (c *checker) discardedError(s ast.Stmt) (*ast.CallExpr, int) {
	var call *ast.CallExpr
	switch s := s.(type) {
	case *ast.ExprStmt:
		call, _ = ast.Unparen(s.X).(*ast.CallExpr)
	case *ast.GoStmt:
		call = s.Call
	case *ast.AssignStmt:
		if len(s.Rhs) != 1 {
			return nil, 0
		}
		for _, l := range s.Lhs {
			if id, ok := ast.Unparen(l).(*ast.Ident); !ok || id.Name != "_" {
				return nil, 0
			}
		}
		call, _ = ast.Unparen(s.Rhs[0]).(*ast.CallExpr)
	}
	if call == nil {
		return nil, 0
	}
	if _, lit := ast.Unparen(call.Fun).(*ast.FuncLit); lit {
		return nil, 0
	}
	sig, ok := c.pass.TypesInfo.TypeOf(call.Fun).(*types.Signature)
	if !ok || sig.Results().Len() == 0 {
		return nil, 0
	}
	last := sig.Results().Len() - 1
	if !isErrorType(sig.Results().At(last).Type()) {
		return nil, 0
	}
	return call, last
}
