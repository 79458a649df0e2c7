package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"esgo.dev/examples/ticketing/loadtest"
)

// loadtestCommand plays a flash sale (see package loadtest):
//
//	go run ./examples/ticketing loadtest [-store sqlite|postgres] [-seats 50000] [-buyers 200000] ...
func loadtestCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ExitOnError)
	var cfg loadtest.Config
	fs.StringVar(&cfg.Store, "store", "sqlite", "event store: sqlite or postgres")
	fs.StringVar(&cfg.DSN, "dsn", "", "PostgreSQL connection string (default $ES_POSTGRES_DSN, then the local test database)")
	fs.StringVar(&cfg.DB, "db", "", "SQLite file for the events (sqlite) or the read models (postgres) (default: a temporary file, removed)")
	fs.IntVar(&cfg.Seats, "seats", 50_000, "the concert's seats")
	fs.IntVar(&cfg.Buyers, "buyers", 200_000, "buyers, each wanting 1 to 4 tickets")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "buyers active at once")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop starting buyers after this long (0: when all have come)")
	fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "how long a reservation holds its seats (short, so that abandoned holds expire during the sale)")
	fs.Float64Var(&cfg.Abandon, "abandon", 0.1, "fraction of buyers who never pay (their holds expire)")
	fs.IntVar(&cfg.RelayWorkers, "relay-workers", 0, "relay workers delivering messages (default 2 on SQLite, 8 on PostgreSQL)")
	fs.BoolVar(&cfg.ReadModels, "read-models", false, "run the read models' projections during the sale too")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the sale to this file (go tool pprof reads it)")
	_ = fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Progress = os.Stdout
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	res, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	if !res.OK() {
		return errors.New("the sale oversold, or left buyers without an answer")
	}
	return nil
}
