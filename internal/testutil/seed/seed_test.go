package seed

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

func TestExample(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("notebooks-demo-key"))
	if got := hex.EncodeToString(sum[:]); got != NotebooksKeySHA256 {
		t.Errorf("NotebooksKeySHA256 = %s, want the SHA-256 of the inline key, %s", NotebooksKeySHA256, got)
	}
	for _, want := range []string{"key: notebooks-demo-key", "secret_env: " + SupportBotSecretEnv} {
		if !strings.Contains(Example(), want) {
			t.Errorf("the example lacks %q", want)
		}
	}
	b, err := os.ReadFile(ExampleFile(t))
	if err != nil || string(b) != Example() {
		t.Fatalf("ExampleFile wrote %q, %v", b, err)
	}
	if v, ok := LookupEnv(SupportBotSecretEnv); !ok || v != SupportBotSecret {
		t.Errorf("LookupEnv(%s) = %q, %v", SupportBotSecretEnv, v, ok)
	}
	if _, ok := LookupEnv("OTHER"); ok {
		t.Error("LookupEnv resolved a variable the example does not use")
	}
}
