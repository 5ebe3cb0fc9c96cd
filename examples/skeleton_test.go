// Package examples_test proves that the out-of-tree skeleton connector in skeleton-connector
// builds against this tree as a vendor's own module would, and passes both conformance suites:
// connectortest in its own tests, and sms-conformance over the wire against its binary.
package examples_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sms-connector/sms-connector/internal/testutil/testbin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(testbin.RemoveAndExit))
}

// skeletonDir is the skeleton's module, relative to this package.
const skeletonDir = "skeleton-connector"

// goCmd runs the go command in the skeleton's module, offline: only modules already in the
// module cache (this module's) may be used, and go.mod's replace points at this tree. It
// returns stdout and stderr together, and the command's error.
func goCmd(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = skeletonDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// mustGo is goCmd that fails the test, with the output, when the command fails.
func mustGo(t *testing.T, args ...string) {
	t.Helper()
	if out, err := goCmd(t, args...); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), skeletonDir, err, out)
	}
}

// TestSkeletonConnector vets the skeleton, runs its tests (the in-process suite among them),
// builds its binary, serves it with --sandbox and checks it with the built sms-conformance,
// sends included. Every rule of both suites must pass, none skipped; and running the skeleton
// must not change its go.mod or go.sum (they must be tidy and complete).
func TestSkeletonConnector(t *testing.T) {
	modBefore := readFiles(t, "go.mod", "go.sum")
	defer func() {
		if after := readFiles(t, "go.mod", "go.sum"); after != modBefore {
			t.Errorf("building the skeleton changed its go.mod or go.sum: run go mod tidy in examples/%s and commit", skeletonDir)
		}
	}()

	mustGo(t, "vet", "./...")

	args := []string{"test", "-count=1", "-json", "./..."}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := goCmd(t, args...)
	pass, failed, output := inProcess(t, out)
	t.Logf("in process: %d of %d connectortest subtests passed", pass, pass+len(failed))
	if err != nil || len(failed) > 0 || pass == 0 {
		t.Fatalf("go %s in %s must pass every test, and every connectortest rule, none skipped (%v); not passed: %s\n%s",
			strings.Join(args, " "), skeletonDir, err, strings.Join(failed, ", "), output)
	}

	bin := filepath.Join(t.TempDir(), "examplesms-connector")
	mustGo(t, "build", "-o", bin, "./cmd/examplesms-connector")
	addr := testbin.Start(t, bin, "--sandbox", "--listen", "127.0.0.1:0").Addr
	cmd := exec.CommandContext(t.Context(), testbin.Build(t, "./cmd/sms-conformance"), "--addr", addr, "--send-to", "+14155550123")
	out, err = cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running sms-conformance: %v", err)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if outcome, _, ok := strings.Cut(line, " "); ok && (outcome == "PASS" || outcome == "FAIL" || outcome == "SKIP") {
			counts[outcome]++
		}
	}
	t.Logf("over the wire: %d of %d sms-conformance rules passed", counts["PASS"], counts["PASS"]+counts["FAIL"]+counts["SKIP"])
	if err != nil || counts["FAIL"]+counts["SKIP"] > 0 || counts["PASS"] == 0 {
		t.Errorf("sms-conformance must pass every rule against the skeleton's binary (exit %v):\n%s", err, out)
	}
}

// inProcess reads go test -json output. It returns how many subtests of TestConformance
// passed; the names of those that were skipped and of every test that failed; and the output of
// those tests, or all the output that is not a test's (a build failure) when none failed.
func inProcess(t *testing.T, out []byte) (pass int, notPassed []string, output string) {
	t.Helper()
	byTest := map[string]*strings.Builder{}
	var other strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct{ Action, Test, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			other.Write(sc.Bytes())
			other.WriteByte('\n')
			continue
		}
		if ev.Test == "" {
			if ev.Action == "output" || ev.Action == "build-output" {
				other.WriteString(ev.Output)
			}
			continue
		}
		if byTest[ev.Test] == nil {
			byTest[ev.Test] = &strings.Builder{}
		}
		suite := strings.HasPrefix(ev.Test, "TestConformance/")
		switch {
		case ev.Action == "output":
			byTest[ev.Test].WriteString(ev.Output)
		case ev.Action == "pass" && suite:
			pass++
		case ev.Action == "fail", ev.Action == "skip" && suite:
			notPassed = append(notPassed, ev.Test+" ("+ev.Action+")")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading go test -json output: %v", err)
	}
	if len(notPassed) == 0 {
		return pass, nil, other.String()
	}
	var b strings.Builder
	for _, name := range notPassed {
		if o := byTest[strings.Fields(name)[0]]; o != nil {
			b.WriteString(o.String())
		}
	}
	return pass, notPassed, b.String()
}

// readFiles returns the skeleton's files names, concatenated.
func readFiles(t *testing.T, names ...string) string {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(skeletonDir, n))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
