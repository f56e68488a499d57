package silentcheck

import (
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/types/typeutil"
)

// This file holds the shapes found as misses in the second held-out set and fixed on it
// as development data: a decision about the subscriber (closed, not the leader) taken
// before the message's work, a skip in a loop over messages nothing settles, a function
// the message is handed to by its handler, and a request decoded from the message handed
// along with it.

// findCarriedHandlers marks the functions of this package, without results, that receive
// a message and are called with one by message-handling code or by a loop over messages
// (for d := range deliveries { go r.handle(d) }): the message's handling goes on there,
// so they are judged like the callback that was subscribed.
func (c *checker) findCarriedHandlers() {
	info := c.pass.TypesInfo
	for changed := true; changed; {
		changed = false
		for _, f := range c.pass.Files {
			if c.clientCode(f) {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				var sig *types.Signature
				var body *ast.BlockStmt
				handed := false
				switch fn := n.(type) {
				case *ast.FuncDecl:
					obj, ok := info.Defs[fn.Name].(*types.Func)
					if !ok || fn.Body == nil {
						return false
					}
					sig, body, handed = obj.Type().(*types.Signature), fn.Body, c.isHanded(obj)
				case *ast.FuncLit:
					s, ok := info.TypeOf(fn).(*types.Signature)
					if !ok {
						return false
					}
					sig, body, handed = s, fn.Body, c.handedLits[fn]
				default:
					return true
				}
				handler := c.handlerReason(f, sig, body, handed) != ""
				walkWithStack(body, func(m ast.Node, stack []ast.Node) {
					call, ok := m.(*ast.CallExpr)
					if !ok {
						return
					}
					fn, ok := typeutil.Callee(info, call).(*types.Func)
					if !ok || fn.Pkg() != c.pass.Pkg {
						return
					}
					fn = fn.Origin()
					fsig := fn.Type().(*types.Signature)
					if fsig.Results().Len() != 0 || !receivesMessage(fsig) || c.isHanded(fn) {
						return
					}
					if fsig.Recv() != nil && isMessageType(fsig.Recv().Type()) {
						return
					}
					given := false
					for _, a := range call.Args {
						if t := info.TypeOf(a); t != nil && isMessageType(t) {
							given = true
						}
					}
					if !given {
						return
					}
					inLoop := false
					for _, s := range stack {
						switch s.(type) {
						case *ast.ForStmt, *ast.RangeStmt:
							inLoop = inLoop || c.loopsOver(s, isMessageType)
						}
					}
					if handler || inLoop {
						c.carried[fn] = true
						changed = true
					}
				})
				return true
			})
		}
	}
}

// isHanded reports whether fn is handed to a place typed as a message handler, or is
// handed the message by one (see findCarriedHandlers).
func (c *checker) isHanded(fn *types.Func) bool { return c.handedFuncs[fn] || c.carried[fn] }

// isDecodedRequest reports whether t is a request decoded by its own method: a pointer to
// a type with Unmarshal([]byte) error (a protobuf request). Handed to a function beside
// the message it was decoded from, it is the message too.
func isDecodedRequest(t types.Type) bool {
	if _, ok := types.Unalias(t).(*types.Pointer); !ok {
		return false
	}
	obj, _, _ := types.LookupFieldOrMethod(t, true, nil, "Unmarshal")
	fn, ok := obj.(*types.Func)
	if !ok {
		return false
	}
	return decodesBytes(fn.Type().(*types.Signature))
}

// seedHandler seeds a handler's derived set: its message parameters and, when it receives
// a message, the requests decoded from it that it is handed beside it
// (perform(m *nats.Msg, req *pb.UnsubscribeRequest)).
func seedHandler(sig *types.Signature) func(v *types.Var) bool {
	withRequests := receivesMessage(sig)
	return func(v *types.Var) bool {
		return seedMessages(v) || (withRequests && isDecodedRequest(v.Type()))
	}
}

