package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// The benchmarks compare the store with the least SQLite can do for the
// same work: plain INSERTs of the same payload into a table with no
// secondary index, each in its own IMMEDIATE transaction, on a file with
// the same settings (WAL, the same synchronous, one writer connection).
//
//	go test -run '^$' -bench . -benchtime 2s ./es/sqlite

const benchData = `{"sku":"A-1","qty":2,"price":{"amount":1999,"currency":"PLN"},"note":"benchmark"}`

func benchEvent() es.EventData {
	return es.EventData{
		ID: es.NewID(), Type: "ItemAdded", SchemaVersion: 1, Data: []byte(benchData),
		Metadata: es.Metadata{CorrelationID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
	}
}

func benchStore(b *testing.B, sync sqlite.Synchronous) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Config{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// baseline is a plain table on its own file, opened like the store's
// writer.
type baseline struct {
	db     *sql.DB
	insert *sql.Stmt
}

func openBaseline(b *testing.B, sync string) *baseline {
	b.Helper()
	path := filepath.Join(b.TempDir(), "baseline.db")
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", sync)
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: path}).String()+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE plain (
		position INTEGER PRIMARY KEY, event_id TEXT NOT NULL, stream_id TEXT NOT NULL,
		type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT, recorded_at TEXT NOT NULL) STRICT`); err != nil {
		b.Fatal(err)
	}
	insert, err := db.Prepare(`INSERT INTO plain (event_id, stream_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = insert.Close() })
	return &baseline{db: db, insert: insert}
}

// openIndexedBaseline is openBaseline with as many indexes as es_events
// has (a unique event ID, stream, type, and an expression standing in for
// the category), to tell the cost of the indexes from the rest.
func openIndexedBaseline(b *testing.B, sync string) *baseline {
	p := openBaseline(b, sync)
	if _, err := p.db.Exec(`CREATE UNIQUE INDEX plain_event_id ON plain (event_id);
		CREATE INDEX plain_stream ON plain (stream_id, position);
		CREATE INDEX plain_type ON plain (type, position);
		CREATE INDEX plain_category ON plain (substr(stream_id, 1, 4), position)`); err != nil {
		b.Fatal(err)
	}
	return p
}

