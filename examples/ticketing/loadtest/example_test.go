package loadtest_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"esgo.dev/examples/ticketing/loadtest"
)

// A tiny sale: 10 seats for 20 buyers, on a SQLite file. What a sale
// prints depends on who wins the races; what it must show does not: no
// seat sold twice, every buyer answered.
func Example() {
	dir, err := os.MkdirTemp("", "loadtest-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	res, err := loadtest.Run(context.Background(), loadtest.Config{DB: filepath.Join(dir, "sale.db"),
		Seats: 10, Buyers: 20, Concurrency: 4, Hold: 2 * time.Second, Progress: io.Discard})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("oversold:", res.Audit.Oversold)
	fmt.Println("every buyer answered:", res.Started == 20 && res.Unanswered == 0)
	// Output:
	// oversold: 0
	// every buyer answered: true
}
