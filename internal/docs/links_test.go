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
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLinkRE  = regexp.MustCompile(`^\s*\[[^\]]+\]:\s+(\S+)`)
)

// links returns the link targets of a page's prose, with their lines.
func (p page) links() (targets []string, lines []int) {
	_, prose := p.blocks()
	for i, l := range prose {
		l = codeSpanRE.ReplaceAllString(l, "")
		for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
			targets, lines = append(targets, m[1]), append(lines, i+1)
		}
		if m := refLinkRE.FindStringSubmatch(l); m != nil {
			targets, lines = append(targets, m[1]), append(lines, i+1)
		}
	}
	return targets, lines
}

func TestRelativeLinksResolve(t *testing.T) {
	root := moduleRoot(t)
	all := pages(t)
	byPath := map[string]page{}
	for _, p := range all {
		byPath[p.path] = p
	}
	checked := 0
	for _, p := range all {
		targets, lines := p.links()
		for i, target := range targets {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(target, "#")
			resolved := p.path
			if file != "" {
				resolved = path.Clean(path.Join(path.Dir(p.path), file))
			}
			if strings.HasPrefix(resolved, "../") {
				t.Errorf("%s:%d: link %q leaves the repository", p.path, lines[i], target)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", p.path, lines[i], target, resolved)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(resolved, ".md") {
				// Line anchors into code (#L12) move with every edit:
				// link the file and name the function instead.
				t.Errorf("%s:%d: link %q: anchors are checked only into Markdown files", p.path, lines[i], target)
				continue
			}
			target, ok := byPath[resolved]
			if !ok {
				b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(resolved)))
				if err != nil {
					t.Fatal(err)
				}
				target = page{path: resolved, lines: strings.Split(string(b), "\n")}
			}
			if !target.anchors()[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", p.path, lines[i], targets[i], resolved, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link parser is broken")
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"The relay: at least once, in order per key":  "the-relay-at-least-once-in-order-per-key",
		"Async: `store.Consumer(p)`":                  "async-storeconsumerp",
		"1. Versioning":                               "1-versioning",
		"What is exactly-once, what is at-least-once": "what-is-exactly-once-what-is-at-least-once",
	} {
		if got := slug(codeSpanRE.ReplaceAllStringFunc(heading, func(s string) string { return strings.Trim(s, "`") })); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}
