package natsjs_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/natsjs"
	"esgo.dev/es/sqlite"
)

// BenchmarkCommitToHandled measures messages from the commit that
// enqueues them to the commit of their handling in the consumer's inbox,
// through JetStream and, for comparison, through the in-process es.Bus:
// the relay (4 workers, polling every 10ms) delivers to the publisher;
// with JetStream, a natsjs.Subscriber hands the messages to the handler,
// with the bus the bus does. On the memory store and on SQLite (a file,
// fsync on every commit). A producer commits b.N messages over 256 keys:
// "flood" in transactions of 10, as fast as the store lets it, for the
// throughput; "paced" one message at a time, pacedRate a second, for the
// latency of a message on a path without a queue. It reports the
// throughput (msgs/s, from the first commit to the last handling) and
// the latency of a message, commit to handled (p50-ms, p99-ms).
//
//	go test -run '^$' -bench CommitToHandled -benchtime 5000x ./es/natsjs/
func BenchmarkCommitToHandled(b *testing.B) {
	srv := startServer(b)
	js := connect(b, srv.URL())
	stores := []struct {
		name string
		open func(b *testing.B) (es.Outbox, es.Inbox)
	}{
		{"memory", func(b *testing.B) (es.Outbox, es.Inbox) {
			s := memory.New(memory.Config{})
			return s, s.Inbox()
		}},
		{"sqlite", func(b *testing.B) (es.Outbox, es.Inbox) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "es.db"), sqlite.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s, s.Inbox()
		}},
	}
	run := 0
	for _, load := range []string{"flood", "paced"} {
		for _, st := range stores {
			for _, transport := range []string{"bus", "jetstream"} {
				b.Run(load+"/"+st.name+"/"+transport, func(b *testing.B) {
					run++
					outbox, inbox := st.open(b)
					ctx, cancel := context.WithCancel(b.Context())
					defer cancel()
					ids := make([]string, b.N)
					index := make(map[string]int, b.N) // read-only once the timer starts
					for i := range ids {
						ids[i] = es.NewID()
						index[ids[i]] = i
					}
					committed := make([]time.Time, b.N)
					handledAt := make([]time.Time, b.N)
					var left atomic.Int64
					left.Store(int64(b.N))
					done := make(chan struct{})
					timed := inboxFunc(func(ctx context.Context, consumer, id string, fn func(context.Context) error) (bool, error) {
						ran, err := inbox.Handle(ctx, consumer, id, fn)
						if ran && err == nil {
							handledAt[index[id]] = time.Now()
							if left.Add(-1) == 0 {
								close(done)
							}
						}
						return ran, err
					})
					noop := func(context.Context, es.Message) error { return nil }
					var pub es.Publisher
					switch transport {
					case "bus":
						bus := es.NewBus()
						bus.Subscribe("bench.Note", func(ctx context.Context, m es.Message) error {
							_, err := timed.Handle(ctx, "bench", m.ID, func(ctx context.Context) error { return noop(ctx, m) })
							return err
						})
						pub = bus
					case "jetstream":
						stream, subject := "BENCH"+strconv.Itoa(run), "bench"+strconv.Itoa(run)
						p, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{Stream: stream, Subject: subject})
						if err != nil {
							b.Fatal(err)
						}
						pub = p
						sub := natsjs.NewSubscriber(js, "bench", timed, noop, natsjs.SubscriberConfig{Stream: stream, Subject: subject})
						go func() { _ = sub.Run(ctx) }()
						defer func() { _ = js.DeleteStream(context.Background(), stream) }()
						// Not timed: the subscriber setting up its consumers.
						for {
							st, err := js.Stream(ctx, stream)
							if err != nil {
								b.Fatal(err)
							}
							if info, err := st.Info(ctx); err == nil && info.State.Consumers == es.OutboxBuckets {
								break
							}
							time.Sleep(10 * time.Millisecond)
						}
					}
					relay := es.NewRelay(outbox, pub, es.RelayConfig{Workers: 4, PollInterval: 10 * time.Millisecond})
					go func() { _ = relay.Run(ctx) }()
					b.ResetTimer()
					start := time.Now()
					batch, tick := 10, time.Duration(0)
					if load == "paced" {
						batch, tick = 1, time.Second/pacedRate
					}
					next := start
					for i := 0; i < b.N; {
						if tick > 0 {
							next = next.Add(tick)
							time.Sleep(time.Until(next))
						}
						var enq es.Enqueue
						first := i
						for ; i < b.N && i-first < batch; i++ {
							enq.Messages = append(enq.Messages, es.Message{ID: ids[i],
								Key: "key-" + strconv.Itoa(i%256), Type: "bench.Note", SchemaVersion: 1, Data: []byte(`{}`)})
						}
						if _, err := outbox.AppendEnqueue(ctx, enq); err != nil {
							b.Fatal(err)
						}
						now := time.Now()
						for j := first; j < i; j++ {
							committed[j] = now
						}
					}
					select {
					case <-done:
					case <-time.After(5 * time.Minute):
						b.Fatalf("%d of %d messages handled", int64(b.N)-left.Load(), b.N)
					}
					elapsed := time.Since(start)
					b.StopTimer()
					lat := make([]time.Duration, b.N)
					for i := range lat {
						lat[i] = max(0, handledAt[i].Sub(committed[i]))
					}
					slices.Sort(lat)
					ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
					b.ReportMetric(ms(lat[b.N/2]), "p50-ms")
					b.ReportMetric(ms(lat[min(b.N-1, b.N*99/100)]), "p99-ms")
				})
			}
		}
	}
}

// pacedRate is the rate of the paced producer, in messages per second:
// below what every store and transport here handles, so that the latency
// is the path's, not a queue's.
const pacedRate = 200

// BenchmarkSubscriberDrain measures the subscriber alone: b.N messages
// already in the stream, handled through a memory inbox by a handler that
// does nothing, over one key (one bucket: the ceiling of a single key,
// one message in flight) and over 256 keys (all 64 buckets). It reports
// msgs/s from the first handling to the last.
//
//	go test -run '^$' -bench SubscriberDrain -benchtime 20000x ./es/natsjs/
func BenchmarkSubscriberDrain(b *testing.B) {
	srv := startServer(b)
	js := connect(b, srv.URL())
	run := 0
	for _, keys := range []int{1, 256} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			run++
			ctx, cancel := context.WithCancel(b.Context())
			defer cancel()
			stream, subject := "DRAIN"+strconv.Itoa(run), "drain"+strconv.Itoa(run)
			pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{Stream: stream, Subject: subject})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = js.DeleteStream(context.Background(), stream) }()
			for i := range b.N {
				if err := pub.Publish(ctx, note("key-"+strconv.Itoa(i%keys), i)); err != nil {
					b.Fatal(err)
				}
			}
			var (
				left  atomic.Int64
				first atomic.Pointer[time.Time]
			)
			left.Store(int64(b.N))
			done := make(chan struct{})
			b.ResetTimer()
			sub := natsjs.NewSubscriber(js, "drain", memory.New(memory.Config{}).Inbox(), func(context.Context, es.Message) error {
				now := time.Now()
				first.CompareAndSwap(nil, &now)
				if left.Add(-1) == 0 {
					close(done)
				}
				return nil
			}, natsjs.SubscriberConfig{Stream: stream, Subject: subject})
			go func() { _ = sub.Run(ctx) }()
			<-done
			b.StopTimer()
			if b.N > 1 {
				b.ReportMetric(float64(b.N-1)/time.Since(*first.Load()).Seconds(), "msgs/s")
			}
		})
	}
}
