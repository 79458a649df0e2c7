package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// The benchmarks set each store operation beside a baseline: plain pgx
// doing the same work on a table of the same shape (CREATE TABLE ...
// (LIKE events INCLUDING ALL): same columns, defaults, indexes), each
// write in its own transaction. The ratio of the two is the cost of the
// store's guarantees: stream locks, idempotency lookup, position
// reservation, notification.
//
//	go test -run '^$' -bench . -benchtime 2s ./es/postgres/

type benchEnv struct {
	store    *postgres.Store
	pool     *pgxpool.Pool
	baseline string // quoted name of the baseline table
	seq      atomic.Int64
}

func newBenchEnv(b *testing.B) *benchEnv {
	pool := pgtest.Pool(b)
	s := pgtest.NewStoreWithPool(b, pool, postgres.Config{})
	env := &benchEnv{store: s, pool: pool, baseline: pgx.Identifier{s.Schema(), "baseline"}.Sanitize()}
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+env.baseline+
		" (LIKE "+pgx.Identifier{s.Schema(), "events"}.Sanitize()+" INCLUDING ALL)"); err != nil {
		b.Fatal(err)
	}
	return env
}

var benchMetadata = es.Metadata{CorrelationID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Extra: map[string]string{"user": "u-1"}}

func benchEvents(n int) []es.EventData {
	out := make([]es.EventData, n)
	for i := range out {
		out[i] = es.EventData{
			ID: es.NewID(), Type: "TicketReserved", SchemaVersion: 1, Metadata: benchMetadata,
			Data: fmt.Appendf(nil, `{"concert":"warsaw-2026","seat":%d,"price":{"amount":24900,"currency":"PLN"}}`, i),
		}
	}
	return out
}

// baselineInsert writes evs to the baseline table in one transaction with
// one INSERT, as the store does, but without locks or checks.
func (env *benchEnv) baselineInsert(ctx context.Context, stream string, evs []es.EventData) error {
	md, _ := json.Marshal(benchMetadata)
	now := time.Now().UTC()
	return pgx.BeginFunc(ctx, env.pool, func(tx pgx.Tx) error {
		if len(evs) == 1 {
			e := evs[0]
			_, err := tx.Exec(ctx, `INSERT INTO `+env.baseline+
				` (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)
				VALUES ($1, 1, $2, $3, $4, $5, $6, $7)`,
				stream, e.ID, e.Type, e.SchemaVersion, string(e.Data), string(md), now)
			return err
		}
		var (
			versions   []int64
			ids, types []string
			schemas    []int32
			data, mds  []string
		)
		for i, e := range evs {
			versions = append(versions, int64(i+1))
			ids = append(ids, e.ID)
			types = append(types, e.Type)
			schemas = append(schemas, int32(e.SchemaVersion))
			data = append(data, string(e.Data))
			mds = append(mds, string(md))
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+env.baseline+
			` (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)
			SELECT $1, v, id::uuid, t, sv, d::jsonb, m::jsonb, $8
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[]) AS u(v, id, t, sv, d, m)`,
			stream, versions, ids, types, schemas, data, mds, now)
		return err
	})
}

// baselineRead reads with one plain query into the same Go values, and
// decodes each event's data into its Go type.
func (env *benchEnv) baselineRead(ctx context.Context, where string, args ...any) (int, error) {
	rows, err := env.pool.Query(ctx, `SELECT event_id::text, stream_id, version, position, type, schema_version,
		data::text, metadata::text, recorded_at FROM `+env.baseline+` `+where, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	var (
		e        es.Event
		data, md string
	)
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &e.StreamID, &e.Version, &e.Position, &e.Type, &e.SchemaVersion, &data, &md, &e.RecordedAt},
		func() error {
			e.Data = json.RawMessage(data)
			e.Metadata = es.Metadata{}
			n++
			if err := json.Unmarshal([]byte(md), &e.Metadata); err != nil {
				return err
			}
			var v ticketReserved // what a registry's Decode does
			return json.Unmarshal(e.Data, &v)
		})
	return n, err
}

