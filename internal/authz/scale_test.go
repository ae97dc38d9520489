package authz

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// scaleSpec sizes a generated organization.
type scaleSpec struct {
	accounts, units, entitlements, shares, depth int
}

var (
	// fullScale is the target size: run it with
	// go test -run '^$' -bench SnapshotScale$ ./internal/authz/
	fullScale = scaleSpec{accounts: 100_000, units: 10_000, entitlements: 10_000, shares: 1_000_000, depth: 5}
	// smallScale keeps the same shape at a size normal test runs can afford.
	smallScale = scaleSpec{accounts: 2_000, units: 200, entitlements: 200, shares: 20_000, depth: 5}
)

// genState generates a valid organization of the given size: OUs nested up to
// spec.depth levels, 5% of accounts in the root, one entitlement in ten scoped to
// a top-level OU (and shared only inside it), one in two hundred shared with the
// whole organization, and 5% of entitlements sharing an upstream model with
// another, so that upstream IDs are sometimes ambiguous.
func genState(spec scaleSpec, seed uint64) *state.State {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const orgID, rootID = "o-scaleorg0001", "r-scal"
	st := &state.State{Organization: state.Organization{ID: orgID, Root: rootID}}
	o := &st.Organization

	o.Units = make([]state.Unit, spec.units)
	depth := make([]int, spec.units)
	top := make([]int, spec.units) // index of the top-level OU above each unit
	for i := range o.Units {
		u := state.Unit{ID: fmt.Sprintf("ou-scal-%08d", i), Name: fmt.Sprintf("unit %d", i)}
		depth[i], top[i] = 1, i
		if i >= spec.units/10+1 {
			for range 4 {
				p := rng.IntN(i)
				if depth[p] < spec.depth {
					u.Parent, depth[i], top[i] = o.Units[p].ID, depth[p]+1, top[p]
					break
				}
			}
		}
		o.Units[i] = u
	}
	// Members of each top-level OU's subtree, for scoped shares.
	subtree := make(map[int][]string)
	for i := range o.Units {
		subtree[top[i]] = append(subtree[top[i]], o.Units[i].ID)
	}
	o.Accounts = make([]state.Account, spec.accounts)
	var allTargets []string
	for i := range o.Accounts {
		a := state.Account{ID: fmt.Sprintf("%012d", 100_000_000_000+i), Name: fmt.Sprintf("account %d", i)}
		if i == 0 || rng.IntN(20) == 0 {
			// In the root: no unit.
		} else {
			u := rng.IntN(spec.units)
			a.Unit = o.Units[u].ID
			subtree[top[u]] = append(subtree[top[u]], a.ID)
		}
		o.Accounts[i] = a
		allTargets = append(allTargets, a.ID)
	}
	o.HubAccount = o.Accounts[0].ID
	for _, u := range o.Units {
		allTargets = append(allTargets, u.ID)
	}
	topUnits := make([]int, 0, len(subtree))
	for t := range subtree {
		topUnits = append(topUnits, t)
	}
	slices.Sort(topUnits)

	distinctModels := spec.entitlements - spec.entitlements/20
	st.Entitlements = make([]state.Entitlement, spec.entitlements)
	for i := range st.Entitlements {
		e := state.Entitlement{
			Name:  fmt.Sprintf("ent-%05d", i),
			Model: fmt.Sprintf("provider.model-%d-v1:0", i%distinctModels),
		}
		n := spec.shares / spec.entitlements
		if i < spec.shares%spec.entitlements {
			n++
		}
		pool := allTargets
		if i%10 == 0 {
			t := topUnits[rng.IntN(len(topUnits))]
			e.Scope = []string{o.Units[t].ID}
			pool = subtree[t]
		}
		seen := make(map[string]bool, n)
		if i%200 == 1 {
			e.Shares = append(e.Shares, state.Share{Target: orgID})
			n--
		}
		for tries := 0; len(seen) < n && len(seen) < len(pool) && tries < 4*n; tries++ {
			target := pool[rng.IntN(len(pool))]
			if seen[target] {
				continue
			}
			seen[target] = true
			sh := state.Share{Target: target}
			if rng.IntN(10) == 0 {
				sh.MonthlyTokens = int64(1 + rng.IntN(1_000_000))
			}
			e.Shares = append(e.Shares, sh)
		}
		st.Entitlements[i] = e
	}
	st.Normalize()
	return st
}

