package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// The projection benchmarks measure how fast events go into a SQLite read
// model: a subscription catching up from position 0, and a rebuild.
//
//	go test -run '^$' -bench Projection -benchtime 3x ./es/sqlite

const projectionBenchEvents = 50_000

// salesProjection sums quantities per SKU: a JSON decode and an upsert per
// event, like most read models.
func salesProjection(name, table string) sqlite.Projection {
	return sqlite.Projection{
		Name:   name,
		Tables: []string{table},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name(table)+` (
				sku TEXT PRIMARY KEY, qty INTEGER NOT NULL, revenue INTEGER NOT NULL) STRICT`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			var item struct {
				SKU   string `json:"sku"`
				Qty   int64  `json:"qty"`
				Price struct {
					Amount int64 `json:"amount"`
				} `json:"price"`
			}
			if err := json.Unmarshal(e.Data, &item); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO `+t.Name(table)+` (sku, qty, revenue) VALUES (?, ?, ?)
				ON CONFLICT (sku) DO UPDATE SET qty = qty + excluded.qty, revenue = revenue + excluded.revenue`,
				item.SKU, item.Qty, item.Qty*item.Price.Amount)
			return err
		},
	}
}

// batchSalesProjection keeps the same sums as salesProjection, a batch at
// a time: the batch is folded in Go, per SKU, and written with one
// multi-row upsert.
func batchSalesProjection(name, table string) sqlite.Projection {
	p := salesProjection(name, table)
	p.Apply = nil
	p.ApplyBatch = func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, events []es.Event) error {
		type sums struct{ qty, revenue int64 }
		bySKU := map[string]*sums{}
		var skus []string
		for _, e := range events {
			var item struct {
				SKU   string `json:"sku"`
				Qty   int64  `json:"qty"`
				Price struct {
					Amount int64 `json:"amount"`
				} `json:"price"`
			}
			if err := json.Unmarshal(e.Data, &item); err != nil {
				return err
			}
			s := bySKU[item.SKU]
			if s == nil {
				s = &sums{}
				bySKU[item.SKU] = s
				skus = append(skus, item.SKU)
			}
			s.qty += item.Qty
			s.revenue += item.Qty * item.Price.Amount
		}
		for chunk := range slices.Chunk(skus, 300) {
			args := make([]any, 0, 3*len(chunk))
			for _, sku := range chunk {
				args = append(args, sku, bySKU[sku].qty, bySKU[sku].revenue)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.Name(table)+` (sku, qty, revenue) VALUES (?, ?, ?)`+
				strings.Repeat(`, (?, ?, ?)`, len(chunk)-1)+`
				ON CONFLICT (sku) DO UPDATE SET qty = qty + excluded.qty, revenue = revenue + excluded.revenue`, args...); err != nil {
				return err
			}
		}
		return nil
	}
	return p
}

// BenchmarkProjectionCatchUp: a subscription feeds the sales projection
// from a standing start over 50,000 stored events, one transaction per
// batch with its checkpoint: apply=event runs one upsert per event
// (Apply), apply=batch one multi-row upsert per batch (ApplyBatch).
func BenchmarkProjectionCatchUp(b *testing.B) {
	s := benchStore(b, sqlite.SyncFull)
	fill(b, s, 100, projectionBenchEvents/100)
	for _, apply := range []string{"event", "batch"} {
		for _, batch := range []int{256, 1000} {
			b.Run(fmt.Sprintf("apply=%s/batch=%d", apply, batch), func(b *testing.B) {
				var elapsed time.Duration
				for i := 0; b.Loop(); i++ {
					name, table := fmt.Sprintf("sales-%s-%d-%d", apply, batch, i), fmt.Sprintf("sales_%s_%d_%d", apply, batch, i)
					p := salesProjection(name, table)
					if apply == "batch" {
						p = batchSalesProjection(name, table)
					}
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan error, 1)
					start := time.Now()
					go func() {
						done <- es.NewSubscription(p.Name, s, s.Consumer(p), es.SubscriptionConfig{BatchSize: batch}).Run(ctx)
					}()
					for {
						cp, err := s.LoadCheckpoint(ctx, p.Name)
						if err != nil {
							b.Fatal(err)
						}
						if cp == projectionBenchEvents {
							break
						}
						time.Sleep(time.Millisecond)
					}
					elapsed += time.Since(start)
					cancel()
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(projectionBenchEvents*b.N)/elapsed.Seconds(), "events/s")
			})
		}
	}
}

func BenchmarkProjectionRebuild(b *testing.B) {
	s := benchStore(b, sqlite.SyncFull)
	fill(b, s, 100, projectionBenchEvents/100)
	p := salesProjection("sales", "sales")
	ctx := context.Background()
	if err := s.SetupProjection(ctx, p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Rebuild(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(projectionBenchEvents*b.N)/b.Elapsed().Seconds(), "events/s")
}
