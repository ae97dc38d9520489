package bedrock

import (
	"net/http"
	"strings"
)

// Service tiers (ServiceTierType) and latency modes (PerformanceConfigLatency)
// a request may ask for. TierOptimized is not a Bedrock service tier: it is
// the gateway's name for latency-optimized inference, priced on its own.
const (
	TierDefault  = "default"
	TierPriority = "priority"
	TierFlex     = "flex"
	TierReserved = "reserved"

	LatencyStandard  = "standard"
	LatencyOptimized = "optimized"

	TierOptimized = "optimized"
)

// IsServiceTier reports whether s is a Bedrock service tier.
func IsServiceTier(s string) bool {
	switch s {
	case TierDefault, TierPriority, TierFlex, TierReserved:
		return true
	}
	return false
}

// IsPricingTier reports whether s is a tier a request can be recorded and
// priced under: a service tier, "optimized", or a non-default service tier
// with "+optimized".
func IsPricingTier(s string) bool {
	base, opt := strings.CutSuffix(s, "+"+TierOptimized)
	if opt {
		return base != TierDefault && IsServiceTier(base)
	}
	return s == TierOptimized || IsServiceTier(s)
}

// Request headers that choose a tier, a latency mode or a guardrail
// (InvokeModel and InvokeModelWithResponseStream), in canonical form.
const (
	HeaderServiceTier       = "X-Amzn-Bedrock-Service-Tier"
	HeaderLatency           = "X-Amzn-Bedrock-Performanceconfig-Latency"
	HeaderGuardrailID       = "X-Amzn-Bedrock-Guardrailidentifier"
	HeaderGuardrailVersion  = "X-Amzn-Bedrock-Guardrailversion"
	maxGuardrailIdentifier  = 2048
	guardrailResourcePrefix = "guardrail/"
)

// RequestOptions are the priced or governed choices a request makes: its
// service tier and latency mode (empty when it names none) and the guardrails
// it names (identifiers or ARNs, as sent).
type RequestOptions struct {
	ServiceTier string
	Latency     string
	Guardrails  []string
}

// PricingTier is the tier the request is recorded and priced under: its
// service tier ("default" when none), with latency-optimized inference as
// "optimized" (or "<tier>+optimized" with a non-default service tier).
func (o RequestOptions) PricingTier() string {
	tier := o.ServiceTier
	if tier == "" {
		tier = TierDefault
	}
	if o.Latency != LatencyOptimized {
		return tier
	}
	if tier == TierDefault {
		return TierOptimized
	}
	return tier + "+" + TierOptimized
}

// Merge adds the choices of another source of the same request (headers and
// body); naming two different tiers or latency modes is refused, since the
// gateway could not tell which one Bedrock would apply.
func (o *RequestOptions) Merge(p RequestOptions) error {
	if p.ServiceTier != "" {
		if o.ServiceTier != "" && o.ServiceTier != p.ServiceTier {
			return Validation("The request names two different service tiers.")
		}
		o.ServiceTier = p.ServiceTier
	}
	if p.Latency != "" {
		if o.Latency != "" && o.Latency != p.Latency {
			return Validation("The request names two different latency modes.")
		}
		o.Latency = p.Latency
	}
	o.Guardrails = append(o.Guardrails, p.Guardrails...)
	return nil
}

// HeaderOptions reads the tier, latency and guardrail headers of a request.
// Values that are not Bedrock's, repeated headers and malformed guardrail
// identifiers are ValidationExceptions.
func HeaderOptions(h http.Header) (RequestOptions, error) {
	var o RequestOptions
	one := func(name string) (string, bool, error) {
		vv := h[name]
		switch len(vv) {
		case 0:
			return "", false, nil
		case 1:
			return vv[0], true, nil
		}
		return "", false, Validation("The header " + name + " is given more than once.")
	}
	v, ok, err := one(HeaderServiceTier)
	if err != nil {
		return o, err
	}
	if ok {
		if !IsServiceTier(v) {
			return o, Validation("The service tier must be priority, default, flex or reserved.")
		}
		o.ServiceTier = v
	}
	if v, ok, err = one(HeaderLatency); err != nil {
		return o, err
	} else if ok {
		if v != LatencyStandard && v != LatencyOptimized {
			return o, Validation("The latency must be standard or optimized.")
		}
		o.Latency = v
	}
	if v, ok, err = one(HeaderGuardrailID); err != nil {
		return o, err
	} else if ok {
		if _, valid := ParseGuardrail(v); !valid {
			return o, Validation("The guardrail identifier is malformed.")
		}
		o.Guardrails = append(o.Guardrails, v)
	}
	return o, nil
}