// oracle decides like Authorize for an entitlement name, straight from the state,
// without indexes: the reference the snapshot is checked against.
type oracle struct {
	st      *state.State
	parent  map[string]string
	unitOf  map[string]string
	shares  map[string]map[string]state.Share
	byName  map[string]*state.Entitlement
	isScope map[string]map[string]bool
}

func newOracle(st *state.State) *oracle {
	o := &oracle{st: st, parent: map[string]string{}, unitOf: map[string]string{},
		shares: map[string]map[string]state.Share{}, byName: map[string]*state.Entitlement{}, isScope: map[string]map[string]bool{}}
	for _, u := range st.Organization.Units {
		o.parent[u.ID] = u.Parent
	}
	for _, a := range st.Organization.Accounts {
		o.unitOf[a.ID] = a.Unit
	}
	for i := range st.Entitlements {
		e := &st.Entitlements[i]
		o.byName[e.Name] = e
		o.shares[e.Name] = map[string]state.Share{}
		for _, sh := range e.Shares {
			o.shares[e.Name][sh.Target] = sh
		}
		o.isScope[e.Name] = map[string]bool{}
		for _, id := range e.Scope {
			o.isScope[e.Name][id] = true
		}
	}
	return o
}

// chain lists the account, its OUs upwards, the root and the organization.
func (o *oracle) chain(account string) []string {
	c := []string{account}
	for u := o.unitOf[account]; u != "" && u != o.st.Organization.Root; u = o.parent[u] {
		c = append(c, u)
	}
	return append(c, o.st.Organization.Root, o.st.Organization.ID)
}

// decide decides for op; OpUnknown means any operation (visibility alone).
func (o *oracle) decide(account string, op bedrock.Operation, name string) (state.Share, bool) {
	e := o.byName[name]
	if _, known := o.unitOf[account]; !known || e == nil || e.State != state.EntitlementActive {
		return state.Share{}, false
	}
	if op != bedrock.OpUnknown && len(e.Operations) > 0 && !slices.Contains(e.Operations, op.String()) {
		return state.Share{}, false
	}
	chain := o.chain(account)
	inScope := len(e.Scope) == 0
	for _, id := range chain {
		inScope = inScope || o.isScope[name][id]
	}
	if !inScope {
		return state.Share{}, false
	}
	for _, id := range chain {
		if sh, ok := o.shares[name][id]; ok {
			return sh, true
		}
	}
	return state.Share{}, false
}

func TestSnapshotMatchesOracle(t *testing.T) {
	t.Parallel()
	st := genState(smallScale, 7)
	// Suspend some and restrict others, so those paths are covered too.
	for i := range st.Entitlements {
		switch i % 13 {
		case 3:
			st.Entitlements[i].State = state.EntitlementSuspended
		case 5:
			st.Entitlements[i].Operations = []string{"ConverseStream"}
		}
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("generated state does not validate: %v", err)
	}
	snap, err := Build(st, 1)
	if err != nil {
		t.Fatal(err)
	}
	o := newOracle(st)
	rng := rand.New(rand.NewPCG(1, 2))
	accounts := st.Organization.Accounts
	allowed := 0
	for _, e := range st.Entitlements {
		for range 150 {
			acct := accounts[rng.IntN(len(accounts))].ID
			op := bedrock.OpConverse
			if rng.IntN(2) == 0 {
				op = bedrock.OpConverseStream
			}
			want, ok := o.decide(acct, op, e.Name)
			d, err := snap.Decide(acct, op, e.Name)
			if ok != (err == nil) || (ok && (!reflect.DeepEqual(d.Share, want) || d.Entitlement.Name != e.Name)) {
				t.Fatalf("Decide(%s, %s, %s) = %+v, %v; oracle %+v, %v", acct, op, e.Name, d.Share, err, want, ok)
			}
			if ok {
				allowed++
			}
		}
	}
	if allowed == 0 {
		t.Fatal("no decision was allowed: the generator shares nothing")
	}
	// EntitlementsFor and upstream resolution agree with the oracle as well.
	for range 60 {
		acct := accounts[rng.IntN(len(accounts))].ID
		var want []string
		byModel := map[string][]string{}
		for _, e := range st.Entitlements {
			if _, ok := o.decide(acct, bedrock.OpUnknown, e.Name); ok {
				want = append(want, e.Name)
			}
			if _, ok := o.decide(acct, bedrock.OpConverse, e.Name); ok {
				byModel[e.Model] = append(byModel[e.Model], e.Name)
			}
		}
		if got := names(snap.EntitlementsFor(acct)); !slices.Equal(got, want) {
			t.Fatalf("EntitlementsFor(%s) = %v, want %v", acct, got, want)
		}
		for model, ents := range byModel {
			d, err := snap.Decide(acct, bedrock.OpConverse, model)
			switch {
			case len(ents) == 1 && (err != nil || d.Entitlement.Name != ents[0]):
				t.Fatalf("Decide(%s, %s) = %v, %v; want %s", acct, model, d.Entitlement, err, ents[0])
			case len(ents) > 1 && err == nil:
				t.Fatalf("Decide(%s, %s) chose %s among %v", acct, model, d.Entitlement.Name, ents)
			}
		}
	}
}

