package silentcheck

import (
	"go/ast"
	"go/types"
	"strings"
)

// Message types are recognised by what can be done with them, not by their names, so
// that one model covers the libraries teams actually use:
//
//   - NATS core (*nats.Msg: Ack, Nak, Term, InProgress, Respond) and JetStream
//     (jetstream.Msg: the same settlements, DoubleAck, TermWithReason);
//   - Watermill (*message.Message: Ack() bool, Nack() bool);
//   - by the same rule, AMQP deliveries (Ack, Nack, Reject) and Google Pub/Sub messages
//     (Ack, Nack), the other brokers Go services commonly consume from, whose
//     settlement vocabulary is the same;
//   - anything with Ack() error and Data() []byte, a team's own wrapper;
//   - Loudly's consumer.Message (a type named Message in a package whose path ends in
//     /consumer), which has no settlement methods because the runner settles.

// settleMethods settle a message with the broker; calling one on a message makes a
// function message-handling code.
var settleMethods = map[string]bool{
	"Ack": true, "AckSync": true, "DoubleAck": true, "Term": true, "TermWithReason": true,
	"Nak": true, "NakWithDelay": true, "InProgress": true, "Nack": true, "Reject": true,
}

// dropMethods remove the message from the broker for good: rule 2 is about them.
var dropMethods = map[string]bool{
	"Commit": true, "Ack": true, "AckSync": true, "DoubleAck": true, "Term": true, "TermWithReason": true,
	"Reject": true,
}

// positiveAcks tell the broker the work succeeded.
var positiveAcks = map[string]bool{"Commit": true, "Ack": true, "AckSync": true, "DoubleAck": true}

// negativeSettlements are the methods that, next to Ack, make a type a message.
var negativeSettlements = []string{"Nak", "Nack", "Term", "Reject"}

// isMessageType reports whether t (or *t) is a message a handler receives: a type that
// settles itself (see above) or a Kafka record (see isRecordType).
func isMessageType(t types.Type) bool {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	if n, ok := t.(*types.Named); ok && n.Obj().Pkg() != nil {
		path := trimVendor(n.Obj().Pkg().Path())
		if n.Obj().Name() == "Message" && (path == "consumer" || strings.HasSuffix(path, "/consumer")) {
			return true
		}
	}
	if _, ok := t.Underlying().(*types.Signature); ok {
		return false
	}
	if isRecordType(t) {
		return true
	}
	if !ackSettlesItself(t) {
		return false
	}
	for _, m := range negativeSettlements {
		if hasMethod(t, m) {
			return true
		}
	}
	return hasDuckMethods(t)
}

// ackSettlesItself reports whether t has an Ack method that acknowledges t itself: no
// argument but options, or one flag (AMQP's Ack(multiple bool)). An Ack that takes what
// to acknowledge (an AMQP channel's Ack(tag, multiple)) belongs to a connection, not to a
// message.
func ackSettlesItself(t types.Type) bool {
	obj, _, _ := types.LookupFieldOrMethod(t, true, nil, "Ack")
	fn, ok := obj.(*types.Func)
	if !ok {
		return false
	}
	params := fn.Type().(*types.Signature).Params()
	n := params.Len()
	if fn.Type().(*types.Signature).Variadic() {
		n--
	}
	return n <= 1
}

// isRecordType reports whether t (or *t) is a Kafka record as every Go client shapes one
// (sarama's ConsumerMessage, franz-go's Record, segmentio's Message): a struct with a
// Topic, a Partition, an Offset and a Value []byte. A record settles nothing itself: the
// consumer marks or commits its offset, and since offsets are positional, committing a
// later record settles every earlier one.
func isRecordType(t types.Type) bool {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		return false
	}
	found := 0
	for f := range st.Fields() {
		switch f.Name() {
		case "Topic":
			if isString(f.Type()) {
				found++
			}
		case "Partition", "Offset":
			if b, ok := f.Type().Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
				found++
			}
		case "Value":
			if isBytes(f.Type()) {
				found++
			}
		}
	}
	return found == 4
}

func isString(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsString != 0
}

func isBytes(t types.Type) bool {
	return types.Identical(t.Underlying(), types.NewSlice(types.Typ[types.Byte]))
}

