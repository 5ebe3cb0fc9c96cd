// Package bench measures sms-connector against the budget of BENCHMARKS.md: what the binary
// costs on top of calling Twilio with twilio-go directly.
//
// One workload (a Register verification code to one recipient, rendered from a one-line
// template, accepted by a Twilio emulator with no added latency) is sent two ways:
//
//	(a) direct  twilio-go's CreateMessage, called in the load generator: the limit, since every
//	            way of sending through Twilio from Go pays for it
//	(c) grpc    SendMessage over gRPC to the built bin/sms-connector, a process of its own, with
//	            the server's default config, a config Struct or config_json in every request
//	(h) http    POST /logto/sms to the binary's Logto bridge (--http-listen), Logto's JSON body,
//	            with the server's default config: what the bridge adds to a send
//
// Run drives every path at each number of callers, reads CPU time and RSS from /proc, and returns a
// Report whose WriteMarkdown judges the budget. Command sms-load is its front end.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// The workload: every path sends this message, so the emulator receives identical requests.
const (
	// To is the recipient, a well-formed number the emulator accepts.
	To = "+14155550123"
	// From is the sender, Twilio's magic number that always succeeds.
	From = twiliotest.FromValid
	// Code is the verification code.
	Code = "424242"
	// Template is the Register template of the configuration.
	Template = "Your verification code is {{code}}."
	// Body is Template rendered with Code: what path (a) sends as is.
	Body = "Your verification code is 424242."
)

// Path names a way of sending; its value is the report's label.
type Path string

// The paths. The (b), the Go connector in process, is measured by the Go benchmarks
// of connector/twilio and is not part of the budget.
const (
	// PathDirect is (a): twilio-go called directly, the limit.
	PathDirect Path = "(a) direct"
	// PathGRPC is (c): SendMessage over gRPC through the binary.
	PathGRPC Path = "(c) grpc"
	// PathHTTP is (h): Logto's HTTP SMS connector request to the binary's bridge, with the
	// default config.
	PathHTTP Path = "(h) http"
)

// ConfigMode says where the connector config of a (c) send comes from.
type ConfigMode string

// The config modes of path (c).
const (
	// ConfigDefault: the request carries no config; the binary uses its --config file.
	ConfigDefault ConfigMode = "default"
	// ConfigStruct: every request carries the config as the google.protobuf.Struct config.
	ConfigStruct ConfigMode = "struct"
	// ConfigJSON: every request carries the config as JSON text in config_json.
	ConfigJSON ConfigMode = "config_json"
)

// configModes returns the modes Run measures path (c) in, default first.
func configModes() []ConfigMode { return []ConfigMode{ConfigDefault, ConfigStruct, ConfigJSON} }

// kind is a path in a config mode: what a cell measures, at some number of callers.
type kind struct {
	path Path
	mode ConfigMode
}

// kinds returns the kinds of cell Run measures at each number of callers, in order: (a), (c)
// in every config mode, (h).
func kinds() []kind {
	ks := []kind{{PathDirect, ""}}
	for _, mode := range configModes() {
		ks = append(ks, kind{PathGRPC, mode})
	}
	return append(ks, kind{PathHTTP, ConfigDefault})
}

// configValue is the workload's Twilio config as a JSON value: the emulator's sandbox account,
// the magic sender and Logto's four required templates.
func configValue() map[string]any {
	tpl := func(usage connector.UsageType, content string) map[string]any {
		return map[string]any{"usageType": string(usage), "content": content}
	}
	return map[string]any{
		"accountSID": twiliotest.SandboxAccountSID,
		"authToken":  twiliotest.SandboxAuthToken,
		"from":       From,
		"templates": []any{
			tpl(connector.UsageRegister, Template),
			tpl(connector.UsageSignIn, "Your sign-in code is {{code}}."),
			tpl(connector.UsageForgotPassword, "Your password reset code is {{code}}."),
			tpl(connector.UsageGeneric, "Your code is {{code}}."),
		},
	}
}

// config returns the workload's Twilio config as JSON: the binary's --config file, and the
// config_json of ConfigJSON requests.
func config() []byte {
	raw, err := json.Marshal(configValue())
	if err != nil {
		panic(err) // static data: cannot fail
	}
	return raw
}

// request returns the SendMessage request of mode. The request is built once per cell and sent
// again and again, as a platform holds its tenants' configs; marshalling it is the client's
// share of every call.
func request(mode ConfigMode) (*smsv1.SendMessageRequest, error) {
	req := &smsv1.SendMessageRequest{
		To:        To,
		UsageType: smsv1.UsageType_USAGE_TYPE_REGISTER,
		Payload:   &smsv1.Payload{Code: Code, Locale: "en"},
	}
	switch mode {
	case ConfigDefault:
	case ConfigStruct:
		s, err := structpb.NewStruct(configValue())
		if err != nil {
			return nil, fmt.Errorf("bench: config as Struct: %w", err)
		}
		req.Config = s
	case ConfigJSON:
		req.ConfigJson = string(config())
	default:
		return nil, fmt.Errorf("bench: unknown config mode %q", mode)
	}
	return req, nil
}

// sendFunc sends the workload's message once.
type sendFunc func(ctx context.Context) error

// grpcSender returns path (c) in mode: SendMessage on client with request(mode), with a fresh
// idempotency key in every send when keys is set.
func grpcSender(client smsv1.SmsConnectorClient, mode ConfigMode, keys bool) (sendFunc, error) {
	req, err := request(mode)
	if err != nil {
		return nil, err
	}
	var n atomic.Int64
	prefix := fmt.Sprintf("bench-%d-", time.Now().UnixNano()) // unique across runs on one store
	return func(ctx context.Context) error {
		r := req
		if keys {
			r = proto.Clone(req).(*smsv1.SendMessageRequest)
			r.IdempotencyKey = prefix + strconv.FormatInt(n.Add(1), 10)
		}
		resp, err := client.SendMessage(ctx, r)
		if err != nil {
			return err
		}
		if resp.GetMessageId() == "" {
			return errors.New("bench: response without a message id")
		}
		return nil
	}, nil
}

// newTransport returns the transport of path (a): keep-alive connections, enough idle ones
// for every caller.
func newTransport() *http.Transport {
	return &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
}

// rewriteHost sends each request to target instead of twilio-go's fixed https://api.twilio.com:
// the least any twilio-go client of the emulator must do.
type rewriteHost struct {
	target *url.URL
	next   http.RoundTripper
}

// RoundTrip sends a shallow copy of req (a RoundTripper must not modify its argument) to the
// target host.
func (rt *rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	r := *req
	u := *req.URL
	u.Scheme, u.Host = rt.target.Scheme, rt.target.Host
	r.URL, r.Host = &u, ""
	return rt.next.RoundTrip(&r)
}

// directSender returns path (a): one twilio-go client with the sandbox credentials over rt,
// whose CreateMessage is called with To, From and Body. A send succeeds only if Twilio's
// answer carries a message SID.
func directSender(apiURL string, rt http.RoundTripper) (sendFunc, error) {
	target, err := url.Parse(apiURL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("bench: emulator URL %q: not an absolute URL", apiURL)
	}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken),
		HTTPClient:  &http.Client{Transport: &rewriteHost{target: target, next: rt}, Timeout: 30 * time.Second},
	}
	c.SetAccountSid(twiliotest.SandboxAccountSID)
	api := openapi.NewApiServiceWithClient(c)
	return func(context.Context) error {
		params := &openapi.CreateMessageParams{}
		params.SetTo(To).SetFrom(From).SetBody(Body)
		m, err := api.CreateMessage(params)
		if err != nil {
			return err
		}
		if m == nil || m.Sid == nil {
			return errors.New("bench: Twilio answered without a message SID")
		}
		return nil
	}, nil
}

// logtoBody is the request body of path (h): Logto's SendMessageData for the workload's
// message, as Logto's HTTP SMS connector posts it.
func logtoBody() []byte {
	raw, err := json.Marshal(map[string]any{
		"to":      To,
		"type":    string(connector.UsageRegister),
		"payload": map[string]any{"code": Code, "locale": "en"},
	})
	if err != nil {
		panic(err) // static data: cannot fail
	}
	return raw
}

// newHTTPClient returns the client of path (h): one keep-alive transport with enough idle
// connections for every caller, shared by all of them.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}
}

// httpSender returns path (h): logtoBody POSTed to bridgeURL (http://host:port/logto/sms) with
// client. A send succeeds only if the bridge answers 200 with a message id.
func httpSender(client *http.Client, bridgeURL string) sendFunc {
	body := logtoBody()
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, bridgeURL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("bench: bridge request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("bench: POST %s: %w", bridgeURL, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body) // read to the end, so that the connection is reused
		if err != nil {
			return fmt.Errorf("bench: bridge answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench: bridge answered %s: %.200s", resp.Status, raw)
		}
		var receipt struct {
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(raw, &receipt); err != nil {
			return fmt.Errorf("bench: bridge answer: %w", err)
		}
		if receipt.MessageID == "" {
			return errors.New("bench: bridge answer without a message id")
		}
		return nil
	}
}
