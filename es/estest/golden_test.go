package estest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"esgo.dev/es"
	"esgo.dev/internal/tbtest"
)

// This file is in package estest to call checkGolden with update set,
// rather than through the environment.

func check(t *testing.T, reg *es.Registry, dir string, update bool) *tbtest.Recorder {
	return tbtest.Run(t, func(tb testing.TB) { checkGolden(tb, reg, dir, update) })
}

type ticketV1 struct {
	Quantity int    `json:"quantity"`
	Type     string `json:"type"`
}

// ticketRenamed is ticketV1 with its quantity field renamed: the same
// schema version with another shape.
type ticketRenamed struct {
	Count int    `json:"count"`
	Type  string `json:"type"`
}

func TestGoldenSchemaFailsWhenAFieldIsRenamedWithoutAVersionBump(t *testing.T) {
	dir := t.TempDir()
	v1 := es.NewRegistry()
	es.MustRegister[ticketV1](v1, "TicketsAdded")
	if r := check(t, v1, dir, true); r.Failed() {
		t.Fatalf("writing golden files failed: %v", r.Messages())
	}
	if r := check(t, v1, dir, false); r.Failed() {
		t.Fatalf("unchanged types failed the check: %v", r.Messages())
	}

	renamed := es.NewRegistry()
	es.MustRegister[ticketRenamed](renamed, "TicketsAdded")
	r := check(t, renamed, dir, false)
	out := r.Messages()
	if !r.Failed() {
		t.Fatal("a renamed field passed the golden-schema check")
	}
	for _, want := range []string{"TicketsAdded", "quantity", "count", "schema version is still 1", "version 2", "es.UpcastFrom(1"} {
		if !strings.Contains(out, want) {
			t.Errorf("message lacks %q:\n%s", want, out)
		}
	}
	t.Logf("the check prints:\n%s", out)
}

func TestGoldenSchemaAcceptsAVersionBumpWithAnUpcaster(t *testing.T) {
	dir := t.TempDir()
	v1 := es.NewRegistry()
	es.MustRegister[ticketV1](v1, "TicketsAdded")
	check(t, v1, dir, true)

	v2 := es.NewRegistry()
	es.MustRegister[ticketRenamed](v2, "TicketsAdded", es.UpcastFrom(1, renameQuantity))
	if r := check(t, v2, dir, true); r.Failed() {
		t.Fatalf("writing the v2 file: %v", r.Messages())
	}
	if r := check(t, v2, dir, false); r.Failed() {
		t.Fatalf("v1 file plus upcaster failed: %v", r.Messages())
	}
	for _, f := range []string{"TicketsAdded.v1.json", "TicketsAdded.v2.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}

	// A bad upcaster (it forgets to rename the field) is caught by the
	// strict decoding of the old file.
	bad := es.NewRegistry()
	es.MustRegister[ticketRenamed](bad, "TicketsAdded", es.UpcastFrom(1, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }))
	r := check(t, bad, dir, false)
	if !r.Failed() || !strings.Contains(r.Messages(), "TicketsAdded v1") {
		t.Fatalf("a lossy upcaster passed: %v", r.Messages())
	}
}

func renameQuantity(d json.RawMessage) (json.RawMessage, error) {
	var v1 ticketV1
	if err := json.Unmarshal(d, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(ticketRenamed{Count: v1.Quantity, Type: v1.Type})
}

func TestGoldenSchemaReportsMissingAndOrphanedFiles(t *testing.T) {
	dir := t.TempDir()
	reg := es.NewRegistry()
	es.MustRegister[ticketV1](reg, "TicketsAdded")
	r := check(t, reg, dir, false)
	if !r.Failed() || !strings.Contains(r.Messages(), UpdateGoldenEnv+"=1") {
		t.Fatalf("a missing golden file: %v", r.Messages())
	}

	os.WriteFile(filepath.Join(dir, "TicketsRemoved.v1.json"), []byte(`{"quantity":1}`), 0o644)
	check(t, reg, dir, true)
	r = check(t, reg, dir, false)
	if !r.Failed() || !strings.Contains(r.Messages(), `"TicketsRemoved"`) {
		t.Fatalf("a file of an unregistered type: %v", r.Messages())
	}
}

func TestSampleFillsEveryField(t *testing.T) {
	type inner struct {
		Tags []string          `json:"tags"`
		Meta map[string]int    `json:"meta"`
		Raw  json.RawMessage   `json:"raw"`
		Ptr  *int              `json:"ptr"`
		Arr  [2]bool           `json:"arr"`
		Opt  map[string]string `json:"opt,omitempty"`
	}
	type outer struct {
		Name  string  `json:"name"`
		Price float64 `json:"price"`
		Inner inner   `json:"inner"`
		//lint:ignore U1000 an unexported field is there to show that Sample leaves it out
		hidden int
	}
	b, err := json.Marshal(Sample(reflectTypeOf[outer]()))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"text","price":1.5,"inner":{"tags":["text"],"meta":{"text":1},"raw":{},"ptr":1,"arr":[true,true],"opt":{"text":"text"}}}`
	if string(b) != want {
		t.Fatalf("sample = %s\nwant     %s", b, want)
	}
}

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
