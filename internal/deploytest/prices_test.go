package deploytest

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/metering"
)

// The shipped deployments price their usage out of the box: compose mounts
// the example price table and points every replica at it; the Kubernetes base
// generates a ConfigMap from its copy (kept equal to the example) and mounts
// it where GATEWAY_PRICES_FILE says.
func TestShippedPriceTables(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	example := filepath.Join(root, "deploy/examples/prices.yaml")
	if _, err := metering.LoadPrices(example); err != nil {
		t.Fatalf("the example price table: %v", err)
	}
	want, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}

	c := loadCompose(t)
	for _, name := range keys(c.gateways) {
		g := c.gateways[name]
		if g.args[0] != "serve" {
			continue
		}
		file := g.env["GATEWAY_PRICES_FILE"]
		src, ok := c.volumeTargets(g.svc)[file]
		if file == "" || !ok {
			t.Errorf("compose service %s: no price table (GATEWAY_PRICES_FILE %q mounted: %v)", name, file, ok)
			continue
		}
		if _, err := metering.LoadPrices(src); err != nil {
			t.Errorf("compose service %s: %v", name, err)
		}
	}

	base := filepath.Join(root, "deploy/kubernetes/base")
	copyOf, err := os.ReadFile(filepath.Join(base, "prices.yaml"))
	if err != nil || !bytes.Equal(copyOf, want) {
		t.Errorf("deploy/kubernetes/base/prices.yaml differs from deploy/examples/prices.yaml (%v): copy it again", err)
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Env []struct {
							Name, Value string
						}
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name      string
						ConfigMap *struct{ Name string } `yaml:"configMap"`
					}
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(base, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dep); err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		t.Fatal("no container in the base Deployment")
	}
	file := ""
	for _, e := range spec.Containers[0].Env {
		if e.Name == "GATEWAY_PRICES_FILE" {
			file = e.Value
		}
	}
	mounted := ""
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.MountPath == path.Dir(file) {
			mounted = m.Name
		}
	}
	configMap := ""
	for _, v := range spec.Volumes {
		if v.Name == mounted && v.ConfigMap != nil {
			configMap = v.ConfigMap.Name
		}
	}
	if file == "" || path.Base(file) != "prices.yaml" || configMap != "bedrock-gateway-prices" {
		t.Errorf("base Deployment: GATEWAY_PRICES_FILE %q, mounted from volume %q of ConfigMap %q; want prices.yaml from bedrock-gateway-prices", file, mounted, configMap)
	}
	k := readKustomization(t, base)
	found := false
	for _, g := range k.ConfigMapGenerator {
		if g.Name == "bedrock-gateway-prices" && len(g.Files) == 1 && g.Files[0] == "prices.yaml" {
			found = true
		}
	}
	if !found {
		t.Error("the base kustomization does not generate bedrock-gateway-prices from prices.yaml")
	}
}