// isBatchType reports whether t is a slice of messages (a batch handler's argument).
func isBatchType(t types.Type) bool {
	s, ok := types.Unalias(t).Underlying().(*types.Slice)
	return ok && isMessageType(s.Elem())
}

// isMessageSource reports whether t holds messages to handle: a message, a batch, or a
// channel of either (a claim's Messages(), a subscription's channel).
func isMessageSource(t types.Type) bool {
	if isMessageType(t) || isBatchType(t) {
		return true
	}
	if c, ok := types.Unalias(t).Underlying().(*types.Chan); ok {
		return isMessageType(c.Elem()) || isBatchType(c.Elem())
	}
	return false
}

func hasMethod(t types.Type, name string) bool {
	obj, _, _ := types.LookupFieldOrMethod(t, true, nil, name)
	_, ok := obj.(*types.Func)
	return ok
}

// hasDuckMethods reports whether t has Ack() error (variadic options allowed) and its
// payload as Data() []byte or as a Data []byte field (NATS Streaming's Msg).
func hasDuckMethods(t types.Type) bool {
	ack, _, _ := types.LookupFieldOrMethod(t, true, nil, "Ack")
	data, _, _ := types.LookupFieldOrMethod(t, true, nil, "Data")
	ackFn, ok := ack.(*types.Func)
	if !ok || data == nil {
		return false
	}
	as := ackFn.Type().(*types.Signature)
	ackOK := (as.Params().Len() == 0 || (as.Params().Len() == 1 && as.Variadic())) && answersOnlyError(as)
	switch data := data.(type) {
	case *types.Func:
		ds := data.Type().(*types.Signature)
		return ackOK && ds.Params().Len() == 0 && ds.Results().Len() == 1 && isBytes(ds.Results().At(0).Type())
	case *types.Var:
		return ackOK && data.IsField() && isBytes(data.Type())
	}
	return false
}

func isErrorType(t types.Type) bool {
	return types.Identical(t, types.Universe.Lookup("error").Type())
}

// answersOnlyError reports whether a function's only result is an error.
func answersOnlyError(sig *types.Signature) bool {
	return sig.Results().Len() == 1 && isErrorType(sig.Results().At(0).Type())
}

// decodesBytes reports whether a function is shaped like a decoder that fills in its
// receiver: one []byte parameter and an error as its only result (Unmarshal, Decode).
func decodesBytes(sig *types.Signature) bool {
	return sig.Params().Len() == 1 && isBytes(sig.Params().At(0).Type()) && answersOnlyError(sig)
}

func trimVendor(path string) string {
	if i := strings.LastIndex(path, "/vendor/"); i >= 0 {
		return path[i+len("/vendor/"):]
	}
	return path
}

// isHandlerFuncType reports whether t is a function type that is handed messages: the
// parameter of a subscribe or consume call (nats.MsgHandler, jetstream.MessageHandler,
// Watermill's HandlerFunc and NoPublishHandlerFunc, a batch callback
// func(ctx, []*nats.Msg) bool).
//
// A callback that also receives an error (nats.MsgErrHandler, a publish-failure option)
// is told about a message it sent, not handed one to process: it is not a handler.
func isHandlerFuncType(t types.Type) bool {
	sig, ok := types.Unalias(t).Underlying().(*types.Signature)
	if !ok || !receivesMessage(sig) {
		return false
	}
	for v := range sig.Params().Variables() {
		if isErrorType(v.Type()) {
			return false
		}
	}
	return true
}

// asksAboutOne reports whether sig takes one message (not a batch) and answers only a
// bool: a question about it (see handlerResults).
func asksAboutOne(sig *types.Signature) bool {
	return sig.Results().Len() == 1 && isBool(sig.Results().At(0).Type()) && !receivesBatch(sig)
}

func receivesMessage(sig *types.Signature) bool {
	for v := range sig.Params().Variables() {
		if isMessageType(v.Type()) || isBatchType(v.Type()) {
			return true
		}
	}
	return false
}

// clientModules are the broker clients whose own code silentcheck knows from the inside.
// Their implementation handles messages all day (status and heartbeat plumbing, replies
// to publishes, key-value watchers, the body of Ack itself) without being a consumer of
// anything a team sent, so it is not judged. Their tests and examples are users of the
// client like any other and are.
var clientModules = []string{
	"github.com/nats-io/nats.go",
	"github.com/ThreeDotsLabs/watermill",
	"github.com/rabbitmq/amqp091-go",
	"github.com/streadway/amqp",
	"cloud.google.com/go/pubsub",
}

