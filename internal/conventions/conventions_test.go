// Package conventions checks, as a test, the rules the whole module keeps:
// every exported name has a doc comment, and every library package has a
// runnable Example.
package conventions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

type pkg struct {
	dir      string
	name     string
	files    map[string]*ast.File // non-test files
	examples int
}

func packages(t *testing.T) []*pkg {
	root := moduleRoot(t)
	byDir := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		p := byDir[dir]
		if p == nil {
			rel, _ := filepath.Rel(root, dir)
			p = &pkg{dir: rel, files: map[string]*ast.File{}}
			byDir[dir] = p
		}
		if strings.HasSuffix(path, "_test.go") {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Example") {
					p.examples++
				}
			}
			return nil
		}
		p.name = f.Name.Name
		p.files[path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*pkg
	for _, p := range byDir {
		if len(p.files) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// library reports whether a package is imported by users: not a command and
// not internal.
func (p *pkg) library() bool {
	return p.name != "main" && !strings.Contains(p.dir, "internal")
}

func TestExportedNamesAreDocumented(t *testing.T) {
	for _, p := range packages(t) {
		if !p.library() {
			continue
		}
		hasPkgDoc := false
		for path, f := range p.files {
			if f.Doc != nil {
				hasPkgDoc = true
			}
			for _, name := range undocumented(f) {
				t.Errorf("%s: exported %s has no doc comment", filepath.Base(path), name)
			}
		}
		if !hasPkgDoc {
			t.Errorf("package %s (%s) has no package doc comment", p.name, p.dir)
		}
	}
}

func undocumented(f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv != nil {
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if idx, ok := recv.(*ast.IndexExpr); ok {
					recv = idx.X
				}
				if idx, ok := recv.(*ast.IndexListExpr); ok {
					recv = idx.X
				}
				if id, ok := recv.(*ast.Ident); ok && !id.IsExported() {
					continue
				}
				// Methods that implement a well-known interface say so in
				// their type's doc; require docs on the others.
				switch d.Name.Name {
				case "Error", "Is", "Unwrap", "String":
					continue
				}
			}
			out = append(out, d.Name.Name)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
						out = append(out, s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
							out = append(out, n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

func TestEveryLibraryPackageHasAnExample(t *testing.T) {
	for _, p := range packages(t) {
		if p.library() && p.examples == 0 {
			t.Errorf("package %s (%s) has no Example function", p.name, p.dir)
		}
	}
}

// TestCoreDependsOnTheStandardLibraryOnly keeps package es free of
// third-party imports (Prometheus lives in es/esprom), so that importing
// the core costs nothing beyond Go itself.
func TestCoreDependsOnTheStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "esgo.dev/es").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "esgo.dev/es" {
			t.Errorf("esgo.dev/es depends on %s", p)
		}
	}
}
