package twilio

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (an HTTP connection, an emulator
// handler) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
