package smsplugin

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// Client is a connector.SmsConnector served elsewhere: every method is one call of the
// connector.sms.v1.SmsConnector service, with the caller's context (its deadline and
// cancellation cross the process boundary). It is what Launch and GRPCPlugin return, and
// works over any connection to a server of the contract, a plugin or a standalone service, in
// any language. It is safe for concurrent use.
//
// Failures are *connector.Error values, as the served connector returned them (see
// protoconv.ErrorFromStatus): the reason, message, provider, provider code, more-info link,
// violations and retry delay cross the wire; the connector's own cause does not, and Err is
// the gRPC status (status.Code works). A call that failed without reaching a connector (the
// plugin is gone, the connection broke) is INTERNAL, or CANCELLED / PROVIDER_TIMEOUT when the
// caller's context ended, and then errors.Is(err, ctx.Err()) holds.
type Client struct {
	rpc smsv1.SmsConnectorClient
}

var (
	_ connector.SmsConnector = (*Client)(nil)
	_ connector.StatusReader = (*Client)(nil)
)

// NewClient returns the connector served at the other end of cc.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{rpc: smsv1.NewSmsConnectorClient(cc)}
}

// Send sends msg with SendMessage. What the wire cannot carry (a usage type the contract does
// not know, variables that are not JSON, a config that is not a JSON object) fails here with
// INVALID_REQUEST, before any call. An empty msg.Config means the server's default config.
//
// The server reports the violations of an invalid per-request config under the request field
// "config" ("config.templates[0].content"); Send removes that prefix again, so an
// INVALID_CONFIG error names the fields of msg.Config as the connector did
// ("templates[0].content", and "" for the config as a whole).
func (c *Client) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	req, err := protoconv.RequestFromMessage(msg)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.SendMessage(ctx, req)
	if err != nil {
		ce := callError(ctx, err)
		if ce.Reason == connector.ReasonInvalidConfig {
			protoconv.UnprefixConfigViolations(ce)
		}
		return nil, ce
	}
	return protoconv.ReceiptFromResponse(resp), nil
}

// ValidateConfig checks config with ValidateConfig. A config that is not a JSON object cannot
// be sent (the wire carries objects only): it is reported as one violation of the whole
// configuration (field ""), as connectors report it, without a call. A response that says
// "invalid" without naming a violation breaks the contract and is PROVIDER_INVALID_RESPONSE.
func (c *Client) ValidateConfig(ctx context.Context, config json.RawMessage) ([]connector.Violation, error) {
	cfg, err := protoconv.JSONToStruct(config)
	switch {
	case err != nil:
		return []connector.Violation{{Field: "", Description: err.Error() + ": the configuration must be a JSON object"}}, nil
	case cfg == nil:
		return []connector.Violation{{Field: "", Description: "is empty: the configuration must be a JSON object"}}, nil
	}
	resp, err := c.rpc.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: cfg})
	if err != nil {
		return nil, callError(ctx, err)
	}
	vs := protoconv.ViolationsFromProto(resp.GetViolations())
	if !resp.GetValid() && len(vs) == 0 {
		return nil, &connector.Error{Reason: connector.ReasonProviderInvalidResponse,
			Message: "the connector said the config is invalid but named no violation"}
	}
	return vs, nil
}

// Metadata returns the connector's metadata from GetMetadata (see protoconv.MetadataFromProto
// for how JSON-shaped values come back).
func (c *Client) Metadata(ctx context.Context) (*connector.Metadata, error) {
	resp, err := c.rpc.GetMetadata(ctx, &smsv1.GetMetadataRequest{})
	if err != nil {
		return nil, callError(ctx, err)
	}
	return protoconv.MetadataFromProto(resp), nil
}

// MessageStatus asks for a message's delivery status with GetMessageStatus, with config as
// the vendor account to ask (empty: the server's default config). A config that is not a JSON
// object cannot be sent and is INVALID_CONFIG (one violation of the whole configuration, field
// ""), without a call; violations the server reports come back with the field paths of config,
// as Send's do.
//
// A server that cannot tell delivery statuses answers UNIMPLEMENTED: that is NOT_SUPPORTED
// here, whether the server is of this contract (ErrorInfo NOT_SUPPORTED) or of an older one
// that has no GetMessageStatus at all (gRPC's own UNIMPLEMENTED, without ErrorInfo; see
// protoconv.ErrorFromStatus), so a caller checks one reason.
func (c *Client) MessageStatus(ctx context.Context, messageID string, config json.RawMessage) (*connector.MessageStatus, error) {
	req := &smsv1.GetMessageStatusRequest{MessageId: messageID}
	if len(config) > 0 {
		cfg, err := protoconv.JSONToStruct(config)
		if err != nil {
			return nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "the config is not a JSON object",
				Violations: []connector.Violation{{Field: "", Description: err.Error() + ": the configuration must be a JSON object"}}}
		}
		req.Config = cfg
	}
	resp, err := c.rpc.GetMessageStatus(ctx, req)
	if err != nil {
		ce := callError(ctx, err)
		if ce.Reason == connector.ReasonInvalidConfig {
			protoconv.UnprefixConfigViolations(ce)
		}
		return nil, ce
	}
	return protoconv.MessageStatusFromProto(resp), nil
}

// callError turns the error of a call into the *connector.Error the caller gets. When the
// caller's own context ended, its error joins the chain, so errors.Is(err, context.Canceled)
// (or DeadlineExceeded) holds as it would for a local connector.
func callError(ctx context.Context, err error) *connector.Error {
	ce := protoconv.ErrorFromStatus(err)
	if ctxErr := ctx.Err(); ctxErr != nil && (ce.Reason == connector.ReasonCancelled || ce.Reason == connector.ReasonProviderTimeout) {
		ce.Err = fmt.Errorf("%w (%w)", ce.Err, ctxErr)
	}
	return ce
}
