package es

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Registry maps stored event type names to Go types and back, and upcasts
// stored data of old schema versions to the current one.
//
// The stored name is always given explicitly, never taken from the Go type,
// so renaming a Go type never breaks stored data. Each type has a schema
// version, 1 at first; when the shape of an event changes, add an
// [UpcastFrom] step from the old version, which makes the new shape the
// next version.
// Stored events are never rewritten: upcasting happens on every read, so
// code only ever sees the current shape.
//
// A Registry is safe for concurrent use; it is usually filled once at
// start-up.
type Registry struct {
	mu      sync.RWMutex
	byName  map[string]*eventType // current names
	aliases map[string]*eventType // former names (see RenamedFrom)
	byGo    map[reflect.Type]*eventType
	builtin map[string]*eventType // es's own events, decoded but not listed
}

type eventType struct {
	name      string
	version   int
	goType    reflect.Type
	upcasters map[int]Upcaster // from version -> step to version+1
	aliases   []string
	err       error // a mistake in the options, reported by Register
}

// Upcaster turns the JSON data of one schema version into the next one.
// It must be a pure function of its input.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// TypeOption configures a registration; see [Register].
type TypeOption func(*eventType)

// UpcastFrom adds the step that turns data of schema version from into
// version from+1. A type's current schema version is one above its last
// step, 1 without steps, so registering a new shape is adding its step.
// The steps must cover every version from the oldest one ever stored up to
// the current one; a step missing in between is a registration error, and
// a stored version older than the chain is an error on decoding.
func UpcastFrom(from int, fn Upcaster) TypeOption {
	return func(t *eventType) {
		if t.upcasters == nil {
			t.upcasters = make(map[int]Upcaster)
		}
		if _, dup := t.upcasters[from]; dup && t.err == nil {
			t.err = fmt.Errorf("two upcasters from version %d", from)
		}
		t.upcasters[from] = fn
	}
}

// RenamedFrom declares former stored names of a type: events stored under
// them decode as this type. Schema versions carry over, so an event stored
// as "SeatsAdded" v1 is upcast along this type's chain from v1.
func RenamedFrom(names ...string) TypeOption {
	return func(t *eventType) { t.aliases = append(t.aliases, names...) }
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byName:  make(map[string]*eventType),
		aliases: make(map[string]*eventType),
		byGo:    make(map[reflect.Type]*eventType),
		builtin: map[string]*eventType{
			MessageHandledType:     {name: MessageHandledType, version: 1, goType: reflect.TypeFor[MessageHandled]()},
			DeadlinesCancelledType: {name: DeadlinesCancelledType, version: 1, goType: reflect.TypeFor[DeadlinesCancelled]()},
		},
	}
}

// Register registers the Go type E, a struct, under the stored type name
// name. Registering a name, a former name or a Go type twice fails with
// [ErrTypeRegistered]. An empty name, a Go type that is not a struct and
// an upcaster chain with a gap, a nil or a repeated step fail too: they are
// mistakes in the code, which MustRegister turns into a panic at start-up.
func Register[E any](r *Registry, name string, opts ...TypeOption) error {
	t := &eventType{name: name, version: 1, goType: reflect.TypeFor[E]()}
	for _, o := range opts {
		o(t)
	}
	if len(t.upcasters) > 0 {
		t.version = slices.Max(slices.Collect(maps.Keys(t.upcasters))) + 1
	}
	return r.add(t)
}

// MustRegister is like [Register] but panics on error. It is meant for
// setting up a registry from fixed code, where an error is a programming
// mistake.
func MustRegister[E any](r *Registry, name string, opts ...TypeOption) {
	if err := Register[E](r, name, opts...); err != nil {
		panic(err)
	}
}

func (r *Registry) add(t *eventType) error {
	if t.err != nil {
		return fmt.Errorf("es: register %s: %w", t.name, t.err)
	}
	if t.name == "" {
		return fmt.Errorf("es: register %v: empty type name", t.goType)
	}
	if t.goType.Kind() != reflect.Struct {
		return fmt.Errorf("es: register %s: Go type %v is not a struct", t.name, t.goType)
	}
	froms := slices.Sorted(maps.Keys(t.upcasters))
	for i, from := range froms {
		if from < 1 {
			return fmt.Errorf("es: register %s: upcaster from version %d; versions start at 1", t.name, from)
		}
		if t.upcasters[from] == nil {
			return fmt.Errorf("es: register %s: nil upcaster from version %d", t.name, from)
		}
		if i > 0 && from != froms[i-1]+1 {
			return fmt.Errorf("es: register %s: gap in the upcaster chain: no step from version %d to %d", t.name, froms[i-1]+1, froms[i-1]+2)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byGo[t.goType]; ok {
		return fmt.Errorf("%w: Go type %v is registered as %q", ErrTypeRegistered, t.goType, prev.name)
	}
	for _, n := range append([]string{t.name}, t.aliases...) {
		if r.byName[n] != nil || r.aliases[n] != nil || r.builtin[n] != nil {
			return fmt.Errorf("%w: name %q", ErrTypeRegistered, n)
		}
	}
	r.byName[t.name] = t
	for _, n := range t.aliases {
		r.aliases[n] = t
	}
	r.byGo[t.goType] = t
	return nil
}

// Encode turns a registered event value (or a pointer to one) into
// EventData with a new ID, its stored type name and current schema version.
func (r *Registry) Encode(event any) (EventData, error) {
	t, err := r.typeOf(event)
	if err != nil {
		return EventData{}, err
	}
	data, err := json.Marshal(event)
	if err != nil {
		return EventData{}, fmt.Errorf("es: encode %s: %w", t.name, err)
	}
	return EventData{ID: NewID(), Type: t.name, SchemaVersion: t.version, Data: data}, nil
}

func (r *Registry) typeOf(event any) (*eventType, error) {
	v := reflect.ValueOf(event)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil, fmt.Errorf("%w: nil event", ErrUnknownEventType)
	}
	r.mu.RLock()
	t := r.byGo[v.Type()]
	r.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w: Go type %v is not registered", ErrUnknownEventType, v.Type())
	}
	return t, nil
}

