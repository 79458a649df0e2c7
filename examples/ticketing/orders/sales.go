package orders

import (
	"fmt"
	"hash/fnv"
	"time"

	"esgo.dev/es"
)

// SalesName is the name of the sales process ([SalesProcess]): its
// instances are concerts, in the streams "sales-<concert ID>".
const SalesName = "sales"

// SalesShardName is the name of the process of a concert's sales shards
// ([SalesShardProcess]), in the streams "salesshard-<concert ID>/<shard>"
// (shard in three digits). A category of their own keeps a shard's stream
// from ever being a concert's: the concert "c1/007" has the stream
// "sales-c1/007", shard 7 of "c1" has "salesshard-c1/007"; and among
// shards, the fixed-width suffix tells the concert apart.
const SalesShardName = "salesshard"

// SalesShards is how many shards a concert's orders are recorded in. An
// instance of a process manager is folded from its whole stream for every
// message it handles, so one stream holding every order of a stadium's
// sale would make each PlaceOrder cost as much as all the orders before
// it (a sale of n orders: n²/2 event reads) and make every order conflict
// with every other on one stream. Spread over 256 shards by order ID, a
// 200,000-order sale keeps about 800 orders in a shard, and two orders
// conflict only when they fall in one shard.
const SalesShards = 256

// SalesShard returns the shard of the sales of its concert that records
// the order orderID.
func SalesShard(orderID string) int {
	h := fnv.New32a()
	h.Write([]byte(orderID))
	return int(h.Sum32() % SalesShards)
}

// salesInstance returns the instance ID of a concert's shard.
func salesInstance(concertID string, shard int) string {
	return fmt.Sprintf("%s/%03d", concertID, shard)
}

// StopSales tells one shard of a concert's sales that the concert was
// cancelled: the shard cancels every order it recorded, and those it
// records later. The sales process sends it to every shard when the
// concert's ConcertCancelled comes.
type StopSales struct {
	ConcertID string `json:"concert_id"`
	Shard     int    `json:"shard"`
	Reason    string `json:"reason"`
}

// SalesEvent is an event of a sales stream.
type SalesEvent interface{ isSalesEvent() }

// SaleRecorded: an order of the concert was placed.
type SaleRecorded struct {
	ConcertID string `json:"concert_id"`
	OrderID   string `json:"order_id"`
}

// SalesStopped: the concert was cancelled; every order recorded so far was
// asked to cancel, and later ones are as they come.
type SalesStopped struct {
	ConcertID string `json:"concert_id"`
	Reason    string `json:"reason"`
}

func (SaleRecorded) isSalesEvent() {}
func (SalesStopped) isSalesEvent() {}

// Sales is the state of an instance of the sales process or of a shard: a
// shard's orders in the order they were placed (a concert's instance holds
// none, but for orders recorded before the sales were sharded), and
// whether the concert was cancelled.
type Sales struct {
	ConcertID string
	Orders    []string
	Stopped   bool
	Reason    string
}

// SalesProcess returns the process that stops the sales of a cancelled
// concert: on ConcertCancelled it records that the sales stopped and sends
// StopSales to each of the concert's shards ([SalesShardProcess]), which
// have seen every PlaceOrder of the concert.
//
// Before the sales were sharded, this process recorded the orders itself:
// those recorded in a concert's stream are cancelled from here. A concert
// cancelled before the upgrade has stopped here and sent no StopSales; an
// order of it placed before the cancellation and delivered after the
// upgrade is recorded in a shard that never stops, but its seats are not
// held either (the inventory closed with the concert, in the
// cancellation's own append), so it is rejected, and nothing is charged.
// During a rolling upgrade, a relay of the older release delivers
// StopSales to no subscriber (the bus counts that as delivered): let the
// new release's processes take the relay over before cancelling concerts.
func SalesProcess() es.ProcessManager[Sales, SalesEvent] {
	return es.ProcessManager[Sales, SalesEvent]{
		Name: SalesName,
		Correlate: func(msg any) string {
			if m, ok := msg.(ConcertCancelled); ok {
				return m.ConcertID
			}
			return ""
		},
		Initial: func() Sales { return Sales{} },
		React:   reactSales,
		Evolve:  evolveSales,
	}
}

