package server

import (
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// ErrorDomain is google.rpc.ErrorInfo.domain of every error this server returns: together with
// the reason it identifies the error for clients in any language (AIP-193).
const ErrorDomain = protoconv.ErrorDomain

// ContractVersion is the contract this server implements, sent as
// GetMetadataResponse.contract_version: the proto package name.
const ContractVersion = protoconv.ContractVersion

// MaxIdempotencyKeyLength bounds SendMessageRequest.idempotency_key, as the proto documents.
const MaxIdempotencyKeyLength = protoconv.MaxIdempotencyKeyLength

// ErrorInfo metadata keys, as documented in the proto. Only non-empty values are sent.
const (
	metaProvider     = protoconv.MetaProvider
	metaProviderCode = protoconv.MetaProviderCode
)

// msgInternal is the status message of an error that is not a *connector.Error; it says
// nothing about the cause on purpose (the cause is logged instead).
const msgInternal = protoconv.MsgInternal

// Status turns any error into the gRPC status a client receives (AIP-193): the code from the
// reason table, the connector.Error's Message as the status message (never the text of its
// cause), and details ErrorInfo{reason, domain, metadata provider/provider_code/more_info},
// BadRequest when the error lists violations, RetryInfo when it has a RetryAfter.
//
// An error without a *connector.Error in its chain becomes INTERNAL (reason INTERNAL) with a
// generic message, except the context's own errors: context.DeadlineExceeded becomes
// DEADLINE_EXCEEDED (reason PROVIDER_TIMEOUT) and context.Canceled CANCELLED (reason
// CANCELLED). A reason missing from the table is treated as INTERNAL. The result is never
// codes.Unknown. Status(nil) is the OK status. The table and its reverse (what a client
// makes of such a status) live in one place, shared with the Go client in package smsplugin.
func Status(err error) *status.Status { return protoconv.Status(err) }
