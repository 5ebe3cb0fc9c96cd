package connector

// UsageType says what a verification code is for. The values are Logto's
// (TemplateType / VerificationCodeType), so a Logto template list works unchanged.
type UsageType string

// The usage types, as Logto names them in its templates.
const (
	UsageRegister                 UsageType = "Register"
	UsageSignIn                   UsageType = "SignIn"
	UsageForgotPassword           UsageType = "ForgotPassword"
	UsageGeneric                  UsageType = "Generic"
	UsageOrganizationInvitation   UsageType = "OrganizationInvitation"
	UsageUserPermissionValidation UsageType = "UserPermissionValidation"
	UsageBindNewIdentifier        UsageType = "BindNewIdentifier"
	UsageMfaVerification          UsageType = "MfaVerification"
	UsageBindMfa                  UsageType = "BindMfa"
)

// UsageTypes lists every usage type in a stable order.
func UsageTypes() []UsageType {
	return []UsageType{
		UsageRegister, UsageSignIn, UsageForgotPassword, UsageGeneric,
		UsageOrganizationInvitation, UsageUserPermissionValidation,
		UsageBindNewIdentifier, UsageMfaVerification, UsageBindMfa,
	}
}

// Valid reports whether u is one of the known usage types.
func (u UsageType) Valid() bool {
	for _, k := range UsageTypes() {
		if u == k {
			return true
		}
	}
	return false
}
