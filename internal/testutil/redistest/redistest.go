// Package redistest starts real redis-server processes for tests, each on a free
// loopback port, stopped when the test ends. Without the binary the test is
// skipped with instructions, except under CI=true, where it fails.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
)

// Server is one running redis-server.
type Server struct {
	Addr string
	Port int
	Dir  string
	cmd  *exec.Cmd
	args []string
	tb   testing.TB
}

// Binary returns the redis-server path, skipping (or, under CI, failing) the test
// when it is missing.
func Binary(tb testing.TB) string {
	tb.Helper()
	return prereq.Program(tb, "redis-server", "apt-get install redis-server, brew install redis")
}

// Start starts a redis-server with the given extra arguments (e.g. "--cluster-enabled", "yes").
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		args := append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--daemonize", "no", "--protected-mode", "no",
		}, extra...)
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, Dir: dir, args: args, tb: tb}
		if err := s.start(bin); err != nil {
			lastErr = err
			continue
		}
		tb.Cleanup(s.Stop)
		return s
	}
	tb.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func (s *Server) start(bin string) error {
	cmd := exec.Command(bin, s.args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log strings.Builder
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if !signalled {
				log.WriteString(line + "\n")
				if strings.Contains(line, "Ready to accept connections") {
					signalled = true
					ready <- nil
				}
			}
		}
		if !signalled {
			ready <- fmt.Errorf("redis-server exited before ready:\n%s", log.String())
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Wait()
			return err
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("redis-server did not become ready")
	}
	s.cmd = cmd
	return nil
}

// Stop kills the server (idempotent).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server process with SIGSTOP: connections stay open and
// commands are accepted into socket buffers, but nothing is answered until
// Thaw, as with a Redis stalled by a long fork, a paused VM or a network stall.
// A frozen server is still killed by Stop.
func (s *Server) Freeze() {
	s.tb.Helper()
	if err := s.signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("freezing redis-server: %v", err)
	}
}

// Thaw resumes a frozen server (SIGCONT); it then runs what was sent meanwhile.
func (s *Server) Thaw() {
	s.tb.Helper()
	if err := s.signal(syscall.SIGCONT); err != nil {
		s.tb.Fatalf("thawing redis-server: %v", err)
	}
}

func (s *Server) signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("redis-server is not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Restart stops the server and starts it again on the same port and directory.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	var err error
	for i := 0; i < 50; i++ {
		if err = s.start(Binary(s.tb)); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly after kill
	}
	s.tb.Fatalf("restarting redis-server: %v", err)
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// URL returns redis://addr.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Cluster is a small Redis Cluster of masters started from redis-server.
type Cluster struct {
	Nodes []*Server
}

// Addrs lists the node addresses (seeds for a cluster client).
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		a[i] = n.Addr
	}
	return a
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// StartCluster starts n masters (n >= 3), assigns the 16384 slots evenly, joins
// them and waits until every node reports cluster_state:ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		n = 3
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, Start(tb, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"))
	}
	ctx := context.Background()
	clients := make([]*redis.Client, n)
	for i, node := range c.Nodes {
		clients[i] = node.Client(tb)
	}
	per := 16384 / n
	for i, cl := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		slots := make([]int, 0, hi-lo+1)
		for s := lo; s <= hi; s++ {
			slots = append(slots, s)
		}
		if err := cl.ClusterAddSlots(ctx, slots...).Err(); err != nil {
			tb.Fatalf("CLUSTER ADDSLOTS: %v", err)
		}
	}
	for i := 1; i < n; i++ {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[i].Port)).Err(); err != nil {
			tb.Fatalf("CLUSTER MEET: %v", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, cl := range clients {
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster did not converge: %v %s", err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling a condition, not guessing at timing
		}
	}
	return c
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