// guardsWorkOut is guardsWork for a branch that may stand inside other ifs: the branch,
// or one of the ifs holding it (if err != nil { if errors.Is(err, errNoWorker) {
// continue }; return err }), leaves before the record's work in the loop's body. A
// decision about the consumer (no worker left) skips the record all the same.
func (c *checker) guardsWorkOut(stack []ast.Node, d derived) bool {
	if c.guardsWork(stack, true, d) {
		return true
	}
	for i := len(stack) - 2; i >= 1; i-- {
		switch n := stack[i].(type) {
		case *ast.IfStmt:
			inBranch := false
			if blk, ok := stack[i-1].(*ast.BlockStmt); ok && i >= 2 {
				if outer, ok := stack[i-2].(*ast.IfStmt); ok && (outer.Body == blk || outer.Else == blk) {
					inBranch = true
				}
			}
			if !inBranch {
				// n stands where the record is handled, not in another if's branch:
				// judge the branch of n that holds the skip.
				if i+2 >= len(stack) {
					return false
				}
				_ = n
				return c.guardsWork(stack[:i+3], true, d)
			}
		case *ast.BlockStmt:
			continue
		default:
			return false
		}
	}
	return false
}

// guardsWork reports whether the branch b, at the top of stack, leaves before the
// message's work: the statement holding it (an if, a switch or a select) stands in the
// block where the message's handling happens (the function's body, or the body of a loop
// over messages or of the select case receiving one when inLoop), and the statements
// after it put the message to use. Whatever the condition was about (a closed
// subscriber, a node that is not the leader), the message is gone without its work.
func (c *checker) guardsWork(stack []ast.Node, inLoop bool, d derived) bool {
	// The node owning the innermost branch, and its index in stack.
	owner := -1
	node := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 1 && owner < 0; i-- {
		switch n := stack[i].(type) {
		case *ast.BlockStmt:
			if ifs, ok := stack[i-1].(*ast.IfStmt); ok && (ifs.Body == n || ifs.Else == n) {
				owner = i - 1
			}
		case *ast.CaseClause:
			if node.Pos() > n.Colon && i >= 2 {
				owner = i - 2
			}
		case *ast.CommClause:
			if node.Pos() > n.Colon && !c.receivesMessage(n.Comm) && i >= 2 {
				owner = i - 2
			}
		case *ast.ForStmt, *ast.RangeStmt, *ast.FuncLit:
			return false
		}
	}
	if owner < 1 {
		return false
	}
	stmt, ok := stack[owner].(ast.Stmt)
	if !ok {
		return false
	}
	var list []ast.Stmt
	switch p := stack[owner-1].(type) {
	case *ast.BlockStmt:
		if !inLoop {
			if owner-1 != 0 {
				return false // not the function's body
			}
		} else {
			if owner < 2 {
				return false
			}
			switch l := stack[owner-2].(type) {
			case *ast.ForStmt:
				if l.Body != p || !c.takesMessageBefore(l, stmt.Pos()) {
					return false
				}
			case *ast.RangeStmt:
				if l.Body != p || !c.takesMessageBefore(l, stmt.Pos()) {
					return false
				}
			default:
				return false
			}
		}
		list = p.List
	case *ast.CommClause:
		if !inLoop || !c.receivesMessage(p.Comm) {
			return false
		}
		list = p.Body
	default:
		return false
	}
	after := false
	for _, s := range list {
		if s == stmt {
			after = true
			continue
		}
		if after && c.worksOn(s, d) {
			return true
		}
	}
	return false
}

// worksOn reports whether s puts the message to use: a call given something derived from
// it that does not settle it, record it or only read it (see isWork), a send of it on a
// channel, or storing it where it outlives the statement (pb.buf = msg.Data,
// sock.queue = append(sock.queue, m)).
func (c *checker) worksOn(s ast.Stmt, d derived) bool {
	info := c.pass.TypesInfo
	works := false
	c.inspectBody(s, func(n ast.Node, inLit bool) bool {
		if works || inLit {
			return false
		}
		switch n := n.(type) {
		case *ast.SendStmt:
			works = d.mentions(info, n.Value)
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				switch ast.Unparen(l).(type) {
				case *ast.SelectorExpr, *ast.IndexExpr, *ast.StarExpr:
				default:
					continue
				}
				if len(n.Rhs) == len(n.Lhs) && d.mentions(info, n.Rhs[i]) {
					works = true
				}
			}
		case *ast.CallExpr:
			works = c.isWork(n, d)
		}
		return !works
	})
	return works
}

