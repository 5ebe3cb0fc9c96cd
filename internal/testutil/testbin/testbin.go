// Package testbin builds this module's commands and runs them as a test's child process, the way
// an operator would: Build compiles a command once per test process, Start serves it and waits
// until it says where. It is for tests only, and apart from package testutil because it knows
// the served binary's log line (package sdk), which testutil's users must not import.
package testbin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/internal/testutil"
	"github.com/sms-connector/sms-connector/sdk"
)

// hangGuard bounds every wait on a child (build aside): it turns a hang into a failure and says
// nothing about speed.
const hangGuard = time.Minute

// built is what Build made in this test process: compiling is the expensive part, so every test
// of a package shares it. RemoveAndExit deletes it.
var built struct {
	mu   sync.Mutex
	dirs []string
	bins map[string]result
}

type result struct {
	path string
	err  error
}

// Build compiles the package pkg of this module ("./cmd/sms-connector"), or a tool with flags
// such as "-modfile=tools/go.mod", once per test process, and returns the binary's path. The
// binaries live in temporary folders that the package's TestMain removes with RemoveAndExit.
func Build(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	key := strings.Join(append(flags, pkg), " ")
	built.mu.Lock()
	defer built.mu.Unlock()
	r, ok := built.bins[key]
	if !ok {
		r = build(pkg, flags)
		if built.bins == nil {
			built.bins = map[string]result{}
		}
		built.bins[key] = r
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// build runs go build from the module root; the caller holds built.mu.
func build(pkg string, flags []string) result {
	root, err := moduleRoot()
	if err != nil {
		return result{err: err}
	}
	dir, err := os.MkdirTemp("", "testbin-")
	if err != nil {
		return result{err: err}
	}
	built.dirs = append(built.dirs, dir)
	bin := filepath.Join(dir, path.Base(pkg))
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return result{err: fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)}
	}
	return result{path: bin}
}

// moduleRoot is the nearest folder above the test's working directory that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testbin: no go.mod above the working directory")
		}
		dir = parent
	}
}

// RemoveAndExit deletes the binaries Build made and exits with code. A TestMain ends with it,
// or hands it to goleak: goleak.VerifyTestMain(m, goleak.Cleanup(testbin.RemoveAndExit)).
func RemoveAndExit(code int) {
	built.mu.Lock()
	for _, dir := range built.dirs {
		_ = os.RemoveAll(dir)
	}
	built.mu.Unlock()
	os.Exit(code)
}

// Process is a served binary that Start began.
type Process struct {
	// Addr is the address the binary serves on, from its serving log line: host:port or
	// unix:///path.
	Addr string
	// Logs is everything the binary wrote to stderr so far.
	Logs testutil.Buffer

	name    string // the command line, for failure messages
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and its stderr is read
	stopped bool
}

// Start runs bin with args, without the test's SMS_CONNECTOR_* variables so that the flags
// decide, and waits for its serving log line (sdk.ServingMessage with its "address"). When the
// test ends, a process not yet stopped is stopped as Stop does, and a failed test logs its logs.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_CONNECTOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{name: filepath.Base(bin) + " " + strings.Join(args, " "), cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(io.TeeReader(stderr, &p.Logs))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var entry struct{ Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == sdk.ServingMessage {
				select {
				case addrc <- entry.Address:
				default:
				}
			}
		}
		_, _ = io.Copy(&p.Logs, stderr) // a line too long for the scanner
		_ = cmd.Wait()                  // Wait closes the pipe: read it to the end first
	}()
	t.Cleanup(func() {
		failed := t.Failed()
		if !p.stopped {
			p.Stop(t)
		}
		if failed {
			t.Logf("%s logs:\n%s", p.name, p.Logs.String())
		}
	})
	select {
	case p.Addr = <-addrc:
	case <-p.done:
		p.stopped = true
		t.Fatalf("%s exited with %d before serving:\n%s", p.name, cmd.ProcessState.ExitCode(), p.Logs.String())
	case <-time.After(hangGuard):
		t.Fatalf("%s did not log %q:\n%s", p.name, sdk.ServingMessage, p.Logs.String())
	}
	return p
}

// Stop sends SIGTERM, waits for the process to end, and fails the test, with the logs, unless it
// exits 0. Stop is what a test calls to check a clean shutdown; the logs stay readable after.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // fails only if it has exited already
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on SIGTERM:\n%s", p.name, p.Logs.String())
		return
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0:\n%s", p.name, code, p.Logs.String())
	}
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would: it finishes nothing and
// cleans nothing up. Kill returns once the process has gone; its logs stay readable.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.stopped = true
	_ = p.cmd.Process.Kill() // fails only if it has exited already
	select {
	case <-p.done:
	case <-time.After(hangGuard):
		t.Errorf("%s did not end on SIGKILL", p.name)
	}
}
