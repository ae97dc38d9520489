package state

import "strings"

// Async output destinations. StartAsyncInvoke names an S3 location that
// Bedrock writes with the hub's identity, so an entitlement lists where its
// members may write (async_output_prefixes).
const (
	// AnyAsyncOutput, alone in async_output_prefixes, allows any destination.
	AnyAsyncOutput = "*"
	// AccountPlaceholder in a prefix stands for the caller's account ID.
	AccountPlaceholder = "{account}"

	maxS3URILen            = 1024 // Bedrock's bound on an S3 URI
	maxAsyncOutputPrefixes = 100
)

// IsS3URI reports whether s is an S3 location the gateway passes on:
// "s3://", a bucket name (3 to 63 lowercase letters, digits, '.' and '-',
// starting and ending with a letter or digit), then optionally "/" and a key
// path of safe characters, at most 1024 bytes in all. Path segments may not be
// empty, "." or ".." (a trailing "/" aside): a destination that a client or
// service could normalize differently could leave the prefix it was checked
// against. '%', '\', '?', '#', spaces and braces are refused for the same
// reason.
func IsS3URI(s string) bool {
	if len(s) > maxS3URILen || !strings.HasPrefix(s, "s3://") {
		return false
	}
	bucket, path, hasPath := strings.Cut(s[len("s3://"):], "/")
	if !isBucketName(bucket) {
		return false
	}
	if !hasPath {
		return true
	}
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return true // "s3://bucket/"
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !isKeyChar(seg[i]) {
				return false
			}
		}
	}
	return true
}

func isBucketName(s string) bool {
	if len(s) < 3 || len(s) > 63 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// isKeyChar: letters, digits and the punctuation S3 documents as safe in keys,
// plus a few common in partitioned layouts (= + , : @ ~).
func isKeyChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!*'()=+,:@~", c) >= 0
}

// sampleAccount stands in for {account} when a prefix is checked.
const sampleAccount = "000000000000"

// IsAsyncOutputPrefix reports whether p is a valid async_output_prefixes entry
// other than "*": an S3 URI (as IsS3URI) once every {account} is replaced by
// an account ID. A '*' is refused: prefixes are literal, and a '*' inside one
// would read as a wildcard it is not.
func IsAsyncOutputPrefix(p string) bool {
	return !strings.Contains(p, "*") && IsS3URI(strings.ReplaceAll(p, AccountPlaceholder, sampleAccount))
}

// AsyncOutputAllowed reports whether uri, chosen by account, lies under one of
// prefixes: "*" allows any valid URI; otherwise, with {account} replaced by the
// account, uri equals the prefix or continues it after a "/" (whole path
// segments: s3://b/out allows s3://b/out/x, never s3://b/outside). No prefix
// allows nothing.
func AsyncOutputAllowed(prefixes []string, account, uri string) bool {
	if !IsS3URI(uri) {
		return false
	}
	for _, p := range prefixes {
		if p == AnyAsyncOutput {
			return true
		}
		p = strings.TrimSuffix(strings.ReplaceAll(p, AccountPlaceholder, account), "/")
		if uri == p || strings.HasPrefix(uri, p+"/") {
			return true
		}
	}
	return false
}
