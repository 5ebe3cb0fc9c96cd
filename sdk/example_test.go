package sdk_test

import (
	"context"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/console"
	"github.com/sms-connector/sms-connector/sdk"
)

// A vendor's whole main package: the console connector as a complete connector binary, a
// standalone gRPC service or a go-plugin plugin. (An example function stands in for main here.)
func Example() {
	sdk.Main(sdk.Binary{
		Name:          "console-sms-connector",
		Summary:       "Serves the console SMS connector: each message is written to stderr as a JSON line.",
		DefaultConfig: console.DefaultConfig,
		New: func(_ context.Context, rt *sdk.Runtime) (connector.SmsConnector, error) {
			return console.New(console.Options{MaxSegments: rt.MaxSegments}), nil
		},
	})
}
