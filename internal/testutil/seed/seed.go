// Package seed holds the state document several packages' tests share: the
// state-file example as the README shows it (an organization, one entitlement
// shared with an OU and an account, a SigV4 credential whose secret comes
// from the environment, one with an inline secret, and an inline API key).
// Tests that need a differently shaped organization keep their own document.
package seed

import (
	_ "embed"
	"os"
	"path/filepath"
	"testing"
)

//go:embed example.yaml
var example string // a string: nothing can change it

const (
	// SupportBotSecretEnv is the variable the example's support-bot
	// credential reads its secret from (secret_env).
	SupportBotSecretEnv = "SUPPORT_BOT_SECRET"
	// SupportBotSecret is the value tests give SupportBotSecretEnv.
	SupportBotSecret = "support-bot-secret-0123456789"
	// NotebooksKeySHA256 is the SHA-256 of the example's inline API key
	// ("notebooks-demo-key"), what is sent and stored instead of the key.
	NotebooksKeySHA256 = "94c87ac104059151e89925f852355448f16a90ca63d73b1c36eda668c4d41615"
)

// Example returns the example state document (YAML).
func Example() string { return example }

// ExampleFile writes the example to a file in a test's temporary directory
// and returns its path, for code that reads a state file by name.
func ExampleFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.yaml")
	if err := os.WriteFile(p, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// LookupEnv resolves the example's environment variables (secret_env) as
// os.LookupEnv would with SupportBotSecretEnv set.
func LookupEnv(name string) (string, bool) {
	if name == SupportBotSecretEnv {
		return SupportBotSecret, true
	}
	return "", false
}