// insertTx inserts n rows in one transaction.
func (p *baseline) insertTx(ctx context.Context, stream string, n int) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, p.insert)
	for range n {
		e := benchEvent()
		if _, err := st.ExecContext(ctx, e.ID, stream, e.Type, string(e.Data),
			`{"correlation_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}`,
			time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// parallel runs op b.N times spread over goroutines.
func parallel(b *testing.B, goroutines int, op func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range goroutines {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAppend: one-event appends, each to a new stream; "indexed" is
// the baseline with as many indexes as the store.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, sc := range []struct {
		name string
		sync sqlite.Synchronous
	}{{"full", sqlite.SyncFull}, {"normal", sqlite.SyncNormal}} {
		for _, g := range []int{1, 8} {
			b.Run(fmt.Sprintf("sync=%s/store/goroutines=%d", sc.name, g), func(b *testing.B) {
				s := benchStore(b, sc.sync)
				parallel(b, g, func(i int64) error {
					_, err := es.Append(ctx, s, fmt.Sprintf("cart-%d", i), es.NoStream, benchEvent())
					return err
				})
			})
			b.Run(fmt.Sprintf("sync=%s/baseline/goroutines=%d", sc.name, g), func(b *testing.B) {
				p := openBaseline(b, sc.name)
				parallel(b, g, func(i int64) error { return p.insertTx(ctx, fmt.Sprintf("cart-%d", i), 1) })
			})
			if g == 1 {
				b.Run(fmt.Sprintf("sync=%s/indexed/goroutines=%d", sc.name, g), func(b *testing.B) {
					p := openIndexedBaseline(b, sc.name)
					parallel(b, g, func(i int64) error { return p.insertTx(ctx, fmt.Sprintf("cart-%d", i), 1) })
				})
			}
		}
	}
}

// BenchmarkAppend100: 100 events appended to one stream in one call;
// "indexed" is the baseline with as many indexes as the store.
func BenchmarkAppend100(b *testing.B) {
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, sqlite.SyncFull)
		evs := make([]es.EventData, 100)
		v := int64(0)
		for b.Loop() {
			for j := range evs {
				evs[j] = benchEvent()
			}
			if _, err := es.Append(ctx, s, "cart-1", es.Exact(v), evs...); err != nil {
				b.Fatal(err)
			}
			v += 100
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
	})
	for _, name := range []string{"baseline", "indexed"} {
		b.Run(name, func(b *testing.B) {
			open := openBaseline
			if name == "indexed" {
				open = openIndexedBaseline
			}
			p := open(b, "full")
			for b.Loop() {
				if err := p.insertTx(ctx, "cart-1", 100); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
		})
	}
}

// BenchmarkReadStream1000 loads a 1,000-event stream.
func BenchmarkReadStream1000(b *testing.B) {
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, sqlite.SyncNormal)
		fill(b, s, 1, 1000)
		for b.Loop() {
			n := 0
			for _, err := range s.ReadStream(ctx, "cart-0", es.StreamQuery{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 1000 {
				b.Fatalf("read %d events", n)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		p := openBaseline(b, "normal")
		if err := p.insertTx(ctx, "cart-0", 1000); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if n := p.selectAll(b, ctx); n != 1000 {
				b.Fatalf("read %d rows", n)
			}
		}
	})
}

// BenchmarkReadAll reads 10,000 events of 100 streams in global order.
func BenchmarkReadAll(b *testing.B) {
	ctx := context.Background()
	const streams, each = 100, 100
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, sqlite.SyncNormal)
		fill(b, s, streams, each)
		for b.Loop() {
			n := 0
			for _, err := range s.ReadAll(ctx, es.AllQuery{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != streams*each {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*streams*each), "ns/event")
	})
	b.Run("baseline", func(b *testing.B) {
		p := openBaseline(b, "normal")
		for i := range streams {
			if err := p.insertTx(ctx, fmt.Sprintf("cart-%d", i), each); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			if n := p.selectAll(b, ctx); n != streams*each {
				b.Fatalf("read %d rows", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*streams*each), "ns/event")
	})
}

// fill appends each events to each of streams streams.
func fill(b *testing.B, s *sqlite.Store, streams, each int) {
	b.Helper()
	for i := range streams {
		evs := make([]es.EventData, each)
		for j := range evs {
			evs[j] = benchEvent()
		}
		if _, err := es.Append(context.Background(), s, fmt.Sprintf("cart-%d", i), es.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
	}
}

// selectAll reads every row of the plain table into memory, scanning the
// same columns the store decodes.
func (p *baseline) selectAll(b *testing.B, ctx context.Context) int {
	rows, err := p.db.QueryContext(ctx, `SELECT position, event_id, stream_id, type, data, metadata, recorded_at FROM plain ORDER BY position`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			pos                 int64
			id, stream, typ, at string
			data, md            []byte
		)
		if err := rows.Scan(&pos, &id, &stream, &typ, &data, &md, &at); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkAppendGrowth appends one event to a new stream in a store that
// already holds size events (1,000-event appends to 1,000 streams, made
// before the timer starts), to show how an append's cost grows with the
// file. The sizes come from ES_BENCH_GROWTH (comma-separated; default
// 10000), since filling a large store takes a while:
//
//	ES_BENCH_GROWTH=10000,1000000 go test -run '^$' -bench AppendGrowth -benchtime 2000x -timeout 30m ./es/sqlite
func BenchmarkAppendGrowth(b *testing.B) {
	ctx := context.Background()
	for _, size := range growthSizes(b) {
		b.Run(fmt.Sprintf("stored=%d", size), func(b *testing.B) {
			s := benchStore(b, sqlite.SyncFull)
			for i := 0; i < size; i += 1000 {
				evs := make([]es.EventData, min(1000, size-i))
				for j := range evs {
					evs[j] = benchEvent()
				}
				if _, err := es.Append(ctx, s, fmt.Sprintf("fill-%d", (i/1000)%1000), es.AnyVersion, evs...); err != nil {
					b.Fatal(err)
				}
			}
			parallel(b, 1, func(i int64) error {
				_, err := es.Append(ctx, s, fmt.Sprintf("grow-%d", i), es.NoStream, benchEvent())
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
