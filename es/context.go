package es

import "context"

type metadataKey struct{}

// WithMetadata returns a context that carries md. A [CommandHandler] copies
// the correlation ID, trace parent and extra values of the context's
// metadata into the events it appends, so that what one request caused can
// be traced across streams and modules.
func WithMetadata(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// MetadataFrom returns the metadata ctx carries, if any.
func MetadataFrom(ctx context.Context) Metadata {
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	return md
}

// WithMessage returns a context that carries the metadata of what m
// causes: m's correlation ID (m's own ID when it has none), trace parent
// and extra values, with m's ID as the causation ID. A handler of m runs
// its commands with it, so that their events are correlated with m and
// one purchase can be followed across modules. [Bus] does this for its
// handlers; a broker's subscriber does it too.
func WithMessage(ctx context.Context, m Message) context.Context {
	md := Metadata{CorrelationID: m.Metadata.CorrelationID, CausationID: m.ID, TraceParent: m.Metadata.TraceParent,
		Extra: m.Metadata.Extra}
	if md.CorrelationID == "" {
		md.CorrelationID = m.ID
	}
	return WithMetadata(ctx, md)
}
