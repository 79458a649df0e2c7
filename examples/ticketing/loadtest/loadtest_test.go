package loadtest_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/examples/ticketing/loadtest"
)

// The load test's small sale: every buyer is answered, and the event store
// shows no seat sold twice. Its timings are not checked.
func TestASmallFlashSaleOversellsNothingAndAnswersEveryBuyer(t *testing.T) {
	res, err := loadtest.Run(context.Background(), loadtest.Config{
		DB: filepath.Join(t.TempDir(), "sale.db"), Seats: 150, Buyers: 300, Concurrency: 32,
		Hold: 2 * time.Second, Abandon: 0.2,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.Print(&out)
	t.Log("\n" + out.String())
	if res.Audit.Oversold != 0 || res.Audit.Mismatch != 0 {
		t.Errorf("oversold %d seats; the inventory and the reservations differ by %d", res.Audit.Oversold, res.Audit.Mismatch)
	}
	if res.Started != 300 || res.Unanswered != 0 || !res.OK() {
		t.Errorf("%d buyers started, %d unanswered: %v", res.Started, res.Unanswered, res.Errors)
	}
	if res.SoldOut+res.TurnedAway == 0 || res.Completed == 0 || res.Abandoned == 0 {
		t.Errorf("%d completed, %d sold out at checkout, %d turned away, %d abandoned: the sale should sell out, complete and abandon",
			res.Completed, res.SoldOut, res.TurnedAway, res.Abandoned)
	}
	for tt, n := range res.Audit.Capacity {
		if res.Audit.Confirmed[tt]+res.Audit.Held[tt] > n {
			t.Errorf("%s: %d confirmed and %d held of %d", tt, res.Audit.Confirmed[tt], res.Audit.Held[tt], n)
		}
	}
}

// A sale interrupted (Ctrl-C ends the command's context) starts no more
// buyers, but answers those it started and checks the store.
func TestAnInterruptedSaleAnswersTheBuyersItStartedAndIsChecked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	res, err := loadtest.Run(ctx, loadtest.Config{
		DB: filepath.Join(t.TempDir(), "sale.db"), Seats: 100, Buyers: 1_000_000, Concurrency: 8, Hold: time.Second,
		Progress: progressFunc(func(line string) {
			once.Do(func() { close(started); cancel() })
		}),
	})
	<-started
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Started == 0 || res.Started == 1_000_000 {
		t.Errorf("stopped %v after %d buyers started", res.Stopped, res.Started)
	}
	if !res.OK() {
		t.Errorf("not OK: %d unanswered (%v), oversold %d, mismatch %d", res.Unanswered, res.Errors, res.Audit.Oversold, res.Audit.Mismatch)
	}
}

// progressFunc is an io.Writer that calls f with each progress line.
type progressFunc func(line string)

func (f progressFunc) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }
