package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sms-connector/sms-connector/connector/twilio"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// SendFunc sends the workload's message once. seq numbers the sends of one load run (each
// value once); senders with several tenants use it to pick one.
type SendFunc func(ctx context.Context, seq int) error

// Path names one of the three ways of sending.
type Path string

// The paths.
const (
	// PathDirect is (a): twilio-go called directly, the limit.
	PathDirect Path = "direct"
	// PathConnector is (b): the Go connector in process.
	PathConnector Path = "connector"
	// PathGRPC is (c): SendMessage over gRPC through the server.
	PathGRPC Path = "grpc"
)

// ParsePath returns the path named s; "a", "b" and "c" name them too.
func ParsePath(s string) (Path, error) {
	switch s {
	case "a", string(PathDirect):
		return PathDirect, nil
	case "b", string(PathConnector):
		return PathConnector, nil
	case "c", string(PathGRPC):
		return PathGRPC, nil
	}
	return "", fmt.Errorf("unknown path %q (want direct, connector or grpc)", s)
}

// Letter returns the path's letter in the issue: "a", "b" or "c".
func (p Path) Letter() string {
	switch p {
	case PathDirect:
		return "a"
	case PathConnector:
		return "b"
	case PathGRPC:
		return "c"
	}
	return "?"
}

// NewTransport returns the tuned transport of the direct path: keep-alive connections, enough
// idle ones per host for every concurrent caller, no proxy lookup.
func NewTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false, // the emulator speaks HTTP/1.1, as a plain-HTTP endpoint
	}
}

// rewriteHost sends each request to target instead of twilio-go's constant
// https://api.twilio.com. It copies the request shallowly (a RoundTripper must not modify
// its argument) and nothing else: the least any client of the emulator must do.
type rewriteHost struct {
	target *url.URL
	next   http.RoundTripper
}

// RoundTrip sends req to the target host.
func (rt *rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	u := *req.URL
	u.Scheme, u.Host = rt.target.Scheme, rt.target.Host
	r.URL, r.Host = &u, ""
	return rt.next.RoundTrip(r)
}

// NewDirect returns path (a): one twilio-go client, built once with the sandbox credentials
// and an http.Client over rt, whose CreateMessage is called with To, From and Body. The
// message is accepted only if Twilio's answer carries a message SID.
func NewDirect(apiURL string, rt http.RoundTripper) (SendFunc, error) {
	target, err := url.Parse(apiURL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("bench: emulator URL %q: not an absolute URL", apiURL)
	}
	cfg, vs := twilio.ParseConfig(Config(0))
	if len(vs) > 0 {
		return nil, fmt.Errorf("bench: workload config: %v", vs)
	}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(cfg.AccountSID, cfg.AuthToken),
		HTTPClient: &http.Client{
			Transport:     &rewriteHost{target: target, next: rt},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       twilio.DefaultTimeout,
		},
	}
	c.SetAccountSid(cfg.AccountSID)
	api := openapi.NewApiServiceWithClient(c)
	return func(context.Context, int) error {
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

// NewConnector returns the Twilio connector of path (b), as the binary builds it: its own
// default transport, sending to apiURL.
func NewConnector(apiURL string) (*twilio.Connector, error) {
	return twilio.New(twilio.Options{APIURL: apiURL})
}

// ConnectorSender returns path (b): each send builds the workload message, checks it
// (connector.Message.Check, as the contract requires of callers) and calls c.Send. With
// ConfigDefault every message shares the default configuration's bytes, as the server passes
// its default; with ConfigPerRequest each message gets its own copy of one of tenants
// configurations, as one arriving with a request would.
func ConnectorSender(c *twilio.Connector, mode ConfigMode, tenants int) SendFunc {
	cfgs := tenantConfigs(tenants)
	return func(ctx context.Context, seq int) error {
		cfg := cfgs[0]
		if mode == ConfigPerRequest {
			cfg = cloneConfig(cfgs[seq%len(cfgs)])
		}
		msg := NewMessage(cfg)
		if err := msg.Check(); err != nil {
			return err
		}
		r, err := c.Send(ctx, msg)
		if err != nil {
			return err
		}
		if r.MessageID == "" {
			return errors.New("bench: receipt without a message id")
		}
		return nil
	}
}

// GRPCSender returns path (c): SendMessage on client, with no configuration (ConfigDefault) or
// one of tenants configurations in each request, as a Struct (ConfigPerRequest) or as JSON
// text (ConfigPerRequestJSON). The requests are built
// once, as a platform holds its tenants' configurations; marshalling them is the client's
// share of every call.
func GRPCSender(client smsv1.SmsConnectorClient, mode ConfigMode, tenants int) SendFunc {
	reqs := []*smsv1.SendMessageRequest{NewRequest(nil)}
	switch mode {
	case ConfigPerRequest:
		reqs = make([]*smsv1.SendMessageRequest, max(tenants, 1))
		for i := range reqs {
			reqs[i] = NewRequest(ConfigStruct(i))
		}
	case ConfigPerRequestJSON:
		reqs = make([]*smsv1.SendMessageRequest, max(tenants, 1))
		for i := range reqs {
			reqs[i] = NewRequest(nil)
			reqs[i].ConfigJson = string(Config(i))
		}
	}
	return func(ctx context.Context, seq int) error {
		resp, err := client.SendMessage(ctx, reqs[seq%len(reqs)])
		if err != nil {
			return err
		}
		if resp.GetMessageId() == "" {
			return errors.New("bench: response without a message id")
		}
		return nil
	}
}

// DialGRPC returns a client connection to a server at addr ("host:port" or "unix:///path"),
// without TLS. One connection is shared by every caller, as a platform would share it.
func DialGRPC(addr string) (*grpc.ClientConn, error) {
	target := addr
	if !isUnix(addr) {
		target = "passthrough:///" + addr
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// isUnix reports whether addr names a unix socket.
func isUnix(addr string) bool {
	return strings.HasPrefix(addr, "unix:")
}
