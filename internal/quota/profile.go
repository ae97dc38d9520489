package quota

import "strings"

// profileSep joins a ledger line's model and the application inference
// profile its calls went to (billing.profiles): "<model>#<profile ARN>". The
// model stays first and whole, so pricing keys on it; lines of calls to the
// model itself carry no suffix and read as before. Reconciling against
// Bedrock's own per-ModelId figures reads the profile ARN where there is one.
const profileSep = "#"

// ledgerModel is the model part of a ledger field.
func ledgerModel(model, profile string) string {
	if profile == "" {
		return model
	}
	return model + profileSep + profile
}

// splitLedgerModel splits a ledger field's model part into the model and
// the profile ARN (empty when the call went to the model). It splits at the
// last "#arn:", since a profile is always an ARN.
func splitLedgerModel(m string) (model, profile string) {
	if i := strings.LastIndex(m, profileSep+"arn:"); i >= 0 {
		return m[:i], m[i+len(profileSep):]
	}
	return m, ""
}