// isWork reports whether call puts something derived from the message to use: it is
// given it (as an argument or its receiver) and is not a conversion or builtin, a
// settlement, a recording call, a method of the message (reading it), a question about it
// (a bool result) or a function of a reading package.
func (c *checker) isWork(call *ast.CallExpr, d derived) bool {
	return !c.neverWork(call, true) && c.handedDerived(call, d)
}

// neverWork reports whether call is no work on a message whatever it is given: a
// conversion or builtin, a settlement, a recording call, a method of the message (reading
// it; with replyIsWork, a reply to it is work), a question (a bool result) or a function
// of a reading package.
func (c *checker) neverWork(call *ast.CallExpr, replyIsWork bool) bool {
	info := c.pass.TypesInfo
	if tv, ok := info.Types[call.Fun]; ok && (tv.IsType() || tv.IsBuiltin()) {
		return true // a conversion, len(m.Data)
	}
	if _, ok := c.settleCall(call); ok || c.isRecordingCall(call) {
		return true
	}
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		if t := info.TypeOf(sel.X); t != nil && isMessageSource(t) && !(replyIsWork && c.repliesTo(call)) {
			return true // reading the message: m.Data(), msg.Metadata()
		}
	}
	if fn, ok := typeutil.Callee(info, call).(*types.Func); ok && fn.Pkg() != nil {
		if res := fn.Type().(*types.Signature).Results(); res.Len() == 1 && isBool(res.At(0).Type()) {
			return true // a question about it: valid(ev)
		}
	}
	return c.reads(call)
}

// handedDerived reports whether call is given something derived from the message, as an
// argument or as its receiver.
func (c *checker) handedDerived(call *ast.CallExpr, d derived) bool {
	info := c.pass.TypesInfo
	for _, a := range call.Args {
		if d.mentions(info, a) {
			return true
		}
	}
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		return d.mentions(info, sel.X)
	}
	return false
}

// loopSettles reports whether the body of loop settles a message: a message skipped
// there without settling comes back, and a skip is no drop.
func (c *checker) loopSettles(loop ast.Node) bool {
	body := loopBody(loop)
	return body != nil && c.settlesIn(body)
}

// loopBody is the body of a for or range statement, or nil.
func loopBody(loop ast.Node) *ast.BlockStmt {
	switch l := loop.(type) {
	case *ast.ForStmt:
		return l.Body
	case *ast.RangeStmt:
		return l.Body
	}
	return nil
}

// acksFirst reports whether loop's body acknowledges the message on its main path before
// pos (for _, m := range msgs { m.Ack(); ... }): a message skipped after that does not
// come back, however the loop settles the others.
func (c *checker) acksFirst(loop ast.Node, pos token.Pos) bool {
	body := loopBody(loop)
	if body == nil {
		return false
	}
	for _, s := range body.List {
		if s.End() > pos {
			return false
		}
		var call *ast.CallExpr
		switch s := s.(type) {
		case *ast.ExprStmt:
			call, _ = ast.Unparen(s.X).(*ast.CallExpr)
		case *ast.AssignStmt:
			if len(s.Rhs) == 1 {
				call, _ = ast.Unparen(s.Rhs[0]).(*ast.CallExpr)
			}
		}
		if call == nil {
			continue
		}
		if name, ok := c.settleCall(call); ok && positiveAcks[name] {
			return true
		}
	}
	return false
}