// clientCode reports whether file is part of a broker client's own implementation.
func (c *checker) clientCode(file *ast.File) bool {
	if strings.HasSuffix(c.pass.Fset.File(file.Pos()).Name(), "_test.go") {
		return false
	}
	path := c.pass.Pkg.Path()
	for _, elem := range strings.Split(path, "/") {
		if elem == "examples" || elem == "_examples" || elem == "example" {
			return false
		}
	}
	for _, mod := range clientModules {
		if path == mod || strings.HasPrefix(path, mod+"/") {
			return true
		}
	}
	return false
}

// findHandedHandlers marks the function literals and the functions of this package that
// are handed to a place typed as a message handler: an argument of a subscribe or
// consume call, a value returned as a handler, assigned to a handler variable or field.
// Those are consumers whatever their own body looks like.
func (c *checker) findHandedHandlers() {
	info := c.pass.TypesInfo
	// stored is whether the place is a variable or a field rather than a call's
	// argument or a result: a question about one message stored there (f.match =
	// func(r *kgo.Record) bool) is a predicate kept for later, not a handler.
	mark := func(e ast.Expr, want types.Type, stored bool) {
		if want == nil || !isHandlerFuncType(want) {
			return
		}
		if sig, ok := types.Unalias(want).Underlying().(*types.Signature); ok && stored && asksAboutOne(sig) {
			return
		}
		switch e := ast.Unparen(e).(type) {
		case *ast.FuncLit:
			c.handedLits[e] = true
		case *ast.Ident:
			if fn, ok := info.Uses[e].(*types.Func); ok {
				c.handedFuncs[fn] = true
			}
		case *ast.SelectorExpr:
			if sel := info.Selections[e]; sel != nil {
				if fn, ok := sel.Obj().(*types.Func); ok {
					c.handedFuncs[fn.Origin()] = true
				}
			} else if fn, ok := info.Uses[e.Sel].(*types.Func); ok {
				c.handedFuncs[fn] = true
			}
		}
	}
	for _, f := range c.pass.Files {
		var sigs []*types.Signature // enclosing functions, for return statements
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if obj, ok := info.Defs[n.Name].(*types.Func); ok && n.Body != nil {
					sigs = append(sigs, obj.Type().(*types.Signature))
					ast.Inspect(n.Body, visit)
					sigs = sigs[:len(sigs)-1]
				}
				return false
			case *ast.FuncLit:
				if sig, ok := info.TypeOf(n).(*types.Signature); ok {
					sigs = append(sigs, sig)
					ast.Inspect(n.Body, visit)
					sigs = sigs[:len(sigs)-1]
				}
				return false
			case *ast.CallExpr:
				sig, ok := types.Unalias(info.TypeOf(n.Fun)).(*types.Signature)
				if !ok {
					if tv, ok := info.Types[n.Fun]; ok && tv.IsType() && len(n.Args) == 1 {
						mark(n.Args[0], tv.Type, false) // a conversion: nats.MsgHandler(f)
					}
					return true
				}
				params := sig.Params()
				for i, a := range n.Args {
					var pt types.Type
					switch {
					case sig.Variadic() && i >= params.Len()-1:
						if s, ok := params.At(params.Len() - 1).Type().(*types.Slice); ok {
							pt = s.Elem()
						}
					case i < params.Len():
						pt = params.At(i).Type()
					}
					mark(a, pt, false)
				}
			case *ast.ReturnStmt:
				if len(sigs) > 0 {
					res := sigs[len(sigs)-1].Results()
					if res.Len() == len(n.Results) {
						for i, e := range n.Results {
							mark(e, res.At(i).Type(), false)
						}
					}
				}
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i, l := range n.Lhs {
						mark(n.Rhs[i], info.TypeOf(l), true)
					}
				}
			case *ast.ValueSpec:
				for i, v := range n.Values {
					if i < len(n.Names) {
						mark(v, info.TypeOf(n.Names[i]), true)
					}
				}
			case *ast.KeyValueExpr:
				mark(n.Value, info.TypeOf(n.Key), true)
			}
			return true
		}
		ast.Inspect(f, visit)
	}
}
