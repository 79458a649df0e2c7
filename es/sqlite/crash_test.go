package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// helperEnv names the file a re-executed test binary appends to when it
// runs as TestHelperAppender.
const helperEnv = "ES_SQLITE_HELPER_DB"

// helperPauseEnv sets the helper's pause between appends (a duration).
const helperPauseEnv = "ES_SQLITE_HELPER_PAUSE"

// TestHelperAppender is not a test: run by TestCrashDurability (and
// TestSecondProcess) in a child process with helperEnv set, it appends
// until killed, printing one line per acknowledged event: its ID, stream
// and version. Appends mix single events, batches and multi-stream appends.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestCrashDurability")
	}
	exitWithParent()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	prefix := strconv.Itoa(os.Getpid())
	// A pause between appends (helperPauseEnv) leaves other processes a
	// chance at the write lock: SQLite's busy handler polls, so a process
	// appending in a tight loop would starve them.
	var pause time.Duration
	if p := os.Getenv(helperPauseEnv); p != "" {
		if pause, err = time.ParseDuration(p); err != nil {
			fmt.Fprintln(os.Stderr, "pause:", err)
			os.Exit(2)
		}
	}
	var line bytes.Buffer
	for i := 0; ; i++ {
		appends := []es.StreamAppend{{
			StreamID: fmt.Sprintf("crash-%d", i%7),
			Expected: es.AnyVersion,
			Events:   helperEvents(prefix, i, 1+i%3),
		}}
		if i%5 == 0 {
			appends = append(appends, es.StreamAppend{
				StreamID: fmt.Sprintf("pair-%d", i%3),
				Expected: es.AnyVersion,
				Events:   helperEvents(prefix, i, 2),
			})
		}
		res, err := s.Append(ctx, appends...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(3)
		}
		// One write per append: the acknowledgement of an append is
		// printed whole or not at all.
		line.Reset()
		for k, a := range appends {
			for j, e := range a.Events {
				fmt.Fprintf(&line, "%s %s %d\n", e.ID, a.StreamID, res[k].Version-int64(len(a.Events)-1-j))
			}
		}
		if _, err := os.Stdout.Write(line.Bytes()); err != nil {
			os.Exit(4)
		}
		time.Sleep(pause)
	}
}

func helperEvents(prefix string, i, n int) []es.EventData {
	out := make([]es.EventData, n)
	for j := range out {
		out[j] = es.EventData{
			ID: es.NewID(), Type: "Appended", SchemaVersion: 1,
			Data: fmt.Appendf(nil, `{"process":%q,"i":%d,"j":%d}`, prefix, i, j),
		}
	}
	return out
}

// startHelper starts TestHelperAppender on path in a child process. The
// returned channel delivers its acknowledgement lines and closes when its
// stdout does.
func startHelper(t *testing.T, path string, pause time.Duration) (*exec.Cmd, <-chan string, *bytes.Buffer) {
	t.Helper()
	cmd, _ := childCommand(t, "TestHelperAppender")
	cmd.Env = append(os.Environ(), helperEnv+"="+path, helperPauseEnv+"="+pause.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines, &stderr
}

type ack struct {
	stream  string
	version int64
}

func parseAck(t *testing.T, line string) (string, ack) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("helper printed %q", line)
	}
	v, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("helper printed %q", line)
	}
	return f[0], ack{f[1], v}
}

// TestCrashDurability kills a process appending to a file with SIGKILL at
// random moments, 20 times. After each kill the file must pass SQLite's
// integrity check, hold every append acknowledged before the kill, and
// its streams must have no version gaps.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[string]ack{}
	for round := range 20 {
		cmd, lines, stderr := startHelper(t, path, 0)
		// Most rounds kill the child while it appends; every fourth kills
		// it at a random moment of its start, opening or creating the file.
		if round%4 != 0 {
			select {
			case line, ok := <-lines:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("round %d: helper ended before appending: %s", round, stderr)
				}
				id, a := parseAck(t, line)
				acked[id] = a
			case <-time.After(3 * time.Minute): // generous: this is no test of speed
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: helper appended nothing within 3 minutes: %s", round, stderr)
			}
		}
		time.Sleep(time.Duration(rand.N(150)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range lines {
			id, a := parseAck(t, line)
			acked[id] = a
			n++
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
			t.Fatalf("round %d: helper was not killed but ended with %v: %s", round, err, stderr)
		}
		checkFile(t, path, acked)
		t.Logf("round %d: %d acknowledged events in all", round, len(acked))
	}
}

// checkFile checks a file left by a killed process.
func checkFile(t *testing.T, path string, acked map[string]ack) {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if len(acked) > 0 {
			t.Fatalf("file missing after %d acknowledged events", len(acked))
		}
		return
	}
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		t.Fatalf("integrity check: %v", err)
	}
	if result != "ok" {
		t.Fatalf("integrity check: %s", result)
	}

	s, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	all, err := es.Collect(s.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]es.Event, len(all))
	last := map[string]int64{}
	for i, e := range all {
		byID[e.ID] = e
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("position %d follows %d", e.Position, all[i-1].Position)
		}
		if e.Version != last[e.StreamID]+1 {
			t.Fatalf("%s: version %d follows %d: a gap", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
	}
	for id, a := range acked {
		e, ok := byID[id]
		if !ok {
			t.Fatalf("acknowledged event %s (%s v%d) is lost", id, a.stream, a.version)
		}
		if e.StreamID != a.stream || e.Version != a.version {
			t.Fatalf("event %s acknowledged as %s v%d is stored as %s v%d", id, a.stream, a.version, e.StreamID, e.Version)
		}
	}
	// The streams table agrees with the events.
	rows, err := db.QueryContext(ctx, "SELECT stream_id, version FROM es_streams")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		if last[id] != v {
			t.Fatalf("es_streams says %s is at version %d, its events end at %d", id, v, last[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
