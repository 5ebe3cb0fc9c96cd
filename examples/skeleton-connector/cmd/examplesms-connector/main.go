// Command examplesms-connector serves the Example SMS connector as a gRPC service or a
// go-plugin plugin; package sdk does everything but the vendor part. --sandbox serves the
// vendor's test double on loopback and sends there, so every RPC can be tried without an
// account; --examplesms-api-url sends to a proxy or another double instead of the vendor.
package main

import (
	"context"
	"encoding/json"
	"flag"

	"example.com/examplesms-connector/examplesms"
	"example.com/examplesms-connector/examplesms/examplesmstest"
	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/sdk"
)

func main() {
	var apiURL string
	sdk.Main(sdk.Binary{
		Name:    "examplesms-connector",
		Summary: "Serves the Example SMS connector.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&apiURL, "examplesms-api-url", "", "send to this http(s)://host[:port] instead of "+examplesms.DefaultAPIURL+" (operator only)")
		},
		Sandbox: func(context.Context, *sdk.Runtime) (json.RawMessage, func(), error) {
			srv := examplesmstest.NewServer()
			apiURL = srv.URL
			cfg, err := json.Marshal(examplesms.Config{APIKey: examplesmstest.SandboxAPIKey, From: "Sandbox", Templates: connector.DefaultTemplates()})
			return cfg, srv.Close, err
		},
		New: func(_ context.Context, rt *sdk.Runtime) (connector.SmsConnector, error) {
			return examplesms.New(examplesms.Options{APIURL: apiURL, MaxSegments: rt.MaxSegments})
		},
	})
}