// BenchmarkSnapshotScale measures the target scale: 100,000 accounts, 10,000 OUs
// nested up to 5 deep, 10,000 entitlements and 1,000,000 shares. It reports the
// time to validate the state and build the snapshot, the heap the snapshot holds
// (its private state copy included), and the cost of one decision.
func BenchmarkSnapshotScale(b *testing.B) { benchScale(b, fullScale) }

// BenchmarkSnapshotScaleSmall is the same at test size.
func BenchmarkSnapshotScaleSmall(b *testing.B) { benchScale(b, smallScale) }

func benchScale(b *testing.B, spec scaleSpec) {
	st := genState(spec, 1)
	start, cpu := time.Now(), cpuTime(b)
	if err := st.Validate(); err != nil {
		b.Fatal(err)
	}
	validateMs := float64(time.Since(start).Microseconds()) / 1000
	validateCPUMs := float64((cpuTime(b) - cpu).Microseconds()) / 1000

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start, cpu = time.Now(), cpuTime(b)
	snap, err := Build(st, 1)
	if err != nil {
		b.Fatal(err)
	}
	buildMs := float64(time.Since(start).Microseconds()) / 1000
	buildCPUMs := float64((cpuTime(b) - cpu).Microseconds()) / 1000
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapMiB := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)

	// Queries that are allowed: a random account and one of its entitlements, by
	// name and by (unambiguous) upstream model ID.
	rng := rand.New(rand.NewPCG(3, 4))
	type query struct{ account, model string }
	var byName, byModel []query
	for len(byName) < 1<<16 {
		acct := st.Organization.Accounts[rng.IntN(len(st.Organization.Accounts))].ID
		ents := snap.EntitlementsFor(acct)
		if len(ents) == 0 {
			continue
		}
		e := ents[rng.IntN(len(ents))]
		byName = append(byName, query{acct, e.Name})
		if _, err := snap.Decide(acct, bedrock.OpConverse, e.Model); err == nil && len(byModel) < 1<<16 {
			byModel = append(byModel, query{acct, e.Model})
		}
	}
	for len(byModel) < 1<<16 {
		byModel = append(byModel, byModel[:min(len(byModel), 1<<16-len(byModel))]...)
	}

	run := func(queries []query) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			var seed atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := seed.Add(1) * 7919
				for pb.Next() {
					q := &queries[i&uint64(len(queries)-1)]
					i++
					if _, err := snap.Decide(q.account, bedrock.OpConverse, q.model); err != nil {
						b.Errorf("Decide(%s, %s): %v", q.account, q.model, err)
						return
					}
				}
			})
			// After the loop: ResetTimer drops metrics reported before it.
			b.ReportMetric(validateMs, "validate-ms")
			b.ReportMetric(validateCPUMs, "validate-cpu-ms")
			b.ReportMetric(buildMs, "build-ms")
			b.ReportMetric(buildCPUMs, "build-cpu-ms")
			b.ReportMetric(heapMiB, "heap-MiB")
		}
	}
	// Random queries over the whole organization miss the CPU caches on almost
	// every lookup; real traffic comes from far fewer (account, entitlement)
	// pairs, which "name-hot" models with 1,024 of them.
	b.Run("name", run(byName))
	b.Run("name-hot", run(byName[:1024]))
	b.Run("upstream", run(byModel))
	runtime.KeepAlive(snap)
}

// cpuTime is the CPU time (user and system) the process has used so far: on a
// shared machine it says more about build cost than the wall clock.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
