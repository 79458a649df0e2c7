package sqlite_test

import (
	"context"
	"encoding/json"
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
		n, err := k.attempt(ctx)
		if err != nil {
			return err
		}
		if _, err := log.Write([]byte(m.ID + "\n")); err != nil {
			return err
		}
		k.maybe(n, false)
		if err := process.Handle(ctx, m); err != nil {
			return err
		}
		k.maybe(n, true)
		time.Sleep(delay) // widens the window before the relay records the delivery
		return nil
	})
	bus.Subscribe("seats.ReserveSeats", func(ctx context.Context, m es.Message) error {
		n, err := k.attempt(ctx)
		if err != nil {
			return err
		}
		if _, err := log.Write([]byte(m.ID + "\n")); err != nil {
			return err
		}
		k.maybe(n, false)
		v, err := es.DecodeMessage(reg, m)
		if err != nil {
			return err
		}
		cmd := v.(reserveSeats)
		if _, err := commands.Handle(ctx, m.ID, "seats-"+cmd.OrderID, cmd); err != nil {
			return err
		}
		k.maybe(n, true)
		time.Sleep(delay) // widens the window before the relay records the delivery
		return nil
	})
	return bus
}

// TestProcessManagerCrash runs relay, bus, process handler and command
// handler in a child process killed again and again (see relayLives):
// from outside, and by itself at chosen points (before a handler runs;
// after the process reacted, before its command went out; after the
// command was applied, before its delivery was recorded). No command is
// lost and none applied twice: every order's process stream and seats
// stream hold one event.
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
	kills, selfKills := relayLives(t, s,
		childConfig{DB: path, Mode: "process", Attempts: attempts, Workers: 2, Delay: 3 * time.Millisecond}, 10, 200, 100)

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
	if total == len(log) {
		t.Fatalf("%d deliveries of %d messages: the kills tested too little", total, len(log))
	}
	placedAgain := 0 // orders whose OrderPlaced was delivered again, after a kill
	for _, m := range placed {
		if log[m.ID] > 1 {
			placedAgain++
		}
	}
	t.Logf("%d kills (%d by the child itself, each with messages left); %d deliveries of %d messages (%d redeliveries, %d of OrderPlaced); every order reserved once",
		kills, selfKills, total, len(log), total-len(log), placedAgain)
}

