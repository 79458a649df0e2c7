package reservations_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/reservations"
)

// BenchmarkLoadInventory loads an inventory stream holding n reservations
// (n+1 events) through a command handler without snapshots, on the memory
// store (decoding and folding only) and on SQLite. Folds are linear:
// ns/event stays flat as n grows. (With snapshots, as package app runs
// it, a load folds at most SnapshotEvery events: see BenchmarkReserve.)
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
				// The inventory's events of n reservations are appended
				// directly, as Decide would have decided them: handling n
				// commands would cost n loads.
				var batch []es.EventData
				for i := range n {
					d, err := reg.Encode(reservations.SeatsTaken{ConcertID: "stadium", ReservationID: fmt.Sprint("r", i),
						Seats: map[string]int{"GA": 1}})
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

// BenchmarkReserve measures Reserve as package app runs it (a
// multi-stream decision over the new reservation's stream and the
// concert's inventory, with inventory snapshots every 100 events) on a
// 50,000-seat concert with 40,000 reservations made, on SQLite and
// PostgreSQL, and reports the median and 99th percentile of one Reserve.
// Each reservation is then cancelled, outside the timing, so the concert
// never sells out however long the benchmark runs.
//
//	go test -run '^$' -bench Reserve -benchtime 2000x ./examples/ticketing/reservations
func BenchmarkReserve(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run("store="+kind, func(b *testing.B) {
			ctx := context.Background()
			reg := es.NewRegistry()
			if err := reservations.Register(reg); err != nil {
				b.Fatal(err)
			}
			var store es.Store
			if kind == "sqlite" {
				s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "es.db"), sqlite.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store = s
			} else {
				store = pgtest.NewStore(b, postgres.Config{})
			}
			h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{SnapshotEvery: 100})
			decide := func(commandID string, cmd reservations.Command) error {
				_, err := h.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
					_, err := reservations.Decide(ctx, d, cmd)
					return err
				})
				return err
			}
			const concert, seats, made = "stadium", 50_000, 40_000
			if err := decide(es.NewID(), reservations.OpenInventory{ConcertID: concert, Capacity: map[string]int{"GA": seats}}); err != nil {
				b.Fatal(err)
			}
			expires := time.Now().Add(time.Hour).UTC()
			appendMade(b, store, reg, concert, made, expires)
			// One Reserve before the timing saves the inventory's first
			// snapshot, as the sale's earlier commands would have.
			reserveOne := func(i int) time.Duration {
				id := es.NewID()
				start := time.Now()
				if err := decide(id, reservations.Reserve{ConcertID: concert, ReservationID: id, UserID: fmt.Sprint("buyer-", i),
					Seats: map[string]int{"GA": 2}, At: time.Now(), ExpiresAt: expires}); err != nil {
					b.Fatal(err)
				}
				took := time.Since(start)
				b.StopTimer()
				if err := decide(es.NewID(), reservations.CancelReservation{ConcertID: concert, ReservationID: id}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				return took
			}
			reserveOne(-1)
			var took []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				took = append(took, reserveOne(i))
			}
			slices.Sort(took)
			at := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
		})
	}
}

// appendMade appends what Decide appends for n reservations of one seat
// each (the reservation's SeatsReserved, the inventory's SeatsTaken, with
// the event IDs and metadata a multi-stream handler gives them), in
// batches: deciding them one by one would take most of the benchmark's
// time.
func appendMade(b *testing.B, store es.Store, reg *es.Registry, concert string, n int, expires time.Time) {
	ctx := context.Background()
	inventory := reservations.Stream(concert)
	for from := 0; from < n; from += 500 {
		var appends []es.StreamAppend
		inv := es.StreamAppend{StreamID: inventory, Expected: es.AnyVersion}
		for i := from; i < min(from+500, n); i++ {
			commandID, id := es.NewID(), es.NewID()
			stream := reservations.ReservationStream(id)
			md := es.Metadata{CausationID: commandID, CorrelationID: commandID}
			seats := map[string]int{"GA": 1}
			r, err := reg.Encode(reservations.SeatsReserved{ConcertID: concert, ReservationID: id, UserID: fmt.Sprint("fan-", i),
				Seats: seats, ExpiresAt: expires})
			if err != nil {
				b.Fatal(err)
			}
			r.ID, r.Metadata = es.DeriveID(commandID+"@"+stream, 0), md
			t, err := reg.Encode(reservations.SeatsTaken{ConcertID: concert, ReservationID: id, Seats: seats})
			if err != nil {
				b.Fatal(err)
			}
			t.ID, t.Metadata = es.DeriveID(commandID+"@"+inventory, 0), md
			appends = append(appends, es.StreamAppend{StreamID: stream, Expected: es.NoStream, Events: []es.EventData{r}})
			inv.Events = append(inv.Events, t)
		}
		if _, err := store.Append(ctx, append(appends, inv)...); err != nil {
			b.Fatal(err)
		}
	}
}
