package natsjs_test

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
	"github.com/nats-io/nats.go/jetstream"
)

// The tests own their NATS servers: each runs the machine's nats-server
// binary with JetStream, on a free port, with its own storage folder, so
// that a test can SIGKILL it and start it again on the same storage. A
// real process rather than the embedded server (nats-server/v2): a crash
// of the broker is then a real crash, and the module does not pull in the
// server's dependencies for its tests.

// serverBinary returns the path of nats-server, or "" if the machine has
// none.
func serverBinary() string {
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

// natsServer is a nats-server process with JetStream, started by a test.
type natsServer struct {
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// freePort returns a TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newServer starts a server on a free port with its storage in dir.
func newServer(dir string) (*natsServer, error) {
	bin := serverBinary()
	if bin == "" {
		return nil, errors.New("no nats-server binary")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &natsServer{bin: bin, port: port, dir: dir}
	return s, s.start()
}

// start starts the server process and waits until it accepts connections.
func (s *natsServer) start() error {
	s.cmd = exec.Command(s.bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-sd", filepath.Join(s.dir, "js"))
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	dieWithParent(s.cmd)
	if os.Getenv("ES_NATS_LOG") != "" {
		s.cmd.Stderr = os.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("nats-server on port %d ended: %v", s.port, s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("nats-server on port %d: %w", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the server process and waits for it to end.
func (s *natsServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// URL is the server's client URL.
func (s *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// startServer starts a server for t, with its own storage folder, stopped
// when t ends. Without a nats-server binary t is skipped, or fails if
// ES_REQUIRE_NATS=1.
func startServer(t testing.TB) *natsServer {
	t.Helper()
	if serverBinary() == "" {
		noServer(t)
	}
	s, err := newServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

func noServer(t testing.TB) {
	t.Helper()
	msg := "no nats-server binary (PATH, /usr/sbin or ES_NATS_SERVER); install nats-server to run the JetStream tests"
	if os.Getenv("ES_REQUIRE_NATS") == "1" {
		t.Fatal(msg + " (ES_REQUIRE_NATS=1)")
	}
	t.Skip(msg)
}

// connect returns a JetStream client of the server at url that keeps
// reconnecting, closed when t ends.
func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, reconnecting()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// reconnecting are the options of a connection that outlives server
// restarts.
func reconnecting() []nats.Option {
	return []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ReconnectBufSize(64 << 20)}
}