// TestDeadlineCrash schedules 1,000 deadlines, each a second or more
// ahead, cancels a random fifth of them, and has them delivered by a
// relay in a child process killed and restarted while they fall due.
// Each deadline not cancelled takes effect exactly once and not before
// its time; the cancelled ones never.
//
// The relay runs from the start, so deadlines fall due under it however
// long the scheduling takes. A deadline counts as cancelled in time if
// the cancellation committed before it fell due: the relay cannot have
// fetched it before. (One cancelled later, which a slow machine could
// cause, may have been delivered, once at most.)
func TestDeadlineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const total, batch, keys, minKills = 1000, 50, 50, 3
	const spread = 3 * time.Second
	ctx := context.Background()
	s, path := openOutboxFile(t)

	var (
		scheduled = make(chan struct{}) // closed when the variables below are set
		msgs      []es.Message
		inTime    = map[string]bool{} // cancelled before due
		late      = map[string]bool{} // cancelled when due, or after
		last      time.Time
	)
	go func() {
		defer close(scheduled)
		lead := time.Second
		for len(msgs) < total {
			began := time.Now()
			var enq es.Enqueue
			for range batch {
				key := fmt.Sprintf("key-%02d", rand.IntN(keys))
				data, _ := json.Marshal(numbered{Key: key, N: len(msgs)})
				m := es.Message{ID: es.NewID(), Key: key, Type: "test.Numbered", SchemaVersion: 1, Data: data,
					DeliverAt: began.Add(lead + rand.N(spread))}
				if m.DeliverAt.After(last) {
					last = m.DeliverAt
				}
				msgs = append(msgs, m)
				enq.Messages = append(enq.Messages, m)
			}
			if _, err := s.AppendEnqueue(ctx, enq); err != nil {
				t.Error(err)
				return
			}
			var cancel es.Enqueue
			for _, m := range enq.Messages {
				if rand.IntN(5) == 0 {
					cancel.Cancel = append(cancel.Cancel, m.ID)
				}
			}
			if _, err := s.AppendEnqueue(ctx, cancel); err != nil {
				t.Error(err)
				return
			}
			cancelled := time.Now()
			for _, m := range enq.Messages {
				if !slices.Contains(cancel.Cancel, m.ID) {
					continue
				}
				if m.DeliverAt.After(cancelled) {
					inTime[m.ID] = true
				} else {
					late[m.ID] = true
				}
			}
			// The next batch is scheduled well ahead of its own cancellation.
			lead = max(time.Second, 10*time.Since(began))
		}
	}()
	defer func() { <-scheduled }()

	// A child lives a while (0.3-1 s, and twice as long as it took to
	// start) from its first delivery attempt, and for 20 attempts at
	// least; one in three kills itself at a chosen attempt (50-250)
	// before the effect, one in three after it. Any ends once it lived
	// that while and nothing is due: a deadline not yet due is no work.
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	due := func() int {
		var n int
		if err := s.DB().QueryRow(`SELECT count(*) FROM es_outbox WHERE delivered_at IS NULL AND cancelled_at IS NULL
			AND (deliver_at IS NULL OR deliver_at <= ?)`, time.Now().UnixNano()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kills, selfKills := 0, 0
lives:
	for turn := rand.IntN(3); ; turn++ {
		select {
		case <-scheduled:
			if t.Failed() {
				t.FailNow()
			}
			n, err := s.Backlog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if kills >= minKills && time.Now().After(last) && n == 0 {
				break lives
			}
		default:
		}
		cfg := childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 2}
		switch turn % 3 {
		case 0:
			cfg.KillAt = 50 + rand.Int64N(200)
		case 1:
			cfg.KillAt, cfg.AfterEffect = 50+rand.Int64N(200), true
		}
		from := countAttempts(t, attempts)
		var working time.Time // the first attempt seen
		born, span := time.Now(), time.Duration(300+rand.IntN(700))*time.Millisecond
		if startRelayChild(t, cfg).killWhen(t, func() bool {
			if cfg.KillAt == 0 {
				n := countAttempts(t, attempts) - from
				if working.IsZero() && n > 0 {
					working = time.Now()
				}
				// At least twice as long as it took to start: the relay is
				// up most of the time, on a slow machine too.
				if n >= 20 && time.Since(working) > max(span, 2*working.Sub(born)) {
					return true
				}
			}
			return time.Since(born) > span && due() == 0
		}) {
			selfKills++
		}
		kills++
	}
	t.Logf("%d kills, %d of them by the child itself; %d deadlines cancelled in time, %d late", kills, selfKills, len(inTime), len(late))
	if len(inTime) == 0 {
		t.Fatal("no cancellation came in time")
	}
	// Deadlines fire in the order they fall due, not the order written.
	deliverAt := map[string]time.Time{}
	for _, m := range msgs {
		deliverAt[m.ID] = m.DeliverAt
	}
	took := map[string]int{}
	var lateness []time.Duration
	for _, e := range readEffects(t, s) {
		took[e.id]++
		if inTime[e.id] {
			t.Fatalf("deadline %s, cancelled in time, took effect", e.id)
		}
		if e.at.Before(deliverAt[e.id]) {
			t.Fatalf("deadline %s took effect at %v, %v before its time", e.id, e.at, deliverAt[e.id].Sub(e.at))
		}
		lateness = append(lateness, e.at.Sub(deliverAt[e.id]))
	}
	log := readAttempts(t, attempts)
	for id := range log {
		if inTime[id] {
			t.Fatalf("deadline %s, cancelled in time, was delivered", id)
		}
	}
	want := 0
	for _, m := range msgs {
		switch {
		case inTime[m.ID]:
		case late[m.ID]:
			if took[m.ID] > 1 {
				t.Fatalf("deadline %s, cancelled late, took effect %d times", m.ID, took[m.ID])
			}
		default:
			want++
			if took[m.ID] != 1 || log[m.ID] == 0 {
				t.Fatalf("deadline %s took effect %d times, after %d attempts", m.ID, took[m.ID], log[m.ID])
			}
		}
	}
	if len(took) > want+len(late) {
		t.Fatalf("effects of %d messages, want at most %d", len(took), want+len(late))
	}
	slices.Sort(lateness)
	t.Logf("%d deadlines fired once each, %d cancelled in time never; lateness p50 %v, p99 %v, max %v",
		want, len(inTime), lateness[len(lateness)/2], lateness[len(lateness)*99/100], lateness[len(lateness)-1])
}

// TestRelayLockerProcesses runs the relay, four workers with
// RelayConfig.Locker = store.Locker(), in two processes at once, and kills
// one of them half-way: once they applied a chosen number of effects,
// within a budget that keeps them from finishing, the one that applied
// the latest. Every message takes effect once, in order per key, both
// processes delivered, and each bucket passed from one to the other at
// most twice (when they shared the groups out, and at the kill).
func TestRelayLockerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const budget = 200
	s, path := openOutboxFile(t)
	msgs := enqueueNumbered(t, s, 1000, 40, nil)
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	cfg := childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 4, Lock: true, Delay: 2 * time.Millisecond, Budget: budget}
	children := map[int]*relayChild{}
	for range 2 {
		c := startRelayChild(t, cfg)
		children[c.cmd.Process.Pid] = c
	}
	// Each lease is held by one of them, and between them they make at
	// least budget attempts, each a first delivery: the effects reach any
	// target up to the budget.
	target := 1 + rand.IntN(budget)
	var killed int
	for limit := time.Now().Add(3 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		effects := readEffects(t, s)
		if len(effects) >= target {
			// Kill a process that delivered: its buckets must pass to the other.
			killed = effects[len(effects)-1].pid
			break
		}
		if time.Now().After(limit) {
			t.Fatalf("%d effects after 3 minutes, waiting for %d", len(effects), target)
		}
	}
	if children[killed] == nil {
		t.Fatalf("effects applied by process %d, not one of the relays", killed)
	}
	children[killed].killAfter(t, 0)
	if n, err := s.Backlog(context.Background()); err != nil || n == 0 {
		t.Fatalf("backlog %d (%v) after the kill: the budget failed", n, err)
	}
	for pid, c := range children {
		if pid != killed {
			c.release(t)
		}
	}
	waitForBacklog(t, s, 0, 3*time.Minute)

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
	// The relays share the bucket groups: a bucket passes at most once
	// from the first relay to take every group to the second (when it
	// sees it), and once more at the kill. TestRelaySharing checks that
	// no bucket is ever served by two relays at once.
	for b, seg := range segments {
		if len(seg) > 3 {
			t.Fatalf("bucket %d: effects applied by processes %v in turn (killed: %d): handed over too often", b, seg, killed)
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
