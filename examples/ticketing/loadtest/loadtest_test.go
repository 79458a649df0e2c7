package loadtest_test

import (
	"context"
	"path/filepath"
	"strings"
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
	if res.SoldOut == 0 || res.Completed == 0 || res.Abandoned == 0 {
		t.Errorf("%d completed, %d sold out, %d abandoned: the sale should have all three", res.Completed, res.SoldOut, res.Abandoned)
	}
	for tt, n := range res.Audit.Capacity {
		if res.Audit.Confirmed[tt]+res.Audit.Held[tt] > n {
			t.Errorf("%s: %d confirmed and %d held of %d", tt, res.Audit.Confirmed[tt], res.Audit.Held[tt], n)
		}
	}
}
