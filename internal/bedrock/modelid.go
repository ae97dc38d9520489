package bedrock

import "strings"

// MaxModelIDLen is the longest model identifier Bedrock accepts.
const MaxModelIDLen = 2048

// ModelKind says which of Bedrock's model identifier forms a ModelID has.
type ModelKind uint8

// The model identifier forms Bedrock Runtime accepts in a path. KindInvalid is the zero value.
const (
	KindInvalid ModelKind = iota
	// KindBaseModel is a base model ID such as "anthropic.claude-3-haiku-20240307-v1:0".
	KindBaseModel
	// KindInferenceProfile is a cross-region inference profile ID: a geo prefix and a
	// base model ID, such as "us.anthropic.claude-3-5-haiku-20241022-v1:0".
	KindInferenceProfile
	// KindFoundationModelARN is arn:...:bedrock:<region>::foundation-model/<id> (no account).
	KindFoundationModelARN
	// KindInferenceProfileARN is arn:...:bedrock:<region>:<acct>:inference-profile/<id>.
	KindInferenceProfileARN
	// KindApplicationInferenceProfileARN is ...:application-inference-profile/<id>.
	KindApplicationInferenceProfileARN
	// KindProvisionedModelARN is ...:provisioned-model/<id>.
	KindProvisionedModelARN
	// KindCustomModelARN is ...:custom-model/... or ...:custom-model-deployment/....
	KindCustomModelARN
	// KindImportedModelARN is ...:imported-model/<id>.
	KindImportedModelARN
	// KindMarketplaceEndpointARN is arn:...:sagemaker:<region>:<acct>:endpoint/<name>.
	KindMarketplaceEndpointARN
	kindCount
)

var kindNames = [kindCount]string{
	KindInvalid:                        "invalid",
	KindBaseModel:                      "base-model",
	KindInferenceProfile:               "inference-profile",
	KindFoundationModelARN:             "foundation-model-arn",
	KindInferenceProfileARN:            "inference-profile-arn",
	KindApplicationInferenceProfileARN: "application-inference-profile-arn",
	KindProvisionedModelARN:            "provisioned-model-arn",
	KindCustomModelARN:                 "custom-model-arn",
	KindImportedModelARN:               "imported-model-arn",
	KindMarketplaceEndpointARN:         "marketplace-endpoint-arn",
}

// String returns a short kebab-case name of the kind, e.g. "inference-profile-arn".
func (k ModelKind) String() string {
	if k >= kindCount {
		return "invalid"
	}
	return kindNames[k]
}

// IsARN reports whether the kind is one of the ARN forms.
func (k ModelKind) IsARN() bool { return k >= KindFoundationModelARN && k < kindCount }

// ModelID is a parsed Bedrock model identifier.
type ModelID struct {
	// Raw is the identifier exactly as given.
	Raw  string
	Kind ModelKind
	// Partition, Region and Account are set for ARNs only (Account is empty for a
	// foundation-model ARN).
	Partition, Region, Account string
	// Resource is, for an ARN, the part after "<type>/"; for any other form, Raw.
	Resource string
	// Geo is the geo prefix of a cross-region inference profile (us, eu, apac,
	// us-gov, jp, au, global), for the ID and its ARN; empty otherwise.
	Geo string
	// BaseModel is the base model ID when it can be known from the identifier alone
	// (base ID, inference profile ID, foundation-model ARN, system inference-profile
	// ARN); empty otherwise (application profiles, provisioned, custom, ...).
	BaseModel string
}

// Provider returns the model provider named by the base model ID's prefix
// ("anthropic", "amazon", "meta", "mistral", "cohere", "ai21", ...), or "" when the
// base model is not known.
func (m ModelID) Provider() string {
	dot := strings.IndexByte(m.BaseModel, '.')
	if dot <= 0 {
		return ""
	}
	return m.BaseModel[:dot]
}

// Geographic prefixes of cross-region inference profiles.
var geoPrefixes = [...]string{"us", "eu", "apac", "us-gov", "jp", "au", "global"}

// ARN partitions Bedrock (or a future region of it) lives in.
var partitions = [...]string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

// Bedrock ARN resource types and the kind each maps to.
var bedrockResourceTypes = [...]struct {
	typ  string
	kind ModelKind
}{
	{"foundation-model", KindFoundationModelARN},
	{"inference-profile", KindInferenceProfileARN},
	{"application-inference-profile", KindApplicationInferenceProfileARN},
	{"provisioned-model", KindProvisionedModelARN},
	{"custom-model", KindCustomModelARN},
	{"custom-model-deployment", KindCustomModelARN},
	{"imported-model", KindImportedModelARN},
}

// ParseModelID parses any of the model identifier forms Bedrock accepts in a
// request path. It is permissive about the characters of base model IDs (Bedrock
// adds models all the time) and strict about ARN structure. The error is a
// *Error (ValidationException) whose message never echoes the input.
func ParseModelID(s string) (ModelID, error) {
	if s == "" {
		return ModelID{}, invalidModelID("it is empty")
	}
	if len(s) > MaxModelIDLen {
		return ModelID{}, invalidModelID("it is longer than 2048 characters")
	}
	if strings.HasPrefix(s, "arn:") {
		return parseModelARN(s)
	}
	m := ModelID{Raw: s, Resource: s}
	if geo, base, ok := splitGeo(s); ok {
		if msg := checkBaseModelID(base); msg != "" {
			return ModelID{}, invalidModelID(msg)
		}
		m.Kind, m.Geo, m.BaseModel = KindInferenceProfile, geo, base
		return m, nil
	}
	if msg := checkBaseModelID(s); msg != "" {
		return ModelID{}, invalidModelID(msg)
	}
	m.Kind, m.BaseModel = KindBaseModel, s
	return m, nil
}

