package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"esgo.dev/es"
)

// UpdateGoldenEnv is the environment variable that makes [GoldenSchema]
// write golden files instead of only checking them: ES_UPDATE_GOLDEN=1.
const UpdateGoldenEnv = "ES_UPDATE_GOLDEN"

// GoldenSchema guards the stored shape of every event type registered in
// reg. For each type it keeps a sample of its JSON, with every field
// filled, in dir (usually "testdata/events") as NAME.vVERSION.json, and:
//
//   - fails if the current version's sample differs from its file, naming
//     the fields that differ: the shape changed without a new schema version
//     and an upcaster;
//   - fails if a file is missing, unless ES_UPDATE_GOLDEN=1 is set, in
//     which case it writes it;
//   - decodes every older version's file, and files under former names,
//     through the upcasters into the current Go type, strictly (a field the
//     upcast JSON has but the type lacks is an error), so data stored years
//     ago keeps decoding;
//   - fails on a file whose type is no longer registered.
//
// Old versions' files are never rewritten: they are the record of what was
// stored. Keep them, and add hand-written ones for versions that predate
// the check.
func GoldenSchema(t testing.TB, reg *es.Registry, dir string) {
	t.Helper()
	checkGolden(t, reg, dir, os.Getenv(UpdateGoldenEnv) == "1")
}

var goldenName = regexp.MustCompile(`^(.+)\.v([0-9]+)\.json$`)

func checkGolden(t testing.TB, reg *es.Registry, dir string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("golden schema: %v", err)
		}
	}
	current := make(map[string]bool)
	for _, ti := range reg.Types() {
		file := filepath.Join(dir, fmt.Sprintf("%s.v%d.json", ti.Name, ti.Version))
		current[filepath.Base(file)] = true
		sample, err := json.MarshalIndent(Sample(ti.GoType), "", "  ")
		if err != nil {
			t.Errorf("golden schema: %s v%d: encode sample: %v", ti.Name, ti.Version, err)
			continue
		}
		sample = append(sample, '\n')
		stored, err := os.ReadFile(file)
		switch {
		case update && !bytes.Equal(stored, sample):
			if err := os.WriteFile(file, sample, 0o644); err != nil {
				t.Fatalf("golden schema: %v", err)
			}
			t.Logf("golden schema: wrote %s", file)
			continue
		case os.IsNotExist(err):
			t.Errorf("golden schema: %s v%d has no golden file %s; run the tests with %s=1 to write it",
				ti.Name, ti.Version, file, UpdateGoldenEnv)
			continue
		case err != nil:
			t.Errorf("golden schema: %v", err)
			continue
		}
		var want, got any
		if err := json.Unmarshal(stored, &want); err != nil {
			t.Errorf("golden schema: %s: %v", file, err)
			continue
		}
		_ = json.Unmarshal(sample, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("golden schema: the JSON shape of %s (Go type %v) changed but its schema version is still %d.\n"+
				"Stored events of version %d would no longer decode as they were written. Make the new shape version %d\n"+
				"by registering es.UpcastFrom(%d, ...) from the old shape, and run with %s=1 to add %s.v%d.json.\n"+
				"Shape differs (-golden +now):\n%s",
				ti.Name, ti.GoType, ti.Version, ti.Version, ti.Version+1, ti.Version, UpdateGoldenEnv, ti.Name, ti.Version+1, diff)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("golden schema: %v", err)
	}
	for _, ent := range entries {
		m := goldenName.FindStringSubmatch(ent.Name())
		if m == nil || current[ent.Name()] {
			continue
		}
		version, _ := strconv.Atoi(m[2])
		data, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Errorf("golden schema: %v", err)
			continue
		}
		if err := decodeStrict(reg, m[1], version, data); err != nil {
			t.Errorf("golden schema: stored %s v%d (%s) no longer decodes: %v", m[1], version, ent.Name(), err)
		}
	}
}

// decodeStrict upcasts data and decodes it into the registered Go type,
// refusing fields the type does not have.
func decodeStrict(reg *es.Registry, name string, version int, data []byte) error {
	current, upcast, err := reg.Upcast(name, version, data)
	if err != nil {
		return err
	}
	var goType reflect.Type
	for _, ti := range reg.Types() {
		if ti.Name == current {
			goType = ti.GoType
		}
	}
	dec := json.NewDecoder(bytes.NewReader(upcast))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(goType).Interface()); err != nil {
		return fmt.Errorf("upcast to %s: %s: %w", current, upcast, err)
	}
	return nil
}

// Sample returns a value of type t with every exported field filled with a
// fixed, non-zero value: strings "text", numbers 1, true, one element in
// each slice and map, time 2026-01-02T03:04:05Z. Its JSON shows the shape
// of t; [GoldenSchema] stores it.
func Sample(t reflect.Type) any {
	v := reflect.New(t).Elem()
	fill(v, 0)
	return v.Interface()
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func fill(v reflect.Value, depth int) {
	if depth > 8 || !v.CanSet() {
		return
	}
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
		return
	case rawType:
		v.SetBytes([]byte("{}"))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("text")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}
