package reservations_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/reservations"
)

// BenchmarkLoadInventory loads an inventory stream holding n reservations
// (n+1 events) through a command handler, on the memory store (decoding
// and folding only) and on SQLite. Folds are linear: ns/event stays flat
// as n grows.
//
//	go test -run '^$' -bench LoadInventory ./examples/ticketing/reservations
func BenchmarkLoadInventory(b *testing.B) {
	for _, kind := range []string{"memory", "sqlite"} {
		for _, n := range []int{1_000, 5_000, 20_000} {
			b.Run(fmt.Sprintf("store=%s/reservations=%d", kind, n), func(b *testing.B) {
				ctx := context.Background()
				reg := es.NewRegistry()
				if err := reservations.Register(reg); err != nil {
					b.Fatal(err)
				}
				var store es.Store = memory.New(memory.Config{})
				if kind == "sqlite" {
					s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "es.db"), sqlite.Config{})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					store = s
				}
				h := es.NewCommandHandler(store, reg, reservations.Decider(), es.HandlerConfig{})
				stream := reservations.Stream("stadium")
				if _, err := h.Handle(ctx, "", stream, reservations.OpenInventory{ConcertID: "stadium", Capacity: map[string]int{"GA": 2 * n}}); err != nil {
					b.Fatal(err)
				}
				// The reservations are appended directly, as the handler would
				// have decided them: handling n commands would cost n loads.
				expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
				var batch []es.EventData
				for i := range n {
					d, err := reg.Encode(reservations.SeatsReserved{ConcertID: "stadium", ReservationID: es.NewID(),
						UserID: fmt.Sprint("u", i), Seats: map[string]int{"GA": 1}, ExpiresAt: expires})
					if err != nil {
						b.Fatal(err)
					}
					if batch = append(batch, d); len(batch) == 1000 || i == n-1 {
						if _, err := es.Append(ctx, store, stream, es.AnyVersion, batch...); err != nil {
							b.Fatal(err)
						}
						batch = nil
					}
				}
				b.ResetTimer()
				for b.Loop() {
					if _, _, err := h.Load(ctx, stream); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+1), "ns/event")
			})
		}
	}
}