// checkLoops applies rule 4 to the loops over messages of a function that is not itself
// message-handling code (a core NATS NextMsg loop, a range over auto-acknowledged AMQP
// deliveries settles nothing, so nothing else makes it a handler): a continue there that
// skips a message without a trace drops it. So does a loop over Kafka records there (a
// service's main reading from a consumer group's reader, which commits what it hands
// out, or polling a client that commits in the background): the skipped record is
// committed with the next one. For the same reason rule 5 applies to the body of such a
// loop over records: an if or a switch there that holds all of a record's work, with
// nothing after it, skips the record it does not take (switch ev.Type { case "created":
// ... } at the end of main's read loop) and the next read commits it.
func (c *checker) checkLoops(file *ast.File, sig *types.Signature, body *ast.BlockStmt, handed bool) {
	if c.clientCode(file) || c.handlerReason(file, sig, body, handed) != "" {
		return
	}
	var d derived
	derive := func() derived {
		if d == nil {
			d = c.deriveFrom(sig, body, seedMessages)
		}
		return d
	}
	walkWithStack(body, func(n ast.Node, stack []ast.Node) {
		switch n := n.(type) {
		case *ast.BranchStmt:
			if n.Tok == token.CONTINUE {
				c.checkContinue(n, stack, derive())
			}
		case *ast.ReturnStmt:
			// The message's derivation is computed only for a return out of such a loop.
			if loop := c.leavesMessageLoop(n, stack); loop != nil {
				c.checkLoopReturn(n, stack, loop, derive())
			}
		case *ast.IfStmt:
			if c.inRecordLoopBody(stack) {
				c.checkImplicitElse(n, sig, stack, derive())
			}
			if c.swallowsError(n) {
				if loop, _ := c.inMessageLoop(stack, n.Pos()); loop != nil && derive().mentions(c.pass.TypesInfo, n.Cond) {
					c.reportEmpty(n.Pos(), n.Body.Rbrace, "if "+c.text(n.Cond), "a loop over messages")
				}
			}
		case *ast.SwitchStmt, *ast.TypeSwitchStmt:
			if c.inRecordLoopBody(stack) {
				c.checkImplicitDefault(n.(ast.Stmt), sig, stack, derive())
			}
		case *ast.ExprStmt, *ast.GoStmt, *ast.AssignStmt:
			// The loop is looked up only for a statement that drops an error: most do not.
			if call, last := c.discardedError(n.(ast.Stmt)); call != nil {
				if loop, _ := c.inMessageLoop(stack, n.Pos()); loop != nil {
					c.judgeDiscard(n.(ast.Stmt), call, last, derive())
				}
			}
		}
	})
}

// inMessageLoop returns the innermost loop holding the top of stack (in the function
// walked, not in a nested literal) when it is a loop over messages: over Kafka records
// (records is then true), or one that takes a message of its own before pos (see
// takesMessageBefore). It returns nil otherwise.
func (c *checker) inMessageLoop(stack []ast.Node, pos token.Pos) (loop ast.Node, records bool) {
	for i := len(stack) - 2; i >= 0; i-- {
		switch loop := stack[i].(type) {
		case *ast.ForStmt, *ast.RangeStmt:
			if c.loopsOverRecords(loop) {
				return loop, true
			}
			if c.takesMessageBefore(loop, pos) {
				return loop, false
			}
			return nil, false
		}
	}
	return nil, false
}

// checkLoopReturn reports ret, a return leaving loop (see leavesMessageLoop), in code
// that is not a message handler or in a callback without a message of its own (a
// goroutine ranging over deliveries it settles itself), from a branch that decides about
// the message and leaves no trace: the message is left unhandled, and so is every one
// after it, since the loop that consumed them is gone (a goroutine ranging over
// deliveries that returns on a body that does not decode). A return that hands something
// back (an error, a value) is the caller's to judge; one taken when the message itself is
// absent (a closed channel) or the context ends is the loop's end, not a decision about a
// message.
func (c *checker) checkLoopReturn(ret *ast.ReturnStmt, stack []ast.Node, loop ast.Node, d derived) {
	b := c.innermostBranch(stack)
	if b == nil || b.okBranch || b.absent || b.shutdown || c.explained(b, stack[0]) || !c.decides(b, d) {
		return
	}
	// Inside the fetch's own error check (if err != nil { if errors.Is(err, io.EOF) {
	// return } }), or inside a branch taken when the context ends: no message was taken.
	for i := len(stack) - 3; i >= 0 && stack[i] != loop; i-- {
		if ifs, ok := stack[i].(*ast.IfStmt); ok && stack[i+1] == ifs.Body {
			if outer := c.innermostBranch(stack[:i+3]); outer != nil && (outer.absent || outer.shutdown) {
				return
			}
		}
	}
	if c.callbackStops(b) || c.workedBefore(stack, loop, d) {
		return
	}
	if c.settlesBefore(b.stmts, ret.Pos()) || c.stmtsRecord(b.stmts, ret.Pos(), nil) {
		return
	}
	c.report(ret.Pos(), token.NoPos, "silent path: branch %q returns out of a loop over messages without a trace; "+
		"the message is left unhandled, and so is every one after it (the loop stops); log or record why", b.desc)
}

