package sdk_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/sdk"
)

// A vendor's whole main package: the console connector as a complete connector binary, a
// standalone gRPC service or a go-plugin plugin. A vendor's main calls sdk.Main(b); here the
// same binary runs through sdk.Run on a free loopback port and is told to stop at once.
func Example() {
	b := sdk.Binary{
		Name:          "console-sms-connector",
		Summary:       "Serves the console SMS connector: each message is written to stderr as a JSON line.",
		DefaultConfig: console.DefaultConfig,
		New: func(_ context.Context, rt *sdk.Runtime) (connector.SmsConnector, error) {
			return console.New(console.Options{MaxSegments: rt.MaxSegments}), nil
		},
	}
	// func main() { sdk.Main(b) }
	ctx, stop := context.WithCancel(context.Background())
	stop()
	noEnv := func(string) string { return "" }
	code := sdk.Run(ctx, b, []string{"--listen", "127.0.0.1:0"}, noEnv, os.Stdout, io.Discard)
	fmt.Println("exit code", code)
	// Output: exit code 0
}
