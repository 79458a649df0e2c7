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
