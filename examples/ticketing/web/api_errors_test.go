package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryModuleSentinelHasAStatus reads the modules' sources for their
// package-level sentinel errors (var ErrX = errors.New("...")) and checks
// that errorStatuses maps each to a 4xx or 503: a new business rule
// without a status would otherwise surface as a 500 "internal error".
func TestEveryModuleSentinelHasAStatus(t *testing.T) {
	mapped := map[string]int{}
	for _, e := range errorStatuses() {
		mapped[e.err.Error()] = e.status
	}
	fset := token.NewFileSet()
	found := 0
	for _, module := range []string{"carts", "concerts", "finance", "money", "orders", "reservations", "tickets", "users"} {
		files, err := filepath.Glob(filepath.Join("..", module, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, v := range vs.Values {
						msg, ok := errorsNew(v)
						if !ok || !vs.Names[i].IsExported() {
							continue
						}
						found++
						st, ok := mapped[msg]
						if !ok {
							t.Errorf("%s.%s (%q) has no status in errorStatuses", module, vs.Names[i].Name, msg)
						} else if st < 400 || st >= 500 && st != http.StatusServiceUnavailable {
							t.Errorf("%s.%s maps to %d", module, vs.Names[i].Name, st)
						}
					}
				}
			}
		}
	}
	if found < 50 {
		t.Fatalf("found only %d sentinels: is the walk reading the modules?", found)
	}
}

// errorsNew returns the message of an errors.New("...") call.
func errorsNew(e ast.Expr) (string, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "New" {
		return "", false
	}
	if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "errors" {
		return "", false
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