// leavesMessageLoop returns the loop over messages that ret, at the top of stack, leaves
// while handing nothing back (a bare return, or nil for every result), or nil: the
// returns checkLoopReturn judges.
func (c *checker) leavesMessageLoop(ret *ast.ReturnStmt, stack []ast.Node) ast.Node {
	for _, r := range ret.Results {
		if !c.isNil(r) {
			return nil
		}
	}
	loop, _ := c.inMessageLoop(stack, ret.Pos())
	return loop
}

// workedBefore reports whether the message was put to use (see worksOn) by a statement
// before the top of stack, in the blocks and cases holding it inside loop's body: a
// return after that (the record sent on, then if msg.Offset == end { return }) ends the
// loop past a message already handled.
func (c *checker) workedBefore(stack []ast.Node, loop ast.Node, d derived) bool {
	for i := len(stack) - 2; i >= 0 && stack[i] != loop; i-- {
		for _, s := range stmtList(stack[i]) {
			if s == stack[i+1] {
				break
			}
			if c.worksOn(s, d) {
				return true
			}
		}
	}
	return false
}

// callbackStops reports whether b is taken when a function value the loop hands its
// messages to asks it to stop: if !yield(m) { return }, an iterator's consumer that has
// had enough. The message went to the callback; the loop's end is the callback's choice.
func (c *checker) callbackStops(b *branch) bool {
	if !b.inThen() {
		return false
	}
	u, ok := ast.Unparen(b.ifs.Cond).(*ast.UnaryExpr)
	if !ok || u.Op != token.NOT {
		return false
	}
	call, ok := ast.Unparen(u.X).(*ast.CallExpr)
	if !ok {
		return false
	}
	_, isVar := typeutil.Callee(c.pass.TypesInfo, call).(*types.Var)
	return isVar
}

// swallowsError reports whether ifs tests an error and its body does nothing with it:
// it is empty, or it only builds an error and throws it away (_ = fmt.Errorf("decode:
// %w", err)), which leaves no more trace than an empty block.
func (c *checker) swallowsError(ifs *ast.IfStmt) bool {
	if ok, _ := c.errCheck(ifs.Cond, true); !ok {
		return false
	}
	for _, s := range ifs.Body.List {
		as, ok := s.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
			return false
		}
		if id, ok := as.Lhs[0].(*ast.Ident); !ok || id.Name != "_" {
			return false
		}
		call, ok := ast.Unparen(as.Rhs[0]).(*ast.CallExpr)
		if !ok {
			return false
		}
		fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
		if !ok || fn.Pkg() == nil || fn.Type().(*types.Signature).Results().Len() != 1 ||
			!isErrorType(fn.Type().(*types.Signature).Results().At(0).Type()) {
			return false
		}
		if p := fn.Pkg().Path(); !(p == "fmt" && fn.Name() == "Errorf") && !(p == "errors" && fn.Name() == "New") {
			return false
		}
	}
	return true
}

// inRecordLoopBody reports whether the statement at the top of stack stands directly in
// the body of a loop over Kafka records.
func (c *checker) inRecordLoopBody(stack []ast.Node) bool {
	if len(stack) < 3 {
		return false
	}
	switch loop := stack[len(stack)-3].(type) {
	case *ast.ForStmt:
		return stack[len(stack)-2] == loop.Body && c.loopsOverRecords(loop)
	case *ast.RangeStmt:
		return stack[len(stack)-2] == loop.Body && c.loopsOverRecords(loop)
	}
	return false
}

// requests reports whether e is a call that sends something to get a message back: it is
// given a payload or a message (nc.Request(subj, data, timeout), RequestMsg(m, timeout)).
// A loop that skips such a reply retries its own request; it drops nobody's message.
func (c *checker) requests(e ast.Expr) bool {
	call, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok {
		return false
	}
	for _, a := range call.Args {
		if t := c.pass.TypesInfo.TypeOf(a); t != nil && (isBytes(t) || isMessageType(t)) {
			return true
		}
	}
	return false
}

// fromRequest reports whether the variable id is assigned the result of a request (see
// requests) in the file that declares it.
func (c *checker) fromRequest(id *ast.Ident) bool {
	obj := c.pass.TypesInfo.ObjectOf(id)
	if obj == nil {
		return false
	}
	found := false
	for _, f := range c.pass.Files {
		if obj.Pos() < f.Pos() || obj.Pos() >= f.End() {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || found {
				return !found
			}
			if len(as.Rhs) != 1 || !c.requests(as.Rhs[0]) {
				return true
			}
			for _, l := range as.Lhs {
				if lid, ok := ast.Unparen(l).(*ast.Ident); ok && c.pass.TypesInfo.ObjectOf(lid) == obj {
					found = true
				}
			}
			return !found
		})
	}
	return found
}