// Upcast resolves a stored type name (current or former) and brings data of
// the given schema version up to the type's current version. It returns the
// current type name and the upcast data.
func (r *Registry) Upcast(typeName string, version int, data json.RawMessage) (string, json.RawMessage, error) {
	t, err := r.lookup(typeName)
	if err != nil {
		return "", nil, err
	}
	data, err = t.upcast(typeName, version, data)
	return t.name, data, err
}

func (r *Registry) lookup(name string) (*eventType, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if t := r.byName[name]; t != nil {
		return t, nil
	}
	if t := r.aliases[name]; t != nil {
		return t, nil
	}
	if t := r.builtin[name]; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, name)
}

func (t *eventType) upcast(stored string, version int, data json.RawMessage) (json.RawMessage, error) {
	if version > t.version {
		return nil, fmt.Errorf("%w: %s is stored at schema version %d, newer than the registered version %d",
			ErrMissingUpcaster, stored, version, t.version)
	}
	for v := version; v < t.version; v++ {
		step := t.upcasters[v]
		if step == nil {
			return nil, fmt.Errorf("%w: %s has no upcaster from schema version %d (current version %d)",
				ErrMissingUpcaster, stored, v, t.version)
		}
		next, err := step(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s from schema version %d: %w", ErrUpcast, stored, v, err)
		}
		data = next
	}
	return data, nil
}

// Decode returns the Go value of a stored event, upcast to the current
// schema version. The value has the registered type (not a pointer).
// Unknown type names fail with [ErrUnknownEventType].
func (r *Registry) Decode(e Event) (any, error) {
	return r.DecodeData(e.Type, e.SchemaVersion, e.Data)
}

// DecodeKnown is [Registry.Decode] for code that follows the whole log,
// such as a read model, and must pass over events that are not for it
// (another module's, or ones written by a newer version of the
// application): an event of a type r does not know gives ok false and a
// nil error. Every other failure (a missing upcaster, malformed data) is
// still an error, so that a read model never skips an event it should have
// applied. When ok is true, v is the decoded event, as from Decode.
func (r *Registry) DecodeKnown(e Event) (v any, ok bool, err error) {
	if _, err := r.lookup(e.Type); err != nil {
		return nil, false, nil // lookup fails only for an unknown name
	}
	v, err = r.Decode(e)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// DecodeData is [Registry.Decode] for data that is not in an [Event].
func (r *Registry) DecodeData(typeName string, version int, data json.RawMessage) (any, error) {
	t, err := r.lookup(typeName)
	if err != nil {
		return nil, err
	}
	data, err = t.upcast(typeName, version, data)
	if err != nil {
		return nil, err
	}
	p := reflect.New(t.goType)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %w", ErrDecode, typeName, version, err)
	}
	return p.Elem().Interface(), nil
}

// Decode is [Registry.Decode] for callers that expect a particular Go type
// (usually an interface that all of a stream's events implement).
func Decode[E any](r *Registry, e Event) (E, error) {
	var zero E
	v, err := r.Decode(e)
	if err != nil {
		return zero, err
	}
	ev, ok := v.(E)
	if !ok {
		return zero, fmt.Errorf("%w: event %s (%s) is a %T, not a %v", ErrDecode, e.ID, e.Type, v, reflect.TypeFor[E]())
	}
	return ev, nil
}

// TypeInfo describes a registered event type.
type TypeInfo struct {
	Name    string
	Version int
	GoType  reflect.Type
	// Aliases are the type's former names.
	Aliases []string
}

// Types lists the registered types, sorted by name.
func (r *Registry) Types() []TypeInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]TypeInfo, 0, len(r.byName))
	for _, t := range r.byName {
		out = append(out, TypeInfo{Name: t.name, Version: t.version, GoType: t.goType, Aliases: slices.Clone(t.aliases)})
	}
	slices.SortFunc(out, func(a, b TypeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
