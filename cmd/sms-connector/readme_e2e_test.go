package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sms-connector/sms-connector/internal/testutil"
)

// readmeBlock is one fenced block of README.md.
type readmeBlock struct {
	kind string // the fence's info string: sh, text, json, go
	text string
	line int // where it starts
}

// readmeBlocks returns the fenced blocks of the README.
func readmeBlocks(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	var cur *readmeBlock
	for i, line := range strings.Split(readme, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{kind: strings.TrimPrefix(line, "```"), line: i + 1}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: the block is not closed", cur.line)
	}
	return blocks
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReadmeCommands runs every ```sh block of README.md as printed, in order, with bash
// (errexit, pipefail) from the repository root: a block that stops working fails it. Blocks
// that are not commands are marked ```text, ```json or ```go; any other kind fails the test, so
// that the rule stays visible. What the test changes, and nothing else:
//   - the README's fixed addresses (127.0.0.1:50051, :50052, :4010) become free loopback ports,
//     and LISTEN (make run's address) the first of them, so that a developer's `make run` does
//     not collide with it;
//   - `make test` and `make quick` are dry runs (make -n): they run this very test;
//   - HOME is a temporary folder (the real-account block writes ~/.config/sms-connector), with
//     Go's caches kept where they are.
//
// A block that keeps running is a server: it counts as started once it prints its readiness
// line ("sms-connector serving", or the emulator's url=), runs beside the later blocks, and is
// stopped at the end. Any other block must exit 0.
func TestReadmeCommands(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(raw))

	addrs := map[string]string{}
	for _, a := range []string{"127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:4010"} {
		addrs[a] = freeAddr(t)
	}
	env := []string{"HOME=" + t.TempDir(), "LISTEN=" + addrs["127.0.0.1:50051"]}
	for _, k := range []string{"GOPATH", "GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		env = append(env, k+"="+strings.TrimSpace(string(out)))
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_CONNECTOR_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "LISTEN=") {
			env = append(env, kv)
		}
	}
	selfRunning := regexp.MustCompile(`(?m)^make (test|quick)\b`)
	ready := regexp.MustCompile(`"msg":"sms-connector serving"|(?m)^url=http`)

	type server struct {
		cmd  *exec.Cmd
		out  *testutil.Buffer
		done chan struct{}
		line int
	}
	var servers []*server
	t.Cleanup(func() {
		for _, s := range servers {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.done
			}
		}
	})

	ran := 0
	for _, b := range blocks {
		switch b.kind {
		case "text", "json", "go":
			continue
		case "sh":
		default:
			t.Fatalf("README.md:%d: a block of kind %q: mark it sh (a command this test runs) or text", b.line, b.kind)
		}
		ran++
		script := selfRunning.ReplaceAllString(b.text, "make -n $1")
		for from, to := range addrs {
			script = strings.ReplaceAll(script, from, to)
		}
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = root, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out := &testutil.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s := &server{cmd: cmd, out: out, done: make(chan struct{}), line: b.line}
		var exitErr error
		go func() { exitErr = cmd.Wait(); close(s.done) }()
		servers = append(servers, s)             // stopped at the end unless it exits by itself
		deadline := time.After(10 * time.Minute) // a guard against a hang, not a performance check
	wait:
		for {
			select {
			case <-s.done:
				if exitErr != nil {
					t.Fatalf("README.md:%d: the block failed (%v):\n%s\noutput:\n%s", b.line, exitErr, script, out)
				}
				break wait
			case <-time.After(100 * time.Millisecond):
				if ready.MatchString(out.String()) {
					break wait
				}
			case <-deadline:
				t.Fatalf("README.md:%d: the block neither finished nor started serving:\n%s\noutput:\n%s", b.line, script, out)
			}
		}
		got := out.String()
		for _, bad := range []string{"command not found", "address already in use", "No such file"} {
			if strings.Contains(got, bad) {
				t.Errorf("README.md:%d: the output says %q:\n%s", b.line, bad, got)
			}
		}
		if strings.Contains(b.text, "SmsConnector/SendMessage") {
			for _, want := range []string{`"messageId": "SM`, `"field": "accountSID"`, `"reason": "COUNTRY_NOT_PERMITTED"`, `"status": "SERVING"`, "rpc SendMessage"} {
				if !strings.Contains(got, want) {
					t.Errorf("README.md:%d: the tour's output lacks %s:\n%s", b.line, want, got)
				}
			}
		}
	}
	if ran < 4 {
		t.Fatalf("%d sh blocks run; the README has at least make run, make test, the tour and a real account", ran)
	}
	// The tour's sends went through the server make run started (the French template included).
	if logs := servers[0].out.String(); !strings.Contains(logs, "Votre code de connexion est 123456.") {
		t.Errorf("make run's log lacks the localised send:\n%s", logs)
	}
}