func invalidModelID(why string) *Error {
	return Validation("The provided model identifier is invalid: " + why + ".")
}

// splitGeo splits "<geo>.<base>" when the first label is a known geo prefix and
// what follows still has a provider label.
func splitGeo(s string) (geo, base string, ok bool) {
	dot := strings.IndexByte(s, '.')
	if dot <= 0 {
		return "", "", false
	}
	for _, g := range geoPrefixes {
		if s[:dot] == g {
			rest := s[dot+1:]
			if strings.IndexByte(rest, '.') > 0 {
				return g, rest, true
			}
		}
	}
	return "", "", false
}

// checkBaseModelID returns why s is not a base model ID ("" when it is one): a
// provider label, a dot, a name; lowercase letters, digits, '-', '.', ':'.
func checkBaseModelID(s string) string {
	if msg := checkModelChars(s); msg != "" {
		return msg
	}
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return "a model ID has the form provider.model-name"
	}
	if s[len(s)-1] == '.' || s[len(s)-1] == ':' {
		return "a model ID must end with a letter or digit"
	}
	return ""
}

func checkModelChars(s string) string {
	if s == "" {
		return "the model name is empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':') {
			return "a model ID may contain only lowercase letters, digits, '-', '.' and ':'"
		}
	}
	return ""
}

func parseModelARN(s string) (ModelID, error) {
	// arn:partition:service:region:account:resource; the resource may itself hold ':'.
	var f [5]string
	rest := s
	for i := range f {
		c := strings.IndexByte(rest, ':')
		if c < 0 {
			return ModelID{}, invalidModelID("an ARN has the form arn:partition:service:region:account:resource")
		}
		f[i], rest = rest[:c], rest[c+1:]
	}
	partition, service, region, account, resource := f[1], f[2], f[3], f[4], rest
	if !knownPartition(partition) {
		return ModelID{}, invalidModelID("the ARN partition is not recognized")
	}
	if !validRegion(region) {
		return ModelID{}, invalidModelID("the ARN region is not valid")
	}
	slash := strings.IndexByte(resource, '/')
	if slash <= 0 || slash == len(resource)-1 {
		return ModelID{}, invalidModelID("the ARN resource must have the form type/name")
	}
	typ, name := resource[:slash], resource[slash+1:]
	m := ModelID{Raw: s, Partition: partition, Region: region, Account: account, Resource: name}

	switch service {
	case "sagemaker":
		if typ != "endpoint" {
			return ModelID{}, invalidModelID("a SageMaker ARN must name an endpoint")
		}
		if !validAccount(account) {
			return ModelID{}, invalidModelID("the ARN account must be 12 digits")
		}
		if !validEndpointName(name) {
			return ModelID{}, invalidModelID("the SageMaker endpoint name is not valid")
		}
		m.Kind = KindMarketplaceEndpointARN
		return m, nil
	case "bedrock":
	default:
		return ModelID{}, invalidModelID("the ARN service must be bedrock")
	}

	for _, rt := range bedrockResourceTypes {
		if rt.typ == typ {
			m.Kind = rt.kind
		}
	}
	switch m.Kind {
	case KindInvalid:
		return ModelID{}, invalidModelID("the ARN resource type is not a Bedrock model type")
	case KindFoundationModelARN:
		if account != "" {
			return ModelID{}, invalidModelID("a foundation-model ARN has an empty account")
		}
		// Only the character set is checked: the gateway also accepts
		// foundation-model/<entitlement name>, which has no provider label.
		if msg := checkModelChars(name); msg != "" {
			return ModelID{}, invalidModelID(msg)
		}
		m.BaseModel = name
		return m, nil
	}
	if !validAccount(account) {
		return ModelID{}, invalidModelID("the ARN account must be 12 digits")
	}
	if !validResourceName(name) {
		return ModelID{}, invalidModelID("the ARN resource name contains characters that are not allowed")
	}
	if m.Kind == KindInferenceProfileARN {
		if geo, base, ok := splitGeo(name); ok && checkBaseModelID(base) == "" {
			m.Geo, m.BaseModel = geo, base
		}
	}
	return m, nil
}

func knownPartition(p string) bool {
	for _, k := range partitions {
		if p == k {
			return true
		}
	}
	return false
}

// validRegion accepts region names such as us-east-1, us-gov-west-1, cn-north-1,
// us-isob-east-1 and eusc-de-east-1: lowercase labels joined by '-', the last one
// a number.
func validRegion(r string) bool {
	if len(r) < 4 || len(r) > 32 || r[0] < 'a' || r[0] > 'z' {
		return false
	}
	last := strings.LastIndexByte(r, '-')
	if last <= 0 || last == len(r)-1 {
		return false
	}
	for i := 0; i < last; i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') || c == '-' && r[i-1] == '-' {
			return false
		}
	}
	for i := last + 1; i < len(r); i++ {
		if r[i] < '0' || r[i] > '9' {
			return false
		}
	}
	return true
}

func validAccount(a string) bool {
	if len(a) != 12 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

// validResourceName accepts the characters Bedrock resource IDs and names are
// made of; custom-model resources may carry '/' and ':'.
func validResourceName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@') {
			return false
		}
	}
	return true
}

// validEndpointName follows SageMaker: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
func validEndpointName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// IsEntitlementName reports whether s is a valid managed entitlement name:
// lowercase letters, digits and '-', 1-63 characters, not starting or ending with '-'.
func IsEntitlementName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
