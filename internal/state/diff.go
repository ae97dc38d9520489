package state

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Change kinds and operations.
const (
	KindOrganization = "organization"
	KindUnit         = "unit"
	KindAccount      = "account"
	KindEntitlement  = "entitlement"
	KindShare        = "share"
	KindCredential   = "credential"

	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Change is one difference between two states. For a share, ID is
// "<entitlement>/<target>". Detail is human-readable and never carries secrets.
type Change struct {
	Kind   string `json:"kind"`
	Op     string `json:"op"`
	ID     string `json:"id"`
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := c.Op + " " + c.Kind + " " + c.ID
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Diff lists what turns old into new: the organization, then units, accounts,
// entitlements, shares, credentials and revoked keys, each sorted by ID, so the same pair of
// states always gives the same list. Both states should be normalized; a nil
// state is empty. Entitlement timestamps are bookkeeping, not changes. List
// order is not a change either.
func Diff(old, new *State) []Change {
	if old == nil {
		old = &State{}
	}
	if new == nil {
		new = &State{}
	}
	var out []Change
	out = diffOrganization(out, &old.Organization, &new.Organization)
	out = diffItems(out, KindUnit, old.Organization.Units, new.Organization.Units,
		func(u *Unit) string { return u.ID }, describeUnit, nil)
	out = diffItems(out, KindAccount, old.Organization.Accounts, new.Organization.Accounts,
		func(a *Account) string { return a.ID }, describeAccount, nil)
	out = diffItems(out, KindEntitlement, old.Entitlements, new.Entitlements,
		func(e *Entitlement) string { return e.Name }, describeEntitlement,
		map[string]bool{"shares": true, "created_at": true, "updated_at": true})
	out = append(out, diffShares(old.Entitlements, new.Entitlements)...)
	out = diffItems(out, KindCredential, old.Credentials, new.Credentials,
		func(c *Credential) string { return credentialID(c) }, describeCredential,
		map[string]bool{"created_at": true})
	out = diffRevoked(out, &old.Revoked, &new.Revoked)
	out = diffDeniedPrincipals(out, old.DeniedPrincipals, new.DeniedPrincipals)
	return out
}

func diffOrganization(out []Change, old, new *Organization) []Change {
	// Units and accounts are diffed item by item; here only the scalar fields.
	type orgFields struct {
		ID         string `yaml:"id"`
		Root       string `yaml:"root"`
		HubAccount string `yaml:"hub_account"`
		Source     string `yaml:"source"`
	}
	a := orgFields{old.ID, old.Root, old.HubAccount, old.Source}
	b := orgFields{new.ID, new.Root, new.HubAccount, new.Source}
	detail := func() string {
		return strings.Join(fieldDiffs(reflect.ValueOf(a), reflect.ValueOf(b), nil), "; ")
	}
	switch {
	case a == b:
	case a == orgFields{}:
		out = append(out, Change{KindOrganization, OpCreate, b.ID, detail()})
	case b == orgFields{}:
		out = append(out, Change{Kind: KindOrganization, Op: OpDelete, ID: a.ID})
	default:
		out = append(out, Change{KindOrganization, OpUpdate, cmp.Or(b.ID, a.ID), detail()})
	}
	return out
}

// diffItems compares two lists of items keyed by ID (the first of duplicates wins).
func diffItems[T any](out []Change, kind string, old, new []T, id func(*T) string, describe func(*T) string, skip map[string]bool) []Change {
	oldBy := make(map[string]*T, len(old))
	for i := range old {
		if k := id(&old[i]); oldBy[k] == nil {
			oldBy[k] = &old[i]
		}
	}
	newBy := make(map[string]*T, len(new))
	for i := range new {
		if k := id(&new[i]); newBy[k] == nil {
			newBy[k] = &new[i]
		}
	}
	var keys []string
	for k := range oldBy {
		keys = append(keys, k)
	}
	for k := range newBy {
		if oldBy[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		a, b := oldBy[k], newBy[k]
		switch {
		case a == nil:
			out = append(out, Change{kind, OpCreate, k, describe(b)})
		case b == nil:
			out = append(out, Change{kind, OpDelete, k, describe(a)})
		default:
			if d := fieldDiffs(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), skip); len(d) > 0 {
				out = append(out, Change{kind, OpUpdate, k, strings.Join(d, "; ")})
			}
		}
	}
	return out
}

func diffShares(old, new []Entitlement) []Change {
	type key struct{ ent, target string }
	collect := func(ents []Entitlement) map[key]Share {
		m := make(map[key]Share)
		for _, e := range ents {
			for _, sh := range e.Shares {
				k := key{e.Name, sh.Target}
				if _, dup := m[k]; !dup {
					m[k] = sh
				}
			}
		}
		return m
	}
	a, b := collect(old), collect(new)
	var keys []key
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y key) int { return cmp.Or(cmp.Compare(x.ent, y.ent), cmp.Compare(x.target, y.target)) })
	var out []Change
	for _, k := range keys {
		id := k.ent + "/" + k.target
		sa, inA := a[k]
		sb, inB := b[k]
		switch {
		case !inA:
			out = append(out, Change{KindShare, OpCreate, id, shareDetail(sb)})
		case !inB:
			out = append(out, Change{KindShare, OpDelete, id, shareDetail(sa)})
		case sa.MonthlyTokens != sb.MonthlyTokens:
			out = append(out, Change{KindShare, OpUpdate, id, fmt.Sprintf("monthly_tokens: %s -> %s", tokens(sa.MonthlyTokens), tokens(sb.MonthlyTokens))})
		case !slices.Equal(sa.Principals, sb.Principals):
			out = append(out, Change{KindShare, OpUpdate, id, principalsChange(sa.Principals, sb.Principals)})
		}
	}
	return out
}

