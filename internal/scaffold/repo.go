package scaffold

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"loudly/pkg/deadletter"
	"loudly/services"
)

// ModuleRoot is the directory of the go.mod enclosing the current directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above it: run this in the repository, or give -root", dir)
		}
	}
}

func (sc *Scaffold) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(sc.root, filepath.FromSlash(rel)))
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// ModulePath is the module path of root's go.mod: the scaffold's imports start with it,
// so it keeps working after the module is renamed (docs/template.md).
func ModulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strconv.Unquote(`"` + strings.Trim(f[1], `"`) + `"`)
		}
	}
	return "", errors.New("go.mod has no module line")
}

// sliceEnd returns the offset of the closing brace of the slice literal assigned to the
// package-level variable name in src: where an element is appended.
func sliceEnd(src []byte, name string) (int, error) {
	lit, fset, err := sliceLiteral(src, name)
	if err != nil {
		return 0, err
	}
	return fset.Position(lit.Rbrace).Offset, nil
}

func sliceLiteral(src []byte, name string) (*ast.CompositeLit, *token.FileSet, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.CompositeLit); ok {
					return lit, fset, nil
				}
			}
		}
	}
	return nil, nil, fmt.Errorf("no slice literal assigned to var %s", name)
}

// fields reads the keyed fields of a composite literal whose values are literals or
// constants (consts resolves constant names).
func literalFields(lit *ast.CompositeLit, consts map[string]string) map[string]string {
	out := map[string]string{}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		switch v := kv.Value.(type) {
		case *ast.BasicLit:
			out[key.Name] = v.Value
			if s, err := strconv.Unquote(v.Value); err == nil {
				out[key.Name] = s
			}
		case *ast.Ident:
			out[key.Name] = v.Name
			if s, ok := consts[v.Name]; ok {
				out[key.Name] = s
			}
		case *ast.CompositeLit: // []string{...}: joined with spaces
			var parts []string
			for _, el := range v.Elts {
				switch x := el.(type) {
				case *ast.BasicLit:
					s, _ := strconv.Unquote(x.Value)
					parts = append(parts, s)
				case *ast.Ident:
					parts = append(parts, consts[x.Name])
				}
			}
			out[key.Name] = strings.Join(parts, " ")
		}
	}
	return out
}

// parseServiceList reads services.All from services/services.go.
func parseServiceList(src []byte) ([]services.Service, int, error) {
	lit, fset, err := sliceLiteral(src, "All")
	if err != nil {
		return nil, 0, err
	}
	var out []services.Service
	for _, e := range lit.Elts {
		el, ok := e.(*ast.CompositeLit)
		if !ok {
			return nil, 0, errors.New("All has an element that is not a Service literal")
		}
		f := literalFields(el, nil)
		port, _ := strconv.Atoi(f["Port"])
		out = append(out, services.Service{Name: f["Name"], Port: port, Schema: f["Schema"], Outbox: f["Outbox"] == "true"})
	}
	return out, fset.Position(lit.Rbrace).Offset, nil
}

// parsedPackage is a package of the repository as the scaffold reads it: its files, and the
// values of its string constants (and string variables).
type parsedPackage struct {
	dir    string // relative to the root
	files  []*ast.File
	consts map[string]string
}

// parsePackage parses the non-test Go files of dir (relative to root).
func parsePackage(root, dir string) (*parsedPackage, error) {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		return nil, err
	}
	p := &parsedPackage{dir: dir, consts: map[string]string{}}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(dir), e.Name()), nil, 0)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							p.consts[name.Name], _ = strconv.Unquote(bl.Value)
						}
					}
				}
			}
			return true
		})
	}
	return p, nil
}

// streams reads the streams of the package's Streams variable (none when it has none),
// each tagged with the list it belongs to.
func (p *parsedPackage) streams(list, importPath string) []streamDecl {
	var out []streamDecl
	for _, f := range p.files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					lit, ok := valueAt(vs, i).(*ast.CompositeLit)
					if n.Name != "Streams" || !ok {
						continue
					}
					for _, e := range lit.Elts {
						if el, ok := e.(*ast.CompositeLit); ok {
							fields := literalFields(el, p.consts)
							out = append(out, streamDecl{Name: fields["Name"], Subjects: strings.Fields(fields["Subjects"]), List: list, Import: importPath})
						}
					}
				}
			}
		}
	}
	return out
}

func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}

// parseStreams reads every stream a service can ensure: those of services/events
// (events.Streams), those the services' own packages declare (NAME.Streams) and the
// dead-letter stream, which every service ensures.
func parseStreams(root, module string, pkgs []*parsedPackage) ([]streamDecl, error) {
	shared, err := parsePackage(root, "services/events")
	if err != nil {
		return nil, err
	}
	out := shared.streams("events.Streams", module+"/services/events")
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no Streams", StreamsFile)
	}
	for _, p := range pkgs {
		name := path.Base(p.dir)
		out = append(out, p.streams(name+".Streams", module+"/"+p.dir)...)
	}
	return append(out, streamDecl{Name: deadletter.Stream, Subjects: deadletter.StreamConfig.Subjects}), nil
}

// servicePackages parses the package of every service under services/ (services/NAME/NAME).
func servicePackages(root string) ([]*parsedPackage, error) {
	entries, err := os.ReadDir(filepath.Join(root, "services"))
	if err != nil {
		return nil, err
	}
	var out []*parsedPackage
	for _, e := range entries {
		dir := "services/" + e.Name() + "/" + e.Name()
		if !e.IsDir() || !pathExists(filepath.Join(root, filepath.FromSlash(dir))) {
			continue
		}
		p, err := parsePackage(root, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// yamlKeys lists the keys of the mapping at key of a YAML document's top level.
func yamlKeys(src []byte, key string) ([]string, error) {
	m, err := yamlChild(src, key)
	if err != nil {
		return nil, err
	}
	var keys []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys, nil
}

// yamlChild returns the node at key of a YAML document's top-level mapping.
func yamlChild(src []byte, key string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping")
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == key {
			return top.Content[i+1], nil
		}
	}
	return nil, fmt.Errorf("no %s", key)
}
