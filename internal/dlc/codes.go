package dlc

// knownCodes are the answers a metric may name: "200", the error codes the API reference lists
// (section 4, "Typical codes", plus the signing errors of section 5 that dlcsim also answers) and
// the Kinds the client reports for failures without a code. An endpoint chooses its codes, so any
// other value is reported as CodeOther: every distinct label value is a series kept forever.
var knownCodes = map[string]bool{
	"200": true,
	// Throttling.
	"Throttling": true, "Throttling.User": true, "Throttling.Api": true,
	// Server failures.
	"ServiceUnavailable": true, "ServiceUnavailableTemporary": true, "InternalError": true, "InternalFailure": true,
	// Bad requests.
	"InvalidParameter": true, "MissingParameter": true, "InvalidVersion": true, "InvalidAction.NotFound": true,
	// Credentials and signatures.
	"InvalidAccessKeyId.NotFound": true, "InvalidAccessKeyId.Inactive": true, "SignatureDoesNotMatch": true,
	"IncompleteSignature": true, "InvalidTimeStamp.Expired": true, "InvalidTimeStamp.Format": true,
	"SignatureNonceUsed": true, "MissingSignatureNonce": true, "MissingAuthorization": true,
	"InvalidSecurityToken.Expired": true, "InvalidSecurityToken.MismatchWithAccessKey": true,
	"InvalidCredentials": true, "MissingSecurityToken": true,
	// Permissions.
	"Forbidden.RAM": true, "NoPermission": true, "Forbidden": true,
	// Kinds of failures without an API code.
	string(KindThrottled): true, string(KindServer): true, string(KindNetwork): true, string(KindBadResponse): true,
	string(KindUnauthorized): true, string(KindInvalidRequest): true, string(KindCircuitOpen): true,
	string(KindCanceled): true,
}

// CodeOther stands for every answer code outside the known set.
const CodeOther = "other"

// BoundedCode returns code when it is a known answer code and CodeOther otherwise, so that a
// value an endpoint made up never becomes a metric label.
func BoundedCode(code string) string {
	if knownCodes[code] {
		return code
	}
	return CodeOther
}