// bodyOptions reads serviceTier.type, performanceConfig.latency and
// guardrailConfig.guardrailIdentifier from raw members of a Converse or
// ConverseStream body (nil when absent).
func bodyOptions(serviceTier, performance, guardrail []byte) (RequestOptions, error) {
	var o RequestOptions
	member := func(obj []byte, field, name string) (string, bool, error) {
		if obj == nil || string(obj) == "null" {
			return "", false, nil
		}
		var val []byte
		if err := eachMember(obj, func(k, v []byte) {
			if string(k) == name {
				val = v
			}
		}); err != nil {
			return "", false, Validation("The request field " + field + " must be an object.")
		}
		if val == nil || string(val) == "null" {
			return "", false, nil
		}
		s, ok := stringValue(val)
		if !ok {
			return "", false, Validation("The request field " + field + "." + name + " must be a string.")
		}
		return string(s), true, nil
	}
	v, ok, err := member(serviceTier, "serviceTier", "type")
	if err != nil {
		return o, err
	}
	if ok {
		if !IsServiceTier(v) {
			return o, Validation("The service tier must be priority, default, flex or reserved.")
		}
		o.ServiceTier = v
	}
	if v, ok, err = member(performance, "performanceConfig", "latency"); err != nil {
		return o, err
	} else if ok {
		if v != LatencyStandard && v != LatencyOptimized {
			return o, Validation("The latency must be standard or optimized.")
		}
		o.Latency = v
	}
	if v, ok, err = member(guardrail, "guardrailConfig", "guardrailIdentifier"); err != nil {
		return o, err
	} else if ok {
		if _, valid := ParseGuardrail(v); !valid {
			return o, Validation("The guardrail identifier is malformed.")
		}
		o.Guardrails = append(o.Guardrails, v)
	}
	return o, nil
}

// GuardrailRef is a parsed guardrail identifier: a bare ID, or an ARN
// arn:<partition>:bedrock:<region>:<account>:guardrail/<id>.
type GuardrailRef struct {
	ID string
	// ARN, Region and Account are empty for a bare ID.
	ARN, Region, Account string
}

// ParseGuardrail parses a guardrail identifier as Bedrock accepts it: an ID
// of lowercase letters and digits, or a guardrail ARN.
func ParseGuardrail(s string) (GuardrailRef, bool) {
	if s == "" || len(s) > maxGuardrailIdentifier {
		return GuardrailRef{}, false
	}
	if !strings.HasPrefix(s, "arn:") {
		if !isGuardrailID(s) {
			return GuardrailRef{}, false
		}
		return GuardrailRef{ID: s}, true
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || !strings.HasPrefix(parts[1], "aws") || parts[2] != "bedrock" || parts[3] == "" ||
		len(parts[4]) != 12 || !allDigits(parts[4]) || !strings.HasPrefix(parts[5], guardrailResourcePrefix) {
		return GuardrailRef{}, false
	}
	id := parts[5][len(guardrailResourcePrefix):]
	if !isGuardrailID(id) {
		return GuardrailRef{}, false
	}
	for i := 0; i < len(parts[3]); i++ {
		if c := parts[3][i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return GuardrailRef{}, false
		}
	}
	return GuardrailRef{ID: id, ARN: s, Region: parts[3], Account: parts[4]}, true
}

func isGuardrailID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
