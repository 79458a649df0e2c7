package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/explorer"
)

// Page sizes of the explorer.
const (
	streamsPerPage  = 50
	eventsPerPage   = 100
	timelineMaxSize = 2000 // events of one correlation shown at most
)

// streamsView is the explorer's list of streams: a page of one category
// (or all), and the categories to choose from.
type streamsView struct {
	Category   string            `json:"category"`
	Categories []string          `json:"categories"`
	Streams    []explorer.Stream `json:"streams"`
	// Next is the after= of the next page, empty on the last.
	Next string `json:"next,omitempty"`
}

func (s *Server) explorerStreams(r *http.Request) (any, error) {
	ctx, db := r.Context(), s.cfg.DB.DB()
	v := streamsView{Category: r.URL.Query().Get("category")}
	var err error
	if v.Categories, err = explorer.Categories(ctx, db); err != nil {
		return nil, err
	}
	if v.Streams, err = explorer.Streams(ctx, db, v.Category, r.URL.Query().Get("after"), streamsPerPage+1); err != nil {
		return nil, err
	}
	if len(v.Streams) > streamsPerPage {
		v.Streams = v.Streams[:streamsPerPage]
		v.Next = v.Streams[streamsPerPage-1].ID
	}
	return v, nil
}

// eventView is a stored event as the explorer shows it, its data and
// metadata with passwords redacted.
type eventView struct {
	ID            string          `json:"id"`
	StreamID      string          `json:"stream_id"`
	Version       int64           `json:"version"`
	Position      int64           `json:"position"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      es.Metadata     `json:"metadata"`
}

// DataText and MetadataText are the JSON pretty-printed, for the page.
func (e eventView) DataText() string { return indentJSON(e.Data) }

// MetadataText is the metadata's JSON pretty-printed, for the page.
func (e eventView) MetadataText() string {
	b, _ := json.Marshal(e.Metadata)
	return indentJSON(b)
}

// streamView is a page of a stream's events.
type streamView struct {
	ID     string      `json:"id"`
	Events []eventView `json:"events"`
	// NextFrom is the from= of the next page (0 on the last).
	NextFrom int64 `json:"next_from,omitempty"`
	// CorrelationID is the correlation of the stream's first event: for
	// an order, the purchase that placed it.
	CorrelationID string `json:"correlation_id,omitempty"`
}

func (s *Server) explorerStream(r *http.Request) (any, error) {
	ctx := r.Context()
	v := streamView{ID: r.PathValue("id")}
	from := int64(1)
	if f := r.URL.Query().Get("from"); f != "" {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: from must be a version, 1 or more", errBadRequest)
		}
		from = n
	}
	for e, err := range s.cfg.Events.ReadStream(ctx, v.ID, es.StreamQuery{From: from, Limit: eventsPerPage + 1}) {
		if errors.Is(err, es.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(v.Events) == eventsPerPage {
			v.NextFrom = e.Version
			break
		}
		v.Events = append(v.Events, eventView{ID: e.ID, StreamID: e.StreamID, Version: e.Version, Position: e.Position,
			Type: e.Type, SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt, Data: redact(e.Data),
			Metadata: redactMetadata(e.Metadata)})
	}
	if len(v.Events) == 0 && from == 1 {
		return nil, fmt.Errorf("%w: stream %s", errNotFound, v.ID)
	}
	id, err := explorer.StreamCorrelation(ctx, s.cfg.DB.DB(), v.ID)
	if err != nil && !errors.Is(err, explorer.ErrNotFound) {
		return nil, err
	}
	v.CorrelationID = id
	return v, nil
}

// Kinds of the nodes of a timeline.
const (
	nodeEvent   = "event"   // an event in a stream
	nodeMessage = "message" // a message of the outbox
	nodeCommand = "command" // a cause that is neither: a command, a request
)

// node is an event or a message of a timeline, or the command that
// caused some of them.
type node struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Type is the event's or message's type.
	Type string `json:"type,omitempty"`
	// StreamID, Version and Position place an event.
	StreamID string `json:"stream_id,omitempty"`
	Version  int64  `json:"version,omitempty"`
	Position int64  `json:"position,omitempty"`
	// Key and Seq place a message in the outbox; DeliverAt is set for a
	// deadline.
	Key       string    `json:"key,omitempty"`
	Seq       int64     `json:"seq,omitempty"`
	DeliverAt time.Time `json:"deliver_at,omitzero"`
	// At is when an event was recorded.
	At time.Time `json:"at,omitzero"`
	// CausationID is the node's parent, if the timeline has it.
	CausationID string `json:"causation_id,omitempty"`
	// Depth is the node's depth in the tree of causes, 0 for a root.
	Depth int `json:"depth"`
	// Data is a message's payload, passwords redacted.
	Data json.RawMessage `json:"data,omitempty"`
}

// timelineView is what one correlation ID caused, as a tree in causal
// order: each node after its cause, a cause's events (in global order)
// before the messages it sent (in outbox order).
type timelineView struct {
	CorrelationID string `json:"correlation_id"`
	Nodes         []node `json:"nodes"`
	// Messages tells whether the store could look messages up (an
	// es.MessageReader); without, messages appear as commands.
	Messages bool `json:"messages"`
	// Truncated is set when the correlation has more events than shown.
	Truncated bool `json:"truncated,omitempty"`
}

func (s *Server) explorerCorrelation(r *http.Request) (any, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	links, err := explorer.Correlated(ctx, s.cfg.DB.DB(), id, timelineMaxSize+1)
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("%w: correlation %s", errNotFound, id)
	}
	v := timelineView{CorrelationID: id}
	if len(links) > timelineMaxSize {
		links, v.Truncated = links[:timelineMaxSize], true
	}
	nodes := map[string]*node{}
	for _, l := range links {
		nodes[l.EventID] = &node{Kind: nodeEvent, ID: l.EventID, Type: l.Type, StreamID: l.StreamID, Version: l.Version,
			Position: l.Position, At: l.RecordedAt, CausationID: l.CausationID}
	}
	// The causes that are not events are messages, or commands: look
	// them up in the outbox, then the causes of the messages found, and
	// so on up the chain.
	reader, ok := s.cfg.Events.(es.MessageReader)
	v.Messages = ok
	asked := map[string]bool{}
	for ok {
		var ask []string
		for _, n := range nodes {
			if c := n.CausationID; c != "" && nodes[c] == nil && !asked[c] {
				ask, asked[c] = append(ask, c), true
			}
		}
		if len(ask) == 0 {
			break
		}
		msgs, err := reader.Messages(ctx, ask)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			nodes[m.ID] = &node{Kind: nodeMessage, ID: m.ID, Type: m.Type, Key: m.Key, Seq: m.Seq, DeliverAt: m.DeliverAt,
				CausationID: m.Metadata.CausationID, Data: redact(m.Data)}
		}
	}
	for _, n := range slices.Collect(maps.Values(nodes)) {
		if c := n.CausationID; c != "" && nodes[c] == nil {
			nodes[c] = &node{Kind: nodeCommand, ID: c}
		}
	}
	v.Nodes = causalOrder(nodes)
	return v, nil
}

// causalOrder returns the nodes depth first from the roots: each node
// after its cause. Siblings come events first, by position, then
// messages, by outbox order; roots by their first event.
func causalOrder(nodes map[string]*node) []node {
	children := map[string][]*node{}
	var roots []*node
	for _, n := range nodes {
		if n.CausationID == "" || n.CausationID == n.ID {
			roots = append(roots, n)
			continue
		}
		children[n.CausationID] = append(children[n.CausationID], n)
	}
	// first is the position of a node's earliest event, its own or a
	// descendant's, to order roots (and commands) by when they acted.
	first := map[string]int64{}
	var firstOf func(n *node, seen map[string]bool) int64
	firstOf = func(n *node, seen map[string]bool) int64 {
		if p, ok := first[n.ID]; ok {
			return p
		}
		if seen[n.ID] {
			return int64(^uint64(0) >> 1)
		}
		seen[n.ID] = true
		p := int64(^uint64(0) >> 1)
		if n.Kind == nodeEvent {
			p = n.Position
		}
		for _, c := range children[n.ID] {
			p = min(p, firstOf(c, seen))
		}
		first[n.ID] = p
		return p
	}
	rank := func(a, b *node) int {
		ka, kb := kindRank(a.Kind), kindRank(b.Kind)
		if ka != kb {
			return cmp.Compare(ka, kb)
		}
		switch a.Kind {
		case nodeEvent:
			return cmp.Compare(a.Position, b.Position)
		case nodeMessage:
			return cmp.Compare(a.Seq, b.Seq)
		}
		return cmp.Compare(firstOf(a, map[string]bool{}), firstOf(b, map[string]bool{}))
	}
	slices.SortFunc(roots, func(a, b *node) int {
		return cmp.Or(cmp.Compare(firstOf(a, map[string]bool{}), firstOf(b, map[string]bool{})), strings.Compare(a.ID, b.ID))
	})
	var out []node
	visited := map[string]bool{}
	var walk func(n *node, depth int)
	walk = func(n *node, depth int) {
		if visited[n.ID] {
			return // a cycle of causes: shown once
		}
		visited[n.ID] = true
		c := *n
		c.Depth = depth
		out = append(out, c)
		kids := children[n.ID]
		slices.SortFunc(kids, rank)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	// Nodes in a cycle have no root: show them at the top level.
	rest := slices.Collect(maps.Values(nodes))
	slices.SortFunc(rest, rank)
	for _, n := range rest {
		walk(n, 0)
	}
	return out
}

// kindRank orders siblings: events, then messages, then commands.
func kindRank(kind string) int {
	switch kind {
	case nodeEvent:
		return 0
	case nodeMessage:
		return 1
	}
	return 2
}

// statusView shows how far each read model has come.
type statusView struct {
	// Head is the store's last position (-1 if the store cannot tell).
	Head        int64              `json:"head"`
	Projections []projectionStatus `json:"projections"`
	// OutboxBacklog counts the messages not yet delivered (-1 without an
	// outbox).
	OutboxBacklog int64 `json:"outbox_backlog"`
}

// projectionStatus is a read model's checkpoint and its lag behind the
// head, in events' positions.
type projectionStatus struct {
	Name       string `json:"name"`
	Checkpoint int64  `json:"checkpoint"`
	Lag        int64  `json:"lag"`
}

func (s *Server) explorerStatus(r *http.Request) (any, error) {
	ctx := r.Context()
	v := statusView{Head: -1, OutboxBacklog: -1}
	if h, ok := s.cfg.Events.(es.HeadReader); ok {
		head, err := h.Head(ctx)
		if err != nil {
			return nil, err
		}
		v.Head = head
	}
	cps := s.cfg.App.Checkpoints()
	for _, p := range s.cfg.App.Projections() {
		cp, err := cps.LoadCheckpoint(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		ps := projectionStatus{Name: p.Name, Checkpoint: cp}
		if v.Head >= 0 {
			ps.Lag = max(v.Head-cp, 0)
		}
		v.Projections = append(v.Projections, ps)
	}
	if ob, ok := s.cfg.Events.(es.Outbox); ok {
		n, err := ob.Backlog(ctx)
		if err != nil {
			return nil, err
		}
		v.OutboxBacklog = n
	}
	return v, nil
}

// redacted replaces the values of secret fields.
const redacted = "[redacted]"

// secretField reports whether a JSON field holds a secret: a password or
// its hash, however the name is spelled (password_hash, passwordHash).
func secretField(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret")
}

// redact returns data with the values of secret fields replaced, at any
// depth. Data that is not JSON is shown as a JSON string, which is safe.
func redact(data json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		b, _ := json.Marshal(string(data))
		return b
	}
	b, err := json.Marshal(redactValue(v))
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if secretField(k) {
				x[k] = redacted
			} else {
				x[k] = redactValue(val)
			}
		}
	case []any:
		for i, val := range x {
			x[i] = redactValue(val)
		}
	}
	return v
}

// redactMetadata redacts the metadata's extra values of secret keys.
func redactMetadata(md es.Metadata) es.Metadata {
	if len(md.Extra) == 0 {
		return md
	}
	extra := make(map[string]string, len(md.Extra))
	for k, v := range md.Extra {
		if secretField(k) {
			v = redacted
		}
		extra[k] = v
	}
	md.Extra = extra
	return md
}

// indentJSON pretty-prints JSON for a page.
func indentJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}
