package conformance

import (
	"testing"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/server"
)

// TestConstantsMatchServer proves that the values this package takes from the proto's comments
// are the ones our server sends, so the two cannot drift apart unnoticed.
func TestConstantsMatchServer(t *testing.T) {
	cases := []struct{ name, here, server string }{
		{"error domain", errorDomain, server.ErrorDomain},
		{"contract version", contractVersion, server.ContractVersion},
	}
	for _, tc := range cases {
		if tc.here != tc.server {
			t.Errorf("%s: conformance checks %q, the server sends %q", tc.name, tc.here, tc.server)
		}
	}
	for _, r := range []string{reasonInvalidRequest, reasonInvalidPhoneNumber, reasonInvalidConfig, reasonConfigMissing} {
		if !knownReason(r) {
			t.Errorf("the reason %s is not an ErrorReason of %s", r, smsv1.File_connector_sms_v1_connector_proto.Path())
		}
	}
	for _, r := range []string{"", "UNSPECIFIED", "ERROR_REASON_INTERNAL", "invalid_request"} {
		if knownReason(r) {
			t.Errorf("knownReason(%q) = true, want false", r)
		}
	}
}
