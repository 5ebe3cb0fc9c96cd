package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters only, each a Server on 127.0.0.1, made with
// redis-cli --cluster create.
type Cluster struct {
	// Nodes are the masters, in the order their addresses appear in URL.
	Nodes []*Server
	t     testing.TB
}

// StartCluster starts masters redis-server processes in cluster mode (no persistence, each
// with its own cluster bus port), joins them with redis-cli --cluster create with no replicas,
// and waits until every node reports cluster_state:ok. They stop when t ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed; the Redis Cluster tests need it (Debian: %s)", Install)
	}
	c := &Cluster{t: t}
	args := []string{"--cluster", "create"}
	for range masters {
		s := Start(t, WithArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(freePort(t)), "--cluster-node-timeout", "5000"))
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, s := range c.Nodes {
		c.waitOK(ctx, s)
	}
	return c
}

// waitOK waits until s reports cluster_state:ok.
func (c *Cluster) waitOK(ctx context.Context, s *Server) {
	c.t.Helper()
	rc := s.newClient()
	defer rc.Close()
	for {
		info, err := rc.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("redis cluster node %s is not ok: %v\n%s", s.Addr, err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is the cluster as --store takes it: the first node's address with the others as addr
// parameters, go-redis's cluster URL form.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr
	}
	return u
}

// Client returns a go-redis cluster client of the nodes, closed when the test ends: for a
// test to look at keys.
func (c *Cluster) Client() *redis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	c.t.Cleanup(func() { _ = rc.Close() })
	return rc
}