// takesMessageBefore reports whether loop takes a message of its own before pos: it ranges
// over messages (or a channel of them), or its body defines a message variable before pos
// outside any loop nested in it (m, err := sub.NextMsg(), case d := <-deliveries), other
// than the reply to a request it sent (see requests). A reconnect loop around an inner
// loop over deliveries does not handle one itself.
func (c *checker) takesMessageBefore(loop ast.Node, pos token.Pos) bool {
	info := c.pass.TypesInfo
	var body *ast.BlockStmt
	switch l := loop.(type) {
	case *ast.RangeStmt:
		if id, ok := ast.Unparen(l.X).(*ast.Ident); ok && c.fromRequest(id) {
			return false // the replies to a request the function sent (msgs, err := requestMany(subj, req))
		}
		if c.rangesOver(l, isMessageType) {
			return true
		}
		body = l.Body
	case *ast.ForStmt:
		body = l.Body
	default:
		return false
	}
	found := false
	c.inspectBody(body, func(n ast.Node, _ bool) bool {
		switch n := n.(type) {
		case *ast.ForStmt, *ast.RangeStmt:
			return false
		case *ast.AssignStmt:
			if n.Pos() >= pos || len(n.Rhs) != 1 || !c.takes(n.Rhs[0]) || c.builds(n.Rhs[0], loop) {
				return true
			}
			for _, l := range n.Lhs {
				if t := info.TypeOf(l); t != nil && isMessageType(t) {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

// takes reports whether e takes a message from a source: a receive from a channel
// (<-deliveries), or a method of a subscription, consumer or reader given no payload or
// message (sub.NextMsg(timeout), r.ReadMessage(ctx)). A constructor (nats.NewMsg(subj),
// a composite literal) makes one to send, and a request (see requests) gets the answer
// to one the code sent.
func (c *checker) takes(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.UnaryExpr:
		return e.Op == token.ARROW
	case *ast.CallExpr:
		sel, ok := ast.Unparen(e.Fun).(*ast.SelectorExpr)
		if !ok || c.pass.TypesInfo.Selections[sel] == nil || c.requests(e) {
			return false // a package's function, or a request
		}
		return true
	}
	return false
}

// builds reports whether e makes a message to send rather than taking one the loop
// received: a composite literal (&nats.Msg{...}), or a method of a value the loop itself
// declares, one of the items it ranges over or something computed from one in its body
// (for _, rec := range stored { msg, err := rec.ToMsg(subject) }), unless that value is
// a subscription (for _, sub := range subs { m, err := sub.NextMsg(t) } takes one). A
// source of messages (a subscription, a reader, a consumer) lives outside the loop that
// takes from it.
func (c *checker) builds(e ast.Expr, loop ast.Node) bool {
	e = ast.Unparen(e)
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = ast.Unparen(u.X)
	}
	switch e := e.(type) {
	case *ast.CompositeLit:
		return true
	case *ast.CallExpr:
		sel, ok := ast.Unparen(e.Fun).(*ast.SelectorExpr)
		if !ok || c.pass.TypesInfo.Selections[sel] == nil {
			return false
		}
		root := ast.Unparen(sel.X)
		for {
			switch r := root.(type) {
			case *ast.SelectorExpr:
				root = ast.Unparen(r.X)
				continue
			case *ast.IndexExpr:
				root = ast.Unparen(r.X)
				continue
			case *ast.StarExpr:
				root = ast.Unparen(r.X)
				continue
			}
			break
		}
		id, ok := root.(*ast.Ident)
		if !ok {
			return false
		}
		obj := c.pass.TypesInfo.ObjectOf(id)
		if obj == nil || obj.Pos() < loop.Pos() || obj.Pos() >= loop.End() {
			return false
		}
		if t := c.pass.TypesInfo.TypeOf(sel.X); t == nil || isSubscription(t) || isMessageSource(t) {
			return false
		}
		return true
	}
	return false
}
