package sqlite_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// A small shop for the process-manager crash test: an order placed makes
// the reservation process send a ReserveSeats command, which the seats
// module's command handler applies to the stream seats-<order ID>.

type (
	orderPlaced struct {
		OrderID string `json:"order_id"`
		Seats   int    `json:"seats"`
	}
	reserveSeats struct {
		OrderID string `json:"order_id"`
		Seats   int    `json:"seats"`
	}
	// reservationRequested is the process's own event.
	reservationRequested struct {
		OrderID string `json:"order_id"`
	}
	// seatsReserved is the seats module's event.
	seatsReserved struct {
		OrderID string `json:"order_id"`
		Seats   int    `json:"seats"`
	}
)

func shopRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[orderPlaced](reg, "shop.OrderPlaced")
	es.MustRegister[reserveSeats](reg, "seats.ReserveSeats")
	es.MustRegister[reservationRequested](reg, "reservation.Requested")
	es.MustRegister[seatsReserved](reg, "seats.Reserved")
	return reg
}

// reservation asks for the seats of a placed order, once per order.
var reservation = es.ProcessManager[bool, reservationRequested]{
	Name: "reservation",
	Correlate: func(msg any) string {
		if m, ok := msg.(orderPlaced); ok {
			return m.OrderID
		}
		return ""
	},
	Initial: func() bool { return false },
	React: func(requested bool, msg any, _ time.Time) (es.Reaction[reservationRequested], error) {
		m := msg.(orderPlaced)
		if requested {
			return es.Reaction[reservationRequested]{}, nil
		}
		return es.Reaction[reservationRequested]{
			Events: []reservationRequested{{OrderID: m.OrderID}},
			Send:   []es.Send{{Message: reserveSeats(m)}},
		}, nil
	},
	Evolve: func(bool, reservationRequested) bool { return true },
}

// seats reserves whatever it is asked to, every time: only the command
// ID keeps a redelivered command from reserving twice.
var seats = es.Decider[int, reserveSeats, seatsReserved]{
	Initial: func() int { return 0 },
	Decide: func(_ int, c reserveSeats) ([]seatsReserved, error) {
		return []seatsReserved{{OrderID: c.OrderID, Seats: c.Seats}}, nil
	},
	Evolve: func(n int, e seatsReserved) int { return n + e.Seats },
}

// shopBus wires the process handler and the command handler to a bus.
// Each handler logs its attempts and may kill the process after it
// succeeded: between handling OrderPlaced and the relay dispatching the
// command it sent, or between applying the command and the relay
// recording its delivery.
func shopBus(s *sqlite.Store, log io.Writer, k *killer, delay time.Duration) *es.Bus {
	reg := shopRegistry()
	process := es.NewProcessHandler(s, reg, reservation, es.ProcessConfig{})
	commands := es.NewCommandHandler(s, reg, seats, es.HandlerConfig{})
	bus := es.NewBus()
	bus.Subscribe("shop.OrderPlaced", func(ctx context.Context, m es.Message) error {
		n := k.attempt()
		if _, err := log.Write([]byte(m.ID + "\n")); err != nil {
			return err
		}
		k.maybe(n, 0)
		if err := process.Handle(ctx, m); err != nil {
			return err
		}
		k.maybe(n, 1)
		time.Sleep(delay) // widens the window before the relay records the delivery
		return nil
	})
	bus.Subscribe("seats.ReserveSeats", func(ctx context.Context, m es.Message) error {
		n := k.attempt()
		if _, err := log.Write([]byte(m.ID + "\n")); err != nil {
			return err
		}
		k.maybe(n, 0)
		v, err := es.DecodeMessage(reg, m)
		if err != nil {
			return err
		}
		cmd := v.(reserveSeats)
		if _, err := commands.Handle(ctx, m.ID, "seats-"+cmd.OrderID, cmd); err != nil {
			return err
		}
		k.maybe(n, 1)
		time.Sleep(delay) // widens the window before the relay records the delivery
		return nil
	})
	return bus
}