func shareDetail(s Share) string {
	if s.MonthlyTokens == 0 {
		return ""
	}
	return "monthly_tokens " + tokens(s.MonthlyTokens)
}

func tokens(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func describeUnit(u *Unit) string {
	d := "name " + strconv.Quote(u.Name)
	if u.Parent != "" {
		d += ", parent " + u.Parent
	}
	return d
}

func describeAccount(a *Account) string {
	d := "name " + strconv.Quote(a.Name)
	if a.Unit != "" {
		d += ", unit " + a.Unit
	}
	if a.Team != "" {
		d += ", team " + strconv.Quote(a.Team)
	}
	if !a.Active() {
		d += ", " + a.State
	}
	return d
}

func describeEntitlement(e *Entitlement) string {
	d := "model " + e.Model
	if e.State != "" && e.State != EntitlementActive {
		d += ", " + e.State
	}
	return d
}

func describeCredential(c *Credential) string {
	d := c.Kind + " for account " + c.Account
	if c.Label != "" {
		d += " (" + c.Label + ")"
	}
	return d
}

// secretFields never show their values in a diff.
var secretFields = map[string]bool{"secret": true, "key": true}

// fieldDiffs compares two values of one struct type field by field, naming fields
// by their YAML keys ("limits.monthly_tokens: 0 -> 100").
func fieldDiffs(a, b reflect.Value, skip map[string]bool) []string {
	var out []string
	walkFields("", a, b, skip, &out)
	return out
}

var timeType = reflect.TypeFor[time.Time]()

func walkFields(prefix string, a, b reflect.Value, skip map[string]bool, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || (prefix == "" && skip[name]) {
			continue
		}
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != timeType {
			walkFields(prefix+name+".", fa, fb, nil, out)
			continue
		}
		if equalValues(fa, fb) {
			continue
		}
		if secretFields[name] {
			*out = append(*out, prefix+name+" changed")
			continue
		}
		*out = append(*out, fmt.Sprintf("%s%s: %s -> %s", prefix, name, formatValue(fa), formatValue(fb)))
	}
}

func equalValues(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValues(a.Elem(), b.Elem())
	}
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func formatValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "none"
		}
		return formatValue(v.Elem())
	case reflect.String:
		if v.Len() == 0 {
			return `""`
		}
		return v.String()
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return "none"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v.Interface())
}
