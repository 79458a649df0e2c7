package docs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var regionRE = regexp.MustCompile(`^<!--\s*region:\s*(\S+)\s+(.+?)\s*-->$`)

// region returns the lines of file between "// region: name" and
// "// endregion", without their common indentation and the blank lines
// around them.
func region(root, file, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return "", err
	}
	var out []string
	in := false
	for l := range strings.SplitSeq(string(b), "\n") {
		switch strings.TrimSpace(l) {
		case "// region: " + name:
			in = true
			continue
		case "// endregion":
			if in {
				return dedent(out), nil
			}
		}
		if in {
			out = append(out, l)
		}
	}
	return "", fmt.Errorf("%s has no region %q ended by // endregion", file, name)
}

func dedent(lines []string) string {
	prefix, first := "", true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, "\t"))]
		if first || len(ind) < len(prefix) {
			prefix, first = ind, false
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimPrefix(l, prefix))
		b.WriteString("\n")
	}
	// Blank lines around the region's text are not part of it.
	return strings.Trim(b.String(), "\n") + "\n"
}

func TestGoBlocksCompile(t *testing.T) {
	root := moduleRoot(t)
	overlay := map[string]string{}
	var builds []string
	var names []block
	tmp := t.TempDir()
	for _, p := range pages(t) {
		blocks, _ := p.blocks()
		for _, b := range blocks {
			if b.lang() != "go" {
				continue
			}
			if m := regionRE.FindStringSubmatch(b.before); m != nil {
				want, err := region(root, m[1], m[2])
				if err != nil {
					t.Errorf("%s: %v", b, err)
					continue
				}
				if b.text != want {
					t.Errorf("%s: the block differs from region %s of %s; it should be:\n%s", b, m[2], m[1], want)
				}
				continue
			}
			if strings.Contains(b.info, "fragment") {
				continue
			}
			if !strings.HasPrefix(strings.TrimSpace(b.text), "package ") && !strings.Contains(b.text, "\npackage ") {
				t.Errorf("%s: a Go block is a whole file (starting with package), a region (<!-- region: file name -->) or a fragment (```go fragment)", b)
				continue
			}
			// The block is overlaid as a package of its own inside the
			// module, so it can import the module's packages.
			n := len(builds)
			src := filepath.Join(tmp, fmt.Sprintf("block%d.go", n))
			if err := os.WriteFile(src, []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "internal", "docs", "blocks", fmt.Sprintf("b%d", n))
			overlay[filepath.Join(dir, "block.go")] = src
			builds = append(builds, "./internal/docs/blocks/"+fmt.Sprintf("b%d", n))
			names = append(names, b)
		}
	}
	if len(builds) == 0 {
		return
	}
	if testing.Short() {
		t.Skip("building the docs' Go files takes a while")
	}
	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	// One build per block: the error names the block.
	for i, pkg := range builds {
		cmd := exec.Command("go", "build", "-overlay", ovPath, "-o", os.DevNull, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not compile (%v):\n%s", names[i], err, out)
		}
	}
}