// TestProcessManagerCrash runs relay, bus, process handler and command
// handler in a child process killed at random moments and at chosen
// points (after the process reacted, before its command went out; after
// the command was applied, before its delivery was recorded), restarted
// until everything is delivered. No command is lost and none applied
// twice: every order's process stream and seats stream hold one event.
func TestProcessManagerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	s, path := openOutboxFile(t)
	reg := shopRegistry()
	const orders = 500
	var placed []es.Message
	for i := range orders {
		id := fmt.Sprintf("o%03d", i)
		m, err := es.NewMessage(reg, id, orderPlaced{OrderID: id, Seats: 1 + i%4})
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, m)
	}
	for chunk := range slices.Chunk(placed, 100) {
		if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	kills, selfKills, busyKills := 0, 0, 0
	for round := 0; ; round++ {
		if round == 80 {
			t.Fatal("the backlog is not empty after 80 rounds")
		}
		// Two children in three kill themselves at a chosen point; the
		// others are killed from here at a random moment.
		cfg := childConfig{DB: path, Mode: "process", Attempts: attempts, Workers: 2, Delay: 3 * time.Millisecond}
		if round%3 != 2 {
			cfg.KillAt = 10 + rand.Int64N(40)
		}
		c := startRelayChild(t, cfg)
		if c.killAfter(t, time.Duration(100+rand.IntN(300))*time.Millisecond) {
			selfKills++
		}
		kills++
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			busyKills++
		}
		if n == 0 && kills >= 10 {
			break
		}
	}

	for _, m := range placed {
		id := m.Key
		for _, stream := range []string{"reservation-" + id, "seats-" + id} {
			evs, err := es.Collect(s.ReadStream(ctx, stream, es.StreamQuery{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 {
				t.Fatalf("%s holds %d events, want 1", stream, len(evs))
			}
		}
	}
	log := readAttempts(t, attempts)
	total := 0
	for _, n := range log {
		total += n
	}
	if len(log) != 2*orders {
		t.Fatalf("%d messages were delivered, want %d orders and %d commands", len(log), orders, orders)
	}
	if busyKills < 5 || total == len(log) {
		t.Fatalf("%d kills with messages left, %d deliveries of %d messages: the kills tested too little", busyKills, total, len(log))
	}
	placedAgain := 0 // orders whose OrderPlaced was delivered again, after a kill
	for _, m := range placed {
		if log[m.ID] > 1 {
			placedAgain++
		}
	}
	t.Logf("%d kills (%d by the child itself, %d with messages left); %d deliveries of %d messages (%d redeliveries, %d of OrderPlaced); every order reserved once",
		kills, selfKills, busyKills, total, len(log), total-len(log), placedAgain)
}

// TestDeadlineCrash schedules 1,000 deadlines over the next few seconds,
// cancels a random fifth of them before they fall due, and runs the relay
// in a child process killed and restarted while they fall due. Each
// deadline not cancelled takes effect exactly once and not before its
// time; the cancelled ones never.
func TestDeadlineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	s, path := openOutboxFile(t)
	start := time.Now().Add(time.Second)
	const spread = 3 * time.Second
	msgs := enqueueNumbered(t, s, 1000, 50, func(int) time.Time { return start.Add(rand.N(spread)) })
	var cancel []string
	var want []es.Message
	cancelled := map[string]bool{}
	for _, m := range msgs {
		if rand.IntN(5) == 0 {
			cancel = append(cancel, m.ID)
			cancelled[m.ID] = true
		} else {
			want = append(want, m)
		}
	}
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Cancel: cancel}); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(start) {
		t.Fatal("the cancellations committed after the first deadline: the test machine is too slow")
	}

	attempts := filepath.Join(t.TempDir(), "attempts.log")
	kills := 0
	for {
		c := startRelayChild(t, childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 2})
		c.killAfter(t, time.Duration(300+rand.IntN(700))*time.Millisecond)
		kills++
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && kills >= 3 {
			break
		}
		if time.Since(start) > spread+30*time.Second {
			t.Fatalf("%d deadlines still pending 30s after the last fell due", n)
		}
	}

	// Deadlines fire in the order they fall due, not the order written.
	effects := checkExactlyOnce(t, s, want, false)
	deliverAt := map[string]time.Time{}
	for _, m := range msgs {
		deliverAt[m.ID] = m.DeliverAt
	}
	var late []time.Duration
	for _, e := range effects {
		if cancelled[e.id] {
			t.Fatalf("cancelled deadline %s took effect", e.id)
		}
		if e.at.Before(deliverAt[e.id]) {
			t.Fatalf("deadline %s took effect at %v, %v before its time", e.id, e.at, deliverAt[e.id].Sub(e.at))
		}
		late = append(late, e.at.Sub(deliverAt[e.id]))
	}
	for id := range readAttempts(t, attempts) {
		if cancelled[id] {
			t.Fatalf("cancelled deadline %s was delivered", id)
		}
	}
	slices.Sort(late)
	t.Logf("%d kills; %d deadlines fired once each, %d cancelled never; lateness p50 %v, p99 %v, max %v",
		kills, len(want), len(cancel), late[len(late)/2], late[len(late)*99/100], late[len(late)-1])
}

// TestRelayLockerProcesses runs the relay, four workers with
// RelayConfig.Locker = store.Locker(), in two processes at once, and kills one
// of them half-way. Each bucket's effects come from one process at a
// time (the killed one, then its successor), every message takes effect
// once, in order per key, and both processes delivered.
func TestRelayLockerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, path := openOutboxFile(t)
	msgs := enqueueNumbered(t, s, 1000, 40, nil)
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	cfg := childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 4, Lock: true, Delay: 2 * time.Millisecond}
	children := map[int]*relayChild{}
	for range 2 {
		c := startRelayChild(t, cfg)
		children[c.cmd.Process.Pid] = c
	}
	waitForBacklog(t, s, int64(len(msgs))/2, 30*time.Second)
	// Kill a process that delivered: its buckets must pass to the other.
	var killed int
	for _, e := range readEffects(t, s) {
		killed = e.pid
	}
	if children[killed] == nil {
		t.Fatalf("effects applied by process %d, not one of the relays", killed)
	}
	children[killed].killAfter(t, 0)
	waitForBacklog(t, s, 0, 30*time.Second)

	effects := checkExactlyOnce(t, s, msgs, true)
	pids := map[int]bool{}
	segments := map[int][]int{} // bucket -> the processes that applied its effects, in turn
	for _, e := range effects {
		pids[e.pid] = true
		if seg := segments[e.bucket]; len(seg) == 0 || seg[len(seg)-1] != e.pid {
			segments[e.bucket] = append(seg, e.pid)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("effects applied by %d processes, want both", len(pids))
	}
	for b, seg := range segments {
		if len(seg) > 2 || len(seg) == 2 && seg[0] != killed {
			t.Fatalf("bucket %d: effects applied by processes %v in turn (killed: %d): two active workers", b, seg, killed)
		}
	}
	var survivor int
	for pid, c := range children {
		if pid != killed {
			survivor = pid
			c.killAfter(t, 0)
		}
	}
	n := 0
	for _, e := range effects {
		if e.pid == survivor {
			n++
		}
	}
	t.Logf("%d messages over %d buckets; process %d applied %d before it was killed, process %d the other %d",
		len(msgs), len(segments), killed, len(msgs)-n, survivor, n)
}
