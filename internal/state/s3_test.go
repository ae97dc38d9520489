package state

import (
	"strings"
	"testing"
)

func TestIsS3URI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri  string
		want bool
	}{
		{"s3://bucket", true},
		{"s3://bucket/", true},
		{"s3://my.bucket-1/out/2026=11/job_1/", true},
		{"s3://abc/" + strings.Repeat("k", 1024-len("s3://abc/")), true},
		{"s3://abc/" + strings.Repeat("k", 1025-len("s3://abc/")), false},
		{"", false},
		{"S3://bucket", false},
		{"https://bucket/out", false},
		{"s3://", false},
		{"s3:///out", false},
		{"s3://ab", false},                         // bucket too short
		{"s3://" + strings.Repeat("b", 64), false}, // bucket too long
		{"s3://Bucket/out", false},
		{"s3://-bucket", false},
		{"s3://bucket-", false},
		{"s3://bu..cket", false},
		{"s3://bucket_1", false},
		{"s3://bucket/a/../b", false},
		{"s3://bucket/..", false},
		{"s3://bucket/./a", false},
		{"s3://bucket/a/.", false},
		{"s3://bucket//a", false},
		{"s3://bucket/a//", false},
		{"s3://bucket/a%2F..%2Fb", false},
		{`s3://bucket/a\..\b`, false},
		{"s3://bucket/a?b", false},
		{"s3://bucket/a#b", false},
		{"s3://bucket/a b", false},
		{"s3://bucket/a\nb", false},
		{"s3://bucket/{account}", false},
		{"s3://bucket/é", false},
	}
	for _, tt := range tests {
		if got := IsS3URI(tt.uri); got != tt.want {
			t.Errorf("IsS3URI(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}

func TestAsyncOutputAllowed(t *testing.T) {
	t.Parallel()
	const acct = "222222222222"
	tests := []struct {
		name     string
		prefixes []string
		uri      string
		want     bool
	}{
		{"no prefixes", nil, "s3://bucket/out", false},
		{"any", []string{"*"}, "s3://anything/at/all", true},
		{"any still needs a valid URI", []string{"*"}, "s3://bucket/../x", false},
		{"exact", []string{"s3://bucket/out"}, "s3://bucket/out", true},
		{"exact with slash", []string{"s3://bucket/out"}, "s3://bucket/out/", true},
		{"beneath", []string{"s3://bucket/out"}, "s3://bucket/out/job/1", true},
		{"prefix with slash", []string{"s3://bucket/out/"}, "s3://bucket/out/job", true},
		{"prefix with slash, exact", []string{"s3://bucket/out/"}, "s3://bucket/out", true},
		{"not a segment boundary", []string{"s3://bucket/out"}, "s3://bucket/outside", false},
		{"sibling", []string{"s3://bucket/out"}, "s3://bucket/other", false},
		{"parent", []string{"s3://bucket/out/x"}, "s3://bucket/out", false},
		{"whole bucket", []string{"s3://bucket"}, "s3://bucket/any/key", true},
		{"bucket name prefix", []string{"s3://bucket"}, "s3://bucket-evil/out", false},
		{"dot-dot escapes", []string{"s3://bucket/out"}, "s3://bucket/out/../secret", false},
		{"account in path", []string{"s3://bucket/teams/{account}"}, "s3://bucket/teams/" + acct + "/job", true},
		{"other account in path", []string{"s3://bucket/teams/{account}"}, "s3://bucket/teams/333333333333/job", false},
		{"account prefix of longer segment", []string{"s3://bucket/teams/{account}"}, "s3://bucket/teams/" + acct + "0/job", false},
		{"literal placeholder", []string{"s3://bucket/teams/{account}"}, "s3://bucket/teams/{account}/job", false},
		{"account in bucket", []string{"s3://out-{account}"}, "s3://out-" + acct + "/x", true},
		{"second prefix", []string{"s3://a-bucket/x", "s3://b-bucket/y"}, "s3://b-bucket/y/z", true},
		{"case differs", []string{"s3://bucket/Out"}, "s3://bucket/out", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := AsyncOutputAllowed(tt.prefixes, acct, tt.uri); got != tt.want {
				t.Errorf("AsyncOutputAllowed(%q, %q) = %v, want %v", tt.prefixes, tt.uri, got, tt.want)
			}
		})
	}
}
