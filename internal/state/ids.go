package state

// ID format checks. They are hand-written rather than regular expressions because
// the admin API and the state file call them for every item, and a share list can
// hold a million targets.

// IsOrgID reports whether s is an organization ID: "o-" and 10 to 32 lowercase
// letters or digits.
func IsOrgID(s string) bool {
	return len(s) >= 2 && s[:2] == "o-" && lowerAlnum(s[2:], 10, 32)
}

// IsRootID reports whether s is an organization root ID: "r-" and 4 to 32
// lowercase letters or digits.
func IsRootID(s string) bool {
	return len(s) >= 2 && s[:2] == "r-" && lowerAlnum(s[2:], 4, 32)
}

// IsOUID reports whether s is an organizational unit ID: "ou-", 4 to 32 lowercase
// letters or digits, "-", then 8 to 32 lowercase letters or digits.
func IsOUID(s string) bool {
	if len(s) < 3 || s[:3] != "ou-" {
		return false
	}
	rest := s[3:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '-' {
			return lowerAlnum(rest[:i], 4, 32) && lowerAlnum(rest[i+1:], 8, 32)
		}
	}
	return false
}

// IsAccountID reports whether s is an AWS account ID: exactly 12 digits.
func IsAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsEntitlementName reports whether s is a valid entitlement name: 1 to 63
// lowercase letters, digits and '-', starting and ending with a letter or digit.
func IsEntitlementName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// IsAccessKeyID reports whether s is a gateway-issued access key ID: "GW" and 18
// uppercase letters or digits (20 characters, like an AWS access key ID).
func IsAccessKeyID(s string) bool {
	if len(s) != 20 || s[:2] != "GW" {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isKeySHA256 reports whether s is 64 lowercase hex digits.
func isKeySHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func lowerAlnum(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerAlnum(s[i]) {
			return false
		}
	}
	return true
}
