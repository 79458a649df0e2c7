package docs

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// qualifiedRE matches pkg.Name and pkg.Type.Method.
	qualifiedRE = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.([A-Z]\w*)(?:\.([A-Z]\w*))?`)
	subgraphRE  = regexp.MustCompile(`^\s*subgraph\s+([A-Za-z_]\w*)`)
	testNameRE  = regexp.MustCompile(`(^|[^.\w])((?:Test|Benchmark|Fuzz)[A-Z_]\w*)`)
	goTestRE    = regexp.MustCompile("go test[^`\n]*")
	// declaredTestRE matches a test function's declaration in a Go block.
	declaredTestRE = regexp.MustCompile(`(?m)^func (Test\w+)\(`)
)

func TestDiagramNamesExist(t *testing.T) {
	c := code(t)
	diagrams := 0
	for _, p := range pages(t) {
		blocks, _ := p.blocks()
		for _, b := range blocks {
			if b.lang() != "mermaid" {
				continue
			}
			diagrams++
			checked := 0
			for l := range strings.SplitSeq(b.text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "%%") {
					continue // a comment
				}
				if m := subgraphRE.FindStringSubmatch(l); m != nil {
					checked++
					if c.decls[m[1]] == nil {
						t.Errorf("%s: subgraph %s: the module has no package %s", b, m[1], m[1])
					}
				}
				for _, m := range qualifiedRE.FindAllStringSubmatch(l, -1) {
					checked++
					decls := c.decls[m[1]]
					if decls == nil {
						t.Errorf("%s: %s: the module has no package %s", b, m[0], m[1])
						continue
					}
					name := m[2]
					if m[3] != "" {
						name += "." + m[3]
					}
					if !decls[name] {
						t.Errorf("%s: %s: package %s declares no %s", b, m[0], m[1], name)
					}
				}
			}
			if checked == 0 {
				t.Errorf("%s: the diagram names nothing the test can check: write Go names as pkg.Name", b)
			}
		}
	}
	if diagrams == 0 {
		t.Log("no Mermaid diagram in the docs")
	}
}

// testLinkRE matches a link whose text is a test's name in backquotes and
// whose target is a test file: [`TestX`](path/x_test.go).
var testLinkRE = regexp.MustCompile("\\[`((?:Test|Benchmark|Fuzz)\\w+)`\\]\\(([^)#]+_test\\.go)\\)")

func TestNamedTestsExist(t *testing.T) {
	c := code(t)
	root := moduleRoot(t)
	for _, p := range pages(t) {
		for i, l := range p.lines {
			// A test linked to its file must be declared in that file.
			for _, m := range testLinkRE.FindAllStringSubmatch(l, -1) {
				file := path.Join(path.Dir(p.path), m[2])
				b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
				if err != nil {
					t.Errorf("%s:%d: %s: %v", p.path, i+1, m[1], err)
					continue
				}
				if !strings.Contains(string(b), "\nfunc "+m[1]+"(") {
					t.Errorf("%s:%d: %s is not declared in %s", p.path, i+1, m[1], file)
				}
			}
			for _, span := range codeSpanRE.FindAllString(l, -1) {
				for _, m := range testNameRE.FindAllStringSubmatch(span, -1) {
					if !c.tests[m[2]] && !c.decls["estest"][m[2]] {
						t.Errorf("%s:%d: %s: no test, benchmark or fuzz function of that name in the module", p.path, i+1, m[2])
					}
				}
			}
		}
	}
}

// TestCommandsNameRealTests checks each go test command of the docs that
// selects tests with -run: each alternative of the pattern's top level
// (before any /subtest; alternatives joined by |) must match a test in one
// of the packages the command lists, as go test matches it. "XXX" and "^$",
// which select no test (to run only benchmarks), are let through, and so
// is the name of a test that a Go block of the same page declares: a test
// the reader is told to write (docs/workshop.md).
func TestCommandsNameRealTests(t *testing.T) {
	c := code(t)
	for _, p := range pages(t) {
		written := map[string]bool{}
		blocks, _ := p.blocks()
		for _, b := range blocks {
			if b.lang() == "go" {
				for _, m := range declaredTestRE.FindAllStringSubmatch(b.text, -1) {
					written[m[1]] = true
				}
			}
		}
		for i, l := range p.lines {
			for _, cmd := range goTestRE.FindAllString(l, -1) {
				run, pkgs := parseGoTest(cmd)
				if run == "" {
					continue
				}
				if len(pkgs) == 0 {
					t.Errorf("%s:%d: %q: name the package (./path)", p.path, i+1, cmd)
					continue
				}
				top, _, _ := strings.Cut(run, "/")
				for alt := range strings.SplitSeq(top, "|") {
					if alt == "XXX" || alt == "^$" || written[strings.Trim(alt, "^$")] {
						continue
					}
					re, err := regexp.Compile(alt)
					if err != nil {
						t.Errorf("%s:%d: %q: %v", p.path, i+1, cmd, err)
						continue
					}
					if !hasTest(c, pkgs, re) {
						t.Errorf("%s:%d: %q: no test matching %s in %s", p.path, i+1, cmd, alt, strings.Join(pkgs, " "))
					}
				}
			}
		}
	}
}

// parseGoTest returns the -run pattern and the package paths of a go test
// command line.
func parseGoTest(cmd string) (run string, pkgs []string) {
	f := strings.Fields(cmd)
	for i := 2; i < len(f); i++ {
		a := strings.Trim(f[i], `'"`)
		switch {
		case a == "-run" && i+1 < len(f):
			run = strings.Trim(f[i+1], `'"`)
			i++
		case strings.HasPrefix(a, "-run="):
			run = strings.Trim(strings.TrimPrefix(a, "-run="), `'"`)
		case strings.HasPrefix(a, "./"):
			pkgs = append(pkgs, a)
		case a == "&&" || a == ";" || a == "|":
			return run, pkgs
		}
	}
	return run, pkgs
}

func hasTest(c *goCode, pkgs []string, re *regexp.Regexp) bool {
	for _, pkg := range pkgs {
		pkg = strings.TrimPrefix(pkg, "./")
		all := strings.HasSuffix(pkg, "/...") || pkg == "..."
		pkg = strings.TrimSuffix(strings.TrimSuffix(pkg, "..."), "/")
		for dir, d := range c.dirs {
			if dir != pkg && !(all && (pkg == "" || strings.HasPrefix(dir, pkg+"/"))) {
				continue
			}
			for name := range d.tests {
				if strings.HasPrefix(name, "Test") && re.MatchString(name) {
					return true
				}
			}
		}
	}
	return false
}