// runWriters runs op b.N times on goroutines goroutines.
func runWriters(b *testing.B, goroutines int, op func(ctx context.Context) error) {
	ctx := context.Background()
	b.ResetTimer()
	if goroutines == 1 {
		for range b.N {
			if err := op(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendNewStream appends one event to a new stream per op.
func BenchmarkAppendNewStream(b *testing.B) {
	env := newBenchEnv(b)
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("store/goroutines=%d", g), func(b *testing.B) {
			runWriters(b, g, func(ctx context.Context) error {
				_, err := es.Append(ctx, env.store, fmt.Sprintf("one-%d", env.seq.Add(1)), es.NoStream, benchEvents(1)...)
				return err
			})
		})
		b.Run(fmt.Sprintf("baseline/goroutines=%d", g), func(b *testing.B) {
			runWriters(b, g, func(ctx context.Context) error {
				return env.baselineInsert(ctx, fmt.Sprintf("one-%d", env.seq.Add(1)), benchEvents(1))
			})
		})
	}
}

// BenchmarkAppend100 appends 100 events to a new stream per op.
func BenchmarkAppend100(b *testing.B) {
	env := newBenchEnv(b)
	b.Run("store", func(b *testing.B) {
		runWriters(b, 1, func(ctx context.Context) error {
			_, err := es.Append(ctx, env.store, fmt.Sprintf("hundred-%d", env.seq.Add(1)), es.NoStream, benchEvents(100)...)
			return err
		})
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("baseline", func(b *testing.B) {
		runWriters(b, 1, func(ctx context.Context) error {
			return env.baselineInsert(ctx, fmt.Sprintf("hundred-%d", env.seq.Add(1)), benchEvents(100))
		})
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
	})
}

// fill appends n events to stream in the store and the baseline table.
func (env *benchEnv) fill(b *testing.B, stream string, n int) {
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		evs := benchEvents(min(1000, n-i))
		if _, err := es.Append(ctx, env.store, stream, es.Exact(int64(i)), evs...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := env.pool.Exec(ctx, `INSERT INTO `+env.baseline+
		` (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)
		SELECT stream_id, version, event_id, type, schema_version, data, metadata, recorded_at
		FROM `+pgx.Identifier{env.store.Schema(), "events"}.Sanitize()+` WHERE stream_id = $1 ORDER BY position`, stream); err != nil {
		b.Fatal(err)
	}
	if _, err := env.pool.Exec(ctx, "VACUUM ANALYZE "+env.baseline+", "+pgx.Identifier{env.store.Schema(), "events"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
}

// ticketReserved is the Go type of the benchmarks' events.
type ticketReserved struct {
	Concert string `json:"concert"`
	Seat    int    `json:"seat"`
	Price   struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"price"`
}

// BenchmarkLoadStream loads a 1,000-event stream, as a command handler
// does: every event is read and decoded into its Go type through a
// registry. The baseline decodes the same rows with encoding/json.
func BenchmarkLoadStream(b *testing.B) {
	env := newBenchEnv(b)
	env.fill(b, "long-1", 1000)
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[ticketReserved](reg, "TicketReserved")
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for e, err := range env.store.ReadStream(ctx, "long-1", es.StreamQuery{}) {
				if err != nil {
					b.Fatal(err)
				}
				if _, err := reg.Decode(e); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 1000 {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if n, err := env.baselineRead(ctx, "WHERE stream_id = $1 ORDER BY version", "long-1"); err != nil || n != 1000 {
				b.Fatalf("read %d events: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkReadAll reads all of a 10,000-event store and decodes every
// event, as BenchmarkLoadStream does.
func BenchmarkReadAll(b *testing.B) {
	const total = 10_000
	env := newBenchEnv(b)
	env.fill(b, "all-1", total)
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[ticketReserved](reg, "TicketReserved")
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for e, err := range env.store.ReadAll(ctx, es.AllQuery{}) {
				if err != nil {
					b.Fatal(err)
				}
				if _, err := reg.Decode(e); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != total {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			if n, err := env.baselineRead(ctx, "ORDER BY position"); err != nil || n != total {
				b.Fatalf("read %d events: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkAppendGrowth appends one event to a new stream in a store that
// already holds size events (1,000-event appends to 1,000 streams, made
// before the timer starts), to show how an append's cost grows with the
// store. The sizes come from ES_BENCH_GROWTH (comma-separated; default
// 10000), since filling a large store takes a while:
//
//	ES_BENCH_GROWTH=10000,1000000 go test -run '^$' -bench AppendGrowth -benchtime 2000x -timeout 30m ./es/postgres/
func BenchmarkAppendGrowth(b *testing.B) {
	for _, size := range growthSizes(b) {
		b.Run(fmt.Sprintf("stored=%d", size), func(b *testing.B) {
			env := newBenchEnv(b)
			ctx := context.Background()
			for i := 0; i < size; i += 1000 {
				n := min(1000, size-i)
				if _, err := es.Append(ctx, env.store, fmt.Sprintf("fill-%d", (i/1000)%1000), es.AnyVersion, benchEvents(n)...); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := env.pool.Exec(ctx, "VACUUM ANALYZE "+postgres.EventsTable(env.store)); err != nil {
				b.Fatal(err)
			}
			runWriters(b, 1, func(ctx context.Context) error {
				_, err := es.Append(ctx, env.store, fmt.Sprintf("grow-%d", env.seq.Add(1)), es.NoStream, benchEvents(1)...)
				return err
			})
		})
	}
}

// growthSizes reads ES_BENCH_GROWTH.
func growthSizes(b *testing.B) []int {
	v := os.Getenv("ES_BENCH_GROWTH")
	if v == "" {
		return []int{10_000}
	}
	var sizes []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			b.Fatalf("ES_BENCH_GROWTH: %q is not a size", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}
