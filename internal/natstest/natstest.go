// Package natstest starts NATS servers with JetStream for tests, as
// es/postgres/pgtest gives them a PostgreSQL schema: each test gets the
// machine's nats-server binary running on a free port with its own
// storage folder, killed when the test ends.
//
// Without the binary (looked up as ES_NATS_SERVER, on PATH, then
// /usr/sbin/nats-server) the test is skipped, or fails when
// ES_REQUIRE_NATS=1, as in CI. ES_NATS_LOG=1 shows the server's log.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Binary returns the path of nats-server, or "" if the machine has none.
func Binary() string {
	if p := os.Getenv("ES_NATS_SERVER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	return ""
}

// Start starts a nats-server with JetStream for t, on a free port of
// 127.0.0.1 with its storage in a temporary folder of t, waits until it
// accepts connections, and returns its client URL. The server is killed
// when t ends (and, on Linux, when the test binary dies).
func Start(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "no nats-server binary (ES_NATS_SERVER, PATH or /usr/sbin); install nats-server to run the JetStream tests"
		if os.Getenv("ES_REQUIRE_NATS") == "1" {
			t.Fatal(msg + " (ES_REQUIRE_NATS=1)")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", filepath.Join(t.TempDir(), "js"))
	dieWithParent(cmd)
	if os.Getenv("ES_NATS_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	})
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(url, done); err != nil {
		t.Fatalf("nats-server on port %d: %v", port, err)
	}
	return url
}

// waitReady polls url until a client connects, the server ends, or 30
// seconds pass.
func waitReady(url string, done <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(url, nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("the server ended")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