// SalesShardProcess returns the process that remembers the orders of each
// concert, so that a concert's cancellation reaches every one of them.
//
// Each PlaceOrder (it gets the same message as the order process) is
// recorded in the order's shard of its concert ([SalesShard]); a shard
// sends CancelOrder, with ConcertCancelled set, to each order it recorded
// when StopSales comes. A shard's stream orders the orders it records and
// its stop: an order recorded before the stop is in the list the stop
// cancels, one recorded after is cancelled as it is recorded (its seats
// would not be held anyway: the inventory closes with the concert).
// Reading a read model instead would miss the orders it had not caught up
// with.
func SalesShardProcess() es.ProcessManager[Sales, SalesEvent] {
	return es.ProcessManager[Sales, SalesEvent]{
		Name: SalesShardName,
		Correlate: func(msg any) string {
			switch m := msg.(type) {
			case PlaceOrder:
				return salesInstance(m.ConcertID, SalesShard(m.OrderID))
			case StopSales:
				if m.Shard < 0 || m.Shard >= SalesShards {
					return "" // not a shard of ours
				}
				return salesInstance(m.ConcertID, m.Shard)
			}
			return ""
		},
		Initial: func() Sales { return Sales{} },
		React:   reactSales,
		Evolve:  evolveSales,
	}
}

// evolveSales folds a sales or shard event. Orders grows by append: the
// fold stays linear.
func evolveSales(s Sales, e SalesEvent) Sales {
	switch e := e.(type) {
	case SaleRecorded:
		s.ConcertID = e.ConcertID
		s.Orders = append(s.Orders, e.OrderID)
	case SalesStopped:
		s.ConcertID, s.Stopped, s.Reason = e.ConcertID, true, e.Reason
	}
	return s
}

func reactSales(s Sales, msg any, _ time.Time) (es.Reaction[SalesEvent], error) {
	var r es.Reaction[SalesEvent]
	switch m := msg.(type) {
	case PlaceOrder:
		// A repeated PlaceOrder is recognised by its message ID.
		r.Events = []SalesEvent{SaleRecorded{ConcertID: m.ConcertID, OrderID: m.OrderID}}
		if s.Stopped {
			r.Send = []es.Send{cancelFor(m.OrderID, s.Reason)}
		}
	case ConcertCancelled:
		if s.Stopped {
			return r, nil
		}
		//lint:ignore S1016 an event is not a converted message: their fields must stay free to differ
		r.Events = []SalesEvent{SalesStopped{ConcertID: m.ConcertID, Reason: m.Reason}}
		// Orders recorded in the ledger itself, before the sales were
		// sharded, are cancelled from here.
		for _, id := range s.Orders {
			r.Send = append(r.Send, cancelFor(id, m.Reason))
		}
		for shard := range SalesShards {
			r.Send = append(r.Send, es.Send{
				Message: StopSales{ConcertID: m.ConcertID, Shard: shard, Reason: m.Reason},
				Key:     salesInstance(m.ConcertID, shard),
			})
		}
	case StopSales:
		if s.Stopped {
			return r, nil
		}
		r.Events = []SalesEvent{SalesStopped{ConcertID: m.ConcertID, Reason: m.Reason}}
		for _, id := range s.Orders {
			r.Send = append(r.Send, cancelFor(id, m.Reason))
		}
	}
	return r, nil
}

func cancelFor(orderID, reason string) es.Send {
	msg := "the concert was cancelled"
	if reason != "" {
		msg += ": " + reason
	}
	return es.Send{Message: CancelOrder{OrderID: orderID, Reason: msg, ConcertCancelled: true}, Key: orderID}
}
