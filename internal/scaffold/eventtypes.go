package scaffold

import (
	"go/ast"
	"path"
	"strconv"
	"strings"
)

// eventType is an event type a scaffolded service can consume or publish: one of
// services/events (Samples), or one a scaffolded service declared in its own package.
type eventType struct {
	Type       string // the envelope's "type"
	Subject    string // the subject it travels on
	Event      string // its *envelope.Type, a Go expression: events.OrderPlacedEvent
	Payload    string // its payload type, a Go expression: events.OrderPlaced
	SampleData string // a valid payload, Go source
	KeyExpr    string // a new entity key, a Go expression
	Import     string // the package that declares it; "" for the service's own
}

// sampleTypes are the event types of services/events, from Samples.
func sampleTypes(module string) []eventType {
	var out []eventType
	for _, s := range Samples {
		out = append(out, eventType{Type: s.Subject, Subject: s.Subject, Event: "events." + s.Event, Payload: "events." + s.Payload,
			SampleData: s.Data, KeyExpr: "uuid.NewString()", Import: module + "/services/events"})
	}
	return out
}

// declaredTypes are the event types the services' own packages declare as the scaffold
// writes them (events.go): a variable NAMEEvent = envelope.NewType(TypeNAME, validate…),
// its subject the constant SubjectNAME (else its type), its payload type the validator's
// second parameter. A later scaffold consumes them from there instead of declaring them
// again.
func declaredTypes(pkgs []*parsedPackage, module string) []eventType {
	var out []eventType
	for _, p := range pkgs {
		name := path.Base(p.dir)
		validators := map[string]string{} // function → its second parameter's type
		for _, f := range p.files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && len(fn.Type.Params.List) == 2 {
					if id, ok := fn.Type.Params.List[1].Type.(*ast.Ident); ok {
						validators[fn.Name.Name] = id.Name
					}
				}
			}
		}
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
					return true
				}
				call, ok := vs.Values[0].(*ast.CallExpr)
				if !ok || len(call.Args) != 2 || !isSelector(call.Fun, "envelope", "NewType") {
					return true
				}
				typeConst, _ := call.Args[0].(*ast.Ident)
				validator, _ := call.Args[1].(*ast.Ident)
				if typeConst == nil || validator == nil || p.consts[typeConst.Name] == "" {
					return true
				}
				goName := strings.TrimSuffix(vs.Names[0].Name, "Event")
				typ := p.consts[typeConst.Name]
				subject, ok := p.consts["Subject"+goName]
				if !ok {
					subject = typ
				}
				payload := validators[validator.Name]
				if payload == "" {
					payload = goName
				}
				prefix := name[:min(3, len(name))]
				out = append(out, eventType{Type: typ, Subject: subject, Event: name + "." + vs.Names[0].Name,
					Payload: name + "." + payload, SampleData: name + "." + payload + "{}",
					KeyExpr: strconv.Quote(prefix+"-") + " + uuid.NewString()[:8]", Import: module + "/" + p.dir})
				return true
			})
		}
	}
	return out
}

func isSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && sel.Sel.Name == name
}
