package es_test

import (
	"context"
	"errors"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// Configurations that cannot work are refused with ErrInvalidConfig, not
// a panic in a goroutine.
func TestImpossibleConfigurationsAreRefused(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := es.NewRegistry()
	consumer := es.AtLeastOnce("c", store, func(context.Context, es.Event) error { return nil })
	for name, run := range map[string]func() error{
		"relay without a publisher": func() error { return es.NewRelay(store, nil, es.RelayConfig{}).Run(ctx) },
		"relay without an outbox":   func() error { return es.NewRelay(nil, es.NewBus(), es.RelayConfig{}).Run(ctx) },
		"subscription without a name": func() error {
			return es.NewSubscription("", store, consumer, es.SubscriptionConfig{}).Run(ctx)
		},
		"subscription name with a NUL": func() error {
			return es.NewSubscription("a\x00b", store, consumer, es.SubscriptionConfig{}).Run(ctx)
		},
		"subscription without a consumer": func() error {
			return es.NewSubscription("s", store, nil, es.SubscriptionConfig{}).Run(ctx)
		},
		"decider without Decide": func() error {
			_, err := es.NewCommandHandler(store, reg, es.Decider[int, any, any]{Initial: func() int { return 0 }}, es.HandlerConfig{}).
				Handle(ctx, "", "s-1", 1)
			return err
		},
		"process without a name": func() error {
			pm := paymentProcess
			pm.Name = ""
			return es.NewProcessHandler(store, paymentRegistry(), pm, es.ProcessConfig{}).Handle(ctx, es.Message{})
		},
		"process name with a '-'": func() error {
			pm := paymentProcess
			pm.Name = "pay-ment"
			return es.NewProcessHandler(store, paymentRegistry(), pm, es.ProcessConfig{}).Handle(ctx, es.Message{})
		},
	} {
		if err := run(); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}
