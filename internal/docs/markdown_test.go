package docs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
)

func moduleRoot(t testing.TB) string {
	t.Helper()
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

// page is a Markdown file of the documentation.
type page struct {
	path  string // relative to the module root, slash-separated
	lines []string
}

// pages returns README.md and docs/*.md.
func pages(t testing.TB) []page {
	t.Helper()
	root := moduleRoot(t)
	paths, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append([]string{filepath.Join(root, "README.md")}, paths...)
	var out []page
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, page{path: filepath.ToSlash(rel), lines: strings.Split(string(b), "\n")})
	}
	return out
}

// block is a fenced code block.
type block struct {
	page   string
	line   int    // 1-based line of the opening fence
	info   string // the info string: "go", "go fragment", "mermaid", ...
	before string // the last non-blank line before the fence
	text   string
}

// lang is the first word of the info string.
func (b block) lang() string {
	f := strings.Fields(b.info)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.page, b.line) }

// blocks returns the fenced code blocks of a page, and its prose: the page
// with the blocks' lines blanked (so line numbers still match).
func (p page) blocks() (blocks []block, prose []string) {
	var cur *block
	var fence, indent string
	var body []string
	before := ""
	for i, l := range p.lines {
		trimmed := strings.TrimLeft(l, " ")
		if cur == nil {
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				indent = l[:len(l)-len(trimmed)]
				cur = &block{page: p.path, line: i + 1, info: strings.TrimSpace(trimmed[3:]), before: before}
				body = nil
				prose = append(prose, "")
				continue
			}
			prose = append(prose, l)
			if strings.TrimSpace(l) != "" {
				before = strings.TrimSpace(l)
			}
			continue
		}
		prose = append(prose, "")
		if strings.TrimSpace(l) == fence {
			cur.text = strings.Join(body, "\n")
			if len(body) > 0 {
				cur.text += "\n"
			}
			blocks = append(blocks, *cur)
			cur, before = nil, ""
			continue
		}
		body = append(body, strings.TrimPrefix(l, indent))
	}
	return blocks, prose
}

// slug turns a heading into its anchor as GitHub does: lower case, spaces
// to hyphens, every other character that is not a letter, digit, hyphen or
// underscore dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

var headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)

// anchors returns the anchors of a page's headings; a repeated heading
// gets -1, -2, … as on GitHub.
func (p page) anchors() map[string]bool {
	_, prose := p.blocks()
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose {
		m := headingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		// Inline markup is not part of the anchor: `code`, *emphasis*,
		// [links](target).
		text := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(m[1], "$1")
		s := slug(text)
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// The module's Go code, parsed once.
type goCode struct {
	// decls maps a package name to the names it declares at top level,
	// and to Type.Method for its methods.
	decls map[string]map[string]bool
	// dirs maps a package's directory (slash-separated, relative to the
	// root) to its package name and the test functions of its files.
	dirs map[string]*goDir
	// tests holds every Test, Benchmark, Fuzz and Example function.
	tests map[string]bool
}

type goDir struct {
	name  string
	tests map[string]bool
}

var (
	parsed     *goCode
	parsedErr  error
	parsedOnce sync.Once
)

func code(t testing.TB) *goCode {
	t.Helper()
	root := moduleRoot(t)
	parsedOnce.Do(func() { parsed, parsedErr = parseModule(root) })
	if parsedErr != nil {
		t.Fatal(parsedErr)
	}
	return parsed
}

func parseModule(root string) (*goCode, error) {
	c := &goCode{decls: map[string]map[string]bool{}, dirs: map[string]*goDir{}, tests: map[string]bool{}}
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
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		dir := c.dirs[rel]
		if dir == nil {
			dir = &goDir{tests: map[string]bool{}}
			c.dirs[rel] = dir
		}
		name := strings.TrimSuffix(f.Name.Name, "_test")
		test := strings.HasSuffix(path, "_test.go")
		if !test {
			dir.name = name
		}
		decls := c.decls[name]
		if decls == nil {
			decls = map[string]bool{}
			c.decls[name] = decls
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					if test && isTestFunc(d.Name.Name) {
						dir.tests[d.Name.Name] = true
						c.tests[d.Name.Name] = true
					}
					if !test {
						decls[d.Name.Name] = true
					}
					continue
				}
				if !test {
					decls[receiver(d.Recv.List[0].Type)+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				if test {
					continue
				}
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						decls[s.Name.Name] = true
						if it, ok := s.Type.(*ast.InterfaceType); ok {
							for _, m := range it.Methods.List {
								for _, n := range m.Names {
									decls[s.Name.Name+"."+n.Name] = true
								}
							}
						}
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								for _, n := range fl.Names {
									decls[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							decls[n.Name] = true
						}
					}
				}
			}
		}
		return nil
	})
	return c, err
}

func isTestFunc(name string) bool {
	for _, p := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func receiver(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiver(e.X)
	case *ast.IndexExpr:
		return receiver(e.X)
	case *ast.IndexListExpr:
		return receiver(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}
