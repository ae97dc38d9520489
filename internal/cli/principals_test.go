package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestPrincipalsCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.apply()
	const (
		a = "arn:aws:iam::222222222222:role/compromised-*"
		b = "arn:aws:iam::333333333333:user/ops/mallory"
	)
	wantContains(t, h.ok("principals", "list"), "no denied principals")
	wantContains(t, h.ok("principals", "deny", a, b), "denied principal "+b)
	if got := h.store.st.DeniedPrincipals; !slices.Equal(got, []string{a, b}) {
		t.Fatalf("stored %q", got)
	}
	out := h.ok("principals", "list")
	if !strings.Contains(out, a) || !strings.Contains(out, b) {
		t.Fatalf("list:\n%s", out)
	}
	wantContains(t, h.ok("principals", "list", "-o", "json"), `"denied_principals"`)

	// A malformed pattern among several denies none of them.
	_, _, err := h.run("principals", "deny", "arn:aws:iam::222222222222:role/x", "support-*")
	if err == nil || !strings.Contains(err.Error(), `"support-*"`) {
		t.Fatalf("malformed pattern: err %v", err)
	}
	if got := h.store.st.DeniedPrincipals; len(got) != 2 {
		t.Fatalf("a refused deny changed the list: %q", got)
	}

	wantContains(t, h.ok("principals", "allow", b), "allowed principal "+b)
	if got := h.store.st.DeniedPrincipals; !slices.Equal(got, []string{a}) {
		t.Fatalf("after allow: %q", got)
	}
	if _, _, err := h.run("principals", "allow", b); err == nil {
		t.Fatal("allowing a pattern not on the list succeeded")
	}
	if _, _, err := h.run("principals", "deny"); err == nil {
		t.Fatal("deny without a pattern succeeded")
	}
}
