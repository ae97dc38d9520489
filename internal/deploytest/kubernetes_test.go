package deploytest

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/bedrock-gateway/gateway/internal/config"
	"github.com/bedrock-gateway/gateway/internal/metering"
	"github.com/bedrock-gateway/gateway/internal/state"
	"github.com/bedrock-gateway/gateway/internal/testutil/prereq"
)

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// k8sObject is one manifest: its kind and metadata, and the rest to decode
// by kind.
type k8sObject struct {
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef     *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef  *keyRef `yaml:"configMapKeyRef"`
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext *struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sPodTemplate struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		ServiceAccountName            string `yaml:"serviceAccountName"`
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               *struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
		Containers []k8sContainer `yaml:"containers"`
		Volumes    []struct {
			Name      string                 `yaml:"name"`
			ConfigMap *struct{ Name string } `yaml:"configMap"`
			EmptyDir  any                    `yaml:"emptyDir"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type k8sWorkloadSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template k8sPodTemplate `yaml:"template"`
}

type k8sServiceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort any    `yaml:"targetPort"`
	} `yaml:"ports"`
}

// k8sSet is a set of manifests, as kubectl would apply them.
type k8sSet struct {
	where string
	objs  []*k8sObject
}

func (s *k8sSet) all(kind string) []*k8sObject {
	var out []*k8sObject
	for _, o := range s.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (s *k8sSet) get(kind, name string) *k8sObject {
	for _, o := range s.objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// value returns a key of a Secret or ConfigMap of the set.
func (s *k8sSet) value(t *testing.T, kind string, ref keyRef) (string, bool) {
	t.Helper()
	o := s.get(kind, ref.Name)
	if o == nil {
		return "", false
	}
	if v, ok := o.StringData[ref.Key]; ok {
		return v, true
	}
	v, ok := o.Data[ref.Key]
	if ok && kind == "Secret" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Errorf("%s: Secret %s key %s is not base64: %v", s.where, ref.Name, ref.Key, err)
		}
		v = string(b)
	}
	return v, ok
}

// environment resolves a container's environment from the set's Secrets and
// ConfigMaps; a reference to something missing is an error.
func (s *k8sSet) environment(t *testing.T, where string, c *k8sContainer) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		kind, name := "Secret", ""
		if ef.SecretRef != nil {
			name = ef.SecretRef.Name
		} else if ef.ConfigMapRef != nil {
			kind, name = "ConfigMap", ef.ConfigMapRef.Name
		}
		o := s.get(kind, name)
		if o == nil {
			t.Errorf("%s: envFrom %s %s does not exist", where, kind, name)
			continue
		}
		for k := range o.Data {
			env[k], _ = s.value(t, kind, keyRef{name, k})
		}
		maps.Copy(env, o.StringData)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil, e.ValueFrom.ConfigMapKeyRef != nil:
			kind, ref := "Secret", e.ValueFrom.SecretKeyRef
			if ref == nil {
				kind, ref = "ConfigMap", e.ValueFrom.ConfigMapKeyRef
			}
			v, ok := s.value(t, kind, *ref)
			if !ok {
				t.Errorf("%s: %s comes from %s %s key %s, which does not exist", where, e.Name, kind, ref.Name, ref.Key)
			}
			env[e.Name] = v
		}
	}
	return env
}

func decodeSpec(t *testing.T, where string, o *k8sObject, out any) {
	t.Helper()
	if err := o.Spec.Decode(out); err != nil {
		t.Fatalf("%s: %s %s spec: %v", where, o.Kind, o.Metadata.Name, err)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerArgs returns a gateway container's command line from the
// subcommand on (the image's entrypoint is the binary).
func containerArgs(t *testing.T, where string, c *k8sContainer) []string {
	t.Helper()
	if len(c.Command) > 0 {
		if c.Command[0] != "/gateway" {
			t.Errorf("%s: command %q does not run /gateway", where, c.Command)
		}
		return append(slices.Clone(c.Command[1:]), c.Args...)
	}
	if len(c.Args) == 0 {
		return []string{"serve"}
	}
	return c.Args
}

// resolvePort maps a probe or Service target port (a name or a number) to a
// container port number.
func resolvePort(c *k8sContainer, p any) (int, bool) {
	switch v := p.(type) {
	case int:
		for _, cp := range c.Ports {
			if cp.ContainerPort == v {
				return v, true
			}
		}
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

func loadBase(t *testing.T, root string) *k8sSet {
	t.Helper()
	dir := filepath.Join(root, "deploy/kubernetes/base")
	k := readKustomization(t, dir)
	set := &k8sSet{where: "deploy/kubernetes/base"}
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("base resource %s: %v", r, err)
		}
		set.objs = append(set.objs, decodeObjects(t, r, data)...)
	}
	for _, g := range k.ConfigMapGenerator {
		cm := &k8sObject{Kind: "ConfigMap", Metadata: k8sMeta{Name: g.Name}, Data: map[string]string{}}
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = path.Base(f), f
			}
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatalf("configMapGenerator %s: %v", g.Name, err)
			}
			cm.Data[key] = string(data)
		}
		set.objs = append(set.objs, cm)
	}
	return set
}

func decodeObjects(t *testing.T, where string, data []byte) []*k8sObject {
	t.Helper()
	docs, err := readYAMLDocs(data)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var out []*k8sObject
	for _, d := range docs {
		o := &k8sObject{}
		if err := d.Decode(o); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: a document without kind or metadata.name", where)
			continue
		}
		out = append(out, o)
	}
	return out
}

type kustomization struct {
	Resources []string `yaml:"resources"`
	Patches   []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

// TestKustomizationFiles: every resource, patch and generated file a
// kustomization names exists.
func TestKustomizationFiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, f := range filesUnder(t, root, []string{"deploy/kubernetes"}, func(n string) bool { return n == "kustomization.yaml" }) {
		dir := filepath.Join(root, filepath.Dir(f))
		k := readKustomization(t, dir)
		var paths []string
		for _, r := range k.Resources {
			if fi, err := os.Stat(filepath.Join(dir, r)); err == nil && fi.IsDir() {
				r = filepath.Join(r, "kustomization.yaml")
			}
			paths = append(paths, r)
		}
		for _, p := range k.Patches {
			paths = append(paths, p.Path)
		}
		for _, g := range k.ConfigMapGenerator {
			for _, file := range g.Files {
				_, file, _ = strings.Cut(file, "=")
				paths = append(paths, file)
			}
		}
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				t.Errorf("%s names %s: %v", f, p, err)
			}
		}
	}
}

func TestKubernetesBase(t *testing.T) {
	t.Parallel()
	checkKubernetes(t, loadBase(t, repoRoot(t)))
}

// TestKubernetesOverlay checks the example overlay as kustomize renders it
// (what kubectl apply -k applies).
func TestKubernetesOverlay(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var stderr strings.Builder
	cmd := exec.Command(kustomize(t), "build", filepath.Join(root, "deploy/kubernetes/overlays/example"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build overlays/example: %v\n%s", err, stderr.String())
	}
	checkKubernetes(t, &k8sSet{where: "overlays/example", objs: decodeObjects(t, "overlays/example", out)})
}

// kustomizeModule is the kustomize the overlay test renders with: the
// project can build it with nothing but Go (kubectl is not in Debian).
const kustomizeModule = "sigs.k8s.io/kustomize/kustomize/v5@v5.8.1"

// kustomize returns the path of kustomizeModule's binary, built once into
// the user's cache with go install (the module comes from the Go module
// proxy). When it cannot be built (offline) the test is skipped, except
// under CI=true, where it fails.
func kustomize(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "bedrock-gateway-"+strings.NewReplacer("/", "-", "@", "-").Replace(kustomizeModule))
	bin := filepath.Join(dir, "kustomize")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin := prereq.Program(t, "go", "https://go.dev/dl")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// Built into a directory of its own, then renamed: a concurrent run
	// never sees a half-written binary.
	tmp, err := os.MkdirTemp(cache, "bedrock-gateway-kustomize-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, goBin, "install", kustomizeModule)
	install.Dir = tmp // outside this module: go install pkg@version ignores go.mod anyway
	install.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := install.CombinedOutput(); err != nil {
		prereq.Unavailable(t, fmt.Sprintf("go install %s failed (no module proxy access?): %v\n%s", kustomizeModule, err, out))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(bin); statErr != nil { // another run won the race: use its copy
			t.Fatalf("keeping kustomize: %v", err)
		}
	}
	return bin
}

func checkKubernetes(t *testing.T, set *k8sSet) {
	t.Helper()
	s := binarySchema(t)
	deps := set.all("Deployment")
	if len(deps) != 1 {
		t.Fatalf("%s: %d Deployments, want 1", set.where, len(deps))
	}
	dep := deps[0]
	where := set.where + " Deployment " + dep.Metadata.Name
	var spec k8sWorkloadSpec
	decodeSpec(t, where, dep, &spec)
	pod := spec.Template
	if !subset(spec.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Errorf("%s: selector %v does not select its pods %v", where, spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(pod.Spec.Containers))
	}
	c := &pod.Spec.Containers[0]
	args := containerArgs(t, where, c)
	s.checkCommand(t, where, args)
	if args[0] != "serve" {
		t.Fatalf("%s: runs gateway %s, want serve", where, args[0])
	}
	env := set.environment(t, where, c)
	for k := range env {
		if strings.HasPrefix(k, "GATEWAY_") && !s.env[k] {
			t.Errorf("%s: %s is not read by the gateway", where, k)
		}
	}
	cfg, err := loadServe(args[1:], env)
	if err != nil {
		t.Fatalf("%s: gateway serve rejects its configuration: %v", where, err)
	}
	data, ops := portOf(t, cfg.Listen), portOf(t, cfg.OpsListen)
	named := map[string]string{}
	for _, p := range c.Ports {
		named[p.Name] = strconv.Itoa(p.ContainerPort)
	}
	if named["data"] != data || named["ops"] != ops || len(c.Ports) != 2 {
		t.Errorf("%s: container ports %v, want data %s and ops %s", where, named, data, ops)
	}
	checkPodProbes(t, where, c, ops)
	checkPodSecurity(t, where, &pod, c)
	checkDrain(t, where, &pod, c, cfg)
	if cfg.SpillFile != "" && !slices.ContainsFunc(c.VolumeMounts, func(m struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}) bool {
		return m.MountPath == path.Dir(cfg.SpillFile)
	}) {
		t.Errorf("%s: the spill file's directory %s is not a volume (the root filesystem is read-only)", where, path.Dir(cfg.SpillFile))
	}
	sa := set.get("ServiceAccount", pod.Spec.ServiceAccountName)
	if sa == nil || !strings.HasPrefix(sa.Metadata.Annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::") {
		t.Errorf("%s: service account %q missing or without an eks.amazonaws.com/role-arn annotation", where, pod.Spec.ServiceAccountName)
	}

	opsSvc := checkServices(t, set, c, pod.Metadata.Labels, data, ops)
	checkServiceMonitor(t, set, opsSvc)
	checkPrometheusRules(t, set)
	for _, kind := range []string{"PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		objs := set.all(kind)
		if len(objs) != 1 {
			t.Errorf("%s: %d %s, want 1", set.where, len(objs), kind)
			continue
		}
		var ref struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
		}
		decodeSpec(t, set.where, objs[0], &ref)
		if kind == "PodDisruptionBudget" && !subset(ref.Selector.MatchLabels, pod.Metadata.Labels) {
			t.Errorf("%s: the PodDisruptionBudget does not select the gateway pods", set.where)
		}
		if kind == "HorizontalPodAutoscaler" && (ref.ScaleTargetRef.Kind != "Deployment" || ref.ScaleTargetRef.Name != dep.Metadata.Name) {
			t.Errorf("%s: the HorizontalPodAutoscaler scales %+v", set.where, ref.ScaleTargetRef)
		}
	}
	checkApplyJob(t, set, cfg, opsSvc)
}

func checkPodProbes(t *testing.T, where string, c *k8sContainer, ops string) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, ""}} {
		if p.probe == nil {
			if p.path != "" {
				t.Errorf("%s: no %s probe", where, p.name)
			}
			continue
		}
		if p.probe.HTTPGet == nil {
			t.Errorf("%s: %s probe is not httpGet", where, p.name)
			continue
		}
		port, ok := resolvePort(c, p.probe.HTTPGet.Port)
		if !ok || strconv.Itoa(port) != ops {
			t.Errorf("%s: %s probe port %v is not the ops port %s", where, p.name, p.probe.HTTPGet.Port, ops)
		}
		if got := p.probe.HTTPGet.Path; !slices.Contains(probePaths, got) || (p.path != "" && got != p.path) {
			t.Errorf("%s: %s probe path %s, want %s", where, p.name, got, p.path)
		}
	}
}

func checkPodSecurity(t *testing.T, where string, pod *k8sPodTemplate, c *k8sContainer) {
	t.Helper()
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("%s: container wants readOnlyRootFilesystem true and allowPrivilegeEscalation false", where)
	}
}

// checkDrain: the grace period covers the preStop delay, the drain bounded
// by --shutdown-timeout and the settling after it.
func checkDrain(t *testing.T, where string, pod *k8sPodTemplate, c *k8sContainer, cfg *config.Serve) {
	t.Helper()
	var preStop time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Errorf("%s: no preStop sleep", where)
	} else {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second // the Kubernetes default
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := preStop + cfg.ShutdownTimeout; grace <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not exceed preStop %v + --shutdown-timeout %v", where, grace, preStop, cfg.ShutdownTimeout)
	}
}

type k8sService struct {
	name string
	spec k8sServiceSpec
	// targets maps each Service port name to the container port it reaches.
	targets map[string]string
}

// checkServices: Services selecting the gateway reach its data and ops ports
// on the same port numbers; it returns the ops Service.
func checkServices(t *testing.T, set *k8sSet, c *k8sContainer, podLabels map[string]string, data, ops string) *k8sService {
	t.Helper()
	var opsSvc *k8sService
	reached := map[string]bool{}
	for _, o := range set.all("Service") {
		svc := &k8sService{name: o.Metadata.Name, targets: map[string]string{}}
		decodeSpec(t, set.where, o, &svc.spec)
		if !subset(svc.spec.Selector, podLabels) {
			continue
		}
		where := set.where + " Service " + svc.name
		for _, p := range svc.spec.Ports {
			target := p.TargetPort
			if target == nil {
				target = p.Port
			}
			port, ok := resolvePort(c, target)
			if !ok {
				t.Errorf("%s: port %s targets %v, which the container does not expose", where, p.Name, target)
				continue
			}
			if port != p.Port {
				t.Errorf("%s: port %s is %d but reaches container port %d; keep them equal", where, p.Name, p.Port, port)
			}
			svc.targets[p.Name] = strconv.Itoa(port)
			reached[strconv.Itoa(port)] = true
			if strconv.Itoa(port) == ops {
				opsSvc = svc
			}
		}
	}
	if !reached[data] || !reached[ops] || opsSvc == nil {
		t.Fatalf("%s: no Services reach both the data port %s and the ops port %s", set.where, data, ops)
	}
	return opsSvc
}

func checkServiceMonitor(t *testing.T, set *k8sSet, opsSvc *k8sService) {
	t.Helper()
	objs := set.all("ServiceMonitor")
	if len(objs) != 1 {
		t.Fatalf("%s: %d ServiceMonitors, want 1", set.where, len(objs))
	}
	var spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	}
	decodeSpec(t, set.where, objs[0], &spec)
	svc := set.get("Service", opsSvc.name)
	if !subset(spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("%s: ServiceMonitor selector %v does not select the ops Service %s (labels %v)", set.where, spec.Selector.MatchLabels, opsSvc.name, svc.Metadata.Labels)
	}
	for _, o := range set.all("Service") {
		if o.Metadata.Name != opsSvc.name && subset(spec.Selector.MatchLabels, o.Metadata.Labels) {
			t.Errorf("%s: ServiceMonitor also selects Service %s", set.where, o.Metadata.Name)
		}
	}
	for _, e := range spec.Endpoints {
		if _, ok := opsSvc.targets[e.Port]; !ok || e.Path != "/metrics" {
			t.Errorf("%s: ServiceMonitor scrapes port %q path %q; want an ops Service port and /metrics", set.where, e.Port, e.Path)
		}
	}
}

var metricRe = regexp.MustCompile(`\bgateway_[a-z0-9_]+`)

// checkPrometheusRules: every gateway_* series an alert uses is a metric the
// gateway registers.
func checkPrometheusRules(t *testing.T, set *k8sSet) {
	t.Helper()
	known := gatewayMetrics()
	for _, o := range set.all("PrometheusRule") {
		var spec struct {
			Groups []struct {
				Rules []struct{ Alert, Expr string } `yaml:"rules"`
			} `yaml:"groups"`
		}
		decodeSpec(t, set.where, o, &spec)
		n := 0
		for _, g := range spec.Groups {
			for _, r := range g.Rules {
				n++
				for _, m := range metricRe.FindAllString(r.Expr, -1) {
					base := m
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(m, suffix); ok && known[b] {
							base = b
						}
					}
					if !known[base] {
						t.Errorf("%s: alert %s uses %s, which the gateway does not export", set.where, r.Alert, m)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: PrometheusRule %s has no rules", set.where, o.Metadata.Name)
		}
	}
}

var descNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

func gatewayMetrics() map[string]bool {
	reg := metering.NewMetrics(metering.Options{}).Registry
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	out := map[string]bool{}
	for d := range ch {
		if m := descNameRe.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

// checkApplyJob: the Job runs gateway apply against the ops Service with one
// of the gateway's admin tokens, on a state file that validates with the
// secrets the Job is given.
func checkApplyJob(t *testing.T, set *k8sSet, cfg *config.Serve, opsSvc *k8sService) {
	t.Helper()
	s := binarySchema(t)
	jobs := set.all("Job")
	if len(jobs) != 1 {
		t.Fatalf("%s: %d Jobs, want 1", set.where, len(jobs))
	}
	where := set.where + " Job " + jobs[0].Metadata.Name
	var spec k8sWorkloadSpec
	decodeSpec(t, where, jobs[0], &spec)
	pod := spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(pod.Spec.Containers))
	}
	c := &pod.Spec.Containers[0]
	args := containerArgs(t, where, c)
	s.checkCommand(t, where, args)
	if args[0] != "apply" {
		t.Fatalf("%s: runs gateway %s, want apply", where, args[0])
	}
	env := set.environment(t, where, c)

	adminURL := flagValue(args, "admin-url", env["GATEWAY_ADMIN_URL"])
	u, err := url.Parse(adminURL)
	if err != nil || u.Scheme != "http" {
		t.Errorf("%s: admin URL %q", where, adminURL)
	} else {
		host, _, _ := strings.Cut(u.Hostname(), ".")
		var svcPort string
		for _, p := range opsSvc.spec.Ports {
			if opsSvc.targets[p.Name] == portOf(t, cfg.OpsListen) {
				svcPort = strconv.Itoa(p.Port)
			}
		}
		if host != opsSvc.name || u.Port() != svcPort {
			t.Errorf("%s: admin URL %s, want the ops Service %s on port %s", where, adminURL, opsSvc.name, svcPort)
		}
	}

	token := env["GATEWAY_ADMIN_TOKEN"]
	found := false
	for _, at := range cfg.AdminTokens {
		if _, tok, _ := config.SplitToken(at); tok == token {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: its GATEWAY_ADMIN_TOKEN is not one of the gateway's admin tokens", where)
	}

	file := flagValue(args, "f", flagValue(args, "file", ""))
	var cmName string
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(file) {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
	}
	cm := set.get("ConfigMap", cmName)
	if cm == nil {
		t.Fatalf("%s: state file %q is not on a mounted ConfigMap", where, file)
	}
	st, err := state.Parse([]byte(cm.Data[path.Base(file)]))
	if err != nil {
		t.Fatalf("%s: state file: %v", where, err)
	}
	if err := st.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Errorf("%s: state file secrets: %v", where, err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		t.Errorf("%s: state file is invalid: %v", where, err)
	}
}
