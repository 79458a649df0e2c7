// Package docs checks, as tests, that the documentation in docs/ and
// README.md stays true to the code:
//
//   - Every relative link resolves: the file exists, and a #anchor into a
//     Markdown file matches one of its headings, slugged as GitHub does
//     (TestRelativeLinksResolve).
//
//   - Every Go code block compiles, or says it is a fragment
//     (TestGoBlocksCompile). What a block is follows from its info string
//     and the line before it:
//
//     A block opened by ```go is a whole file, starting with "package": it
//     is built with go build, overlaid into the module as a package of its
//     own, so it may import the module's packages.
//
//     A block opened by ```go fragment is a piece of code that does not
//     compile alone (elided parts, names defined elsewhere). It is not
//     checked: prefer a region when the code exists.
//
//     A ```go block right after the line <!-- region: path name --> is
//     the text between the lines "// region: name" and "// endregion" of
//     the Go file path (relative to the module root), verbatim and without
//     its common indentation. The file is compiled and tested with the
//     module; the test fails when the block drifts from it.
//
//   - Every Go name a Mermaid diagram shows as pkg.Name (or
//     pkg.Type.Method) is declared in a package of that name in the module
//     (TestDiagramNamesExist), and every test, benchmark or fuzz function
//     named in backquotes (`TestX`) exists (TestNamedTestsExist).
//
//   - Every `go test ... -run X ./path` command in the docs names a test
//     that exists in that package (TestCommandsNameRealTests).
//
// The package has only tests: it is not imported.
package docs
