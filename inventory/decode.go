package inventory

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// BurntSushi/toml stops at the first value that does not fit the target
// type, so one typo in a size would hide every other problem in the file.
// Instead the file is parsed into a generic tree (syntax errors still come
// from the real parser) and this small decoder fills the Inventory from it,
// following the same `toml` struct tags, reporting every unknown key and
// every ill-typed value and carrying on. It also knows the indexed path of
// each value, which md.Undecoded() does not give ("accounts.users.passwd"
// without saying which account), so every message gets its line.
type decoder struct {
	problems []Problem // Key and Msg only; File and Line are filled later
	// defined holds every key path that was written in the file, so defaults
	// apply to absent keys only and an explicit 0 can be refused.
	defined map[string]bool
	// bad holds the key paths that could not be decoded; the validator says
	// nothing more about them, so one mistake gives one message.
	bad map[string]bool
}

var (
	sizeType     = reflect.TypeOf(Size(0))
	durationType = reflect.TypeOf(Duration(0))
)

func (d *decoder) problem(key, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	d.bad[key] = true
}

// table fills the struct rv from m.
func (d *decoder) table(path string, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := keyPath(path, k)
		idx, ok := fields[k]
		if !ok {
			d.problem(p, "%s", unknownKeyMsg(k, path, rv.Type()))
			continue
		}
		before := len(d.problems)
		d.value(p, m[k], rv.Field(idx))
		if len(d.problems) == before {
			d.defined[p] = true
		}
	}
}

// value stores v in fv, or records why it cannot.
func (d *decoder) value(path string, v any, fv reflect.Value) {
	t := fv.Type()
	switch {
	case t == sizeType:
		switch x := v.(type) {
		case int64:
			if x < 0 {
				d.problem(path, "%d is not a size: it is negative; %s", x, sizeForms)
				return
			}
			fv.SetInt(x)
		case string:
			s, err := ParseSize(x)
			if err != nil {
				d.problem(path, "%v", err)
				return
			}
			fv.SetInt(int64(s))
		default:
			d.problem(path, "expected a size such as \"1GB\", got %s; %s", describe(path, v), sizeForms)
		}
		return
	case t == durationType:
		switch x := v.(type) {
		case string:
			du, err := ParseDuration(x)
			if err != nil {
				d.problem(path, "%v", err)
				return
			}
			fv.SetInt(int64(du))
		case int64, float64:
			d.problem(path, "%v is not a duration: it has no unit; %s (in quotes)", x, durationForms)
		default:
			d.problem(path, "expected a duration such as \"30s\", got %s", describe(path, v))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := reflect.New(t.Elem())
		before := len(d.problems)
		d.value(path, v, elem.Elem())
		if len(d.problems) == before {
			fv.Set(elem)
		}
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.problem(path, "expected a string, got %s; put the value in double quotes", describe(path, v))
			return
		}
		fv.SetString(s)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok {
			hint := "write a whole number"
			if _, isStr := v.(string); isStr {
				hint = "remove the quotes"
			}
			d.problem(path, "expected an integer, got %s; %s", describe(path, v), hint)
			return
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			hint := ""
			if _, isStr := v.(string); isStr {
				hint = "; write it without quotes"
			}
			d.problem(path, "expected true or false, got %s%s", describe(path, v), hint)
			return
		}
		fv.SetBool(b)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			hint := ""
			if t == reflect.TypeOf(AccountJetStream{}) {
				hint = `; an account's JetStream is its limits: jetstream = { max_mem = "1GB", max_file = "4GB", max_streams = 1000, max_consumers = 10000 }`
			}
			d.problem(path, "expected a table, got %s%s", describe(path, v), hint)
			return
		}
		d.table(path, m, fv)
	case reflect.Slice:
		d.slice(path, v, fv)
	default:
		// Only reachable if types.go gains a field of a new kind.
		d.problem(path, "natsdeploy cannot decode a %s here (a bug: please report it)", t)
	}
}

func (d *decoder) slice(path string, v any, fv reflect.Value) {
	t := fv.Type()
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	default:
		if t.Elem().Kind() == reflect.Struct {
			d.problem(path, "expected a list of tables ([[%s]] sections), got %s", lastKey(path), describe(path, v))
		} else {
			d.problem(path, "expected a list such as [\"a\", \"b\"], got %s; put the value in [ ]", describe(path, v))
		}
		return
	}
	out := reflect.MakeSlice(t, len(elems), len(elems))
	for i, e := range elems {
		d.value(keyPath(path, i), e, out.Index(i))
	}
	fv.Set(out)
}

func lastKey(path string) string {
	parts := strings.Split(path, ".")
	var keep []string
	for _, p := range parts {
		if !isIndex(p) {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ".")
}

// describe is tomlType, without the value under a password key: a value
// of the wrong type there is still most likely the password.
func describe(path string, v any) string {
	if strings.Contains(strings.ToLower(path[strings.LastIndexByte(path, '.')+1:]), "password") {
		switch v.(type) {
		case string:
			return "a string (not shown)"
		case int64:
			return "an integer (not shown)"
		case float64:
			return "a number (not shown)"
		case bool:
			return "a boolean (not shown)"
		}
	}
	return tomlType(v)
}

func tomlType(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// tomlFields maps the toml tag names of a struct to field indices.
func tomlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fields[name] = i
	}
	return fields
}

// sections names every table of the schema as a user writes its header, for
// "this key belongs in [nats]" hints.
var sections = []struct {
	header string
	typ    reflect.Type
}{
	{"the top level (before any [section])", reflect.TypeOf(Inventory{})},
	{"[ssh]", reflect.TypeOf(SSH{})},
	{"[nats]", reflect.TypeOf(NATS{})},
	{"[[hosts]]", reflect.TypeOf(Host{})},
	{"[[accounts]]", reflect.TypeOf(Account{})},
	{"an account's jetstream = { ... }", reflect.TypeOf(AccountJetStream{})},
	{"[[accounts.users]]", reflect.TypeOf(User{})},
	{"[monitoring]", reflect.TypeOf(Monitoring{})},
	{"[monitoring.prometheus]", reflect.TypeOf(PrometheusSpec{})},
	{"[monitoring.grafana]", reflect.TypeOf(GrafanaSpec{})},
	{"[monitoring.exporter]", reflect.TypeOf(ExporterSpec{})},
	{"[monitoring.surveyor]", reflect.TypeOf(SurveyorSpec{})},
}

// keyHints answer unknown keys that are no typo but a wish the schema
// refuses on purpose, where the generic message would point the wrong way
// (a Grafana "password" would be sent to [[accounts.users]]).
var keyHints = map[reflect.Type]map[string]string{
	reflect.TypeOf(GrafanaSpec{}): {
		"password":       grafanaPasswordHint,
		"admin_password": grafanaPasswordHint,
	},
}

const grafanaPasswordHint = "the Grafana admin password is not written in the inventory; " +
	"use password_env = \"VAR\" (an environment variable holding it), or remove it to have one generated and kept in the secrets file"

// unknownKeyMsg explains an unknown key: the closest known key of the same
// table if it looks like a typo, else the section it belongs in, else the
// keys that are allowed here.
func unknownKeyMsg(key, parent string, t reflect.Type) string {
	if hint, ok := keyHints[t][key]; ok {
		return fmt.Sprintf("unknown key %q: %s", key, hint)
	}
	known := make([]string, 0)
	for name := range tomlFields(t) {
		known = append(known, name)
	}
	sort.Strings(known)
	best, bestDist := "", 1<<30
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if bestDist <= 1 {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, best)
	}
	var elsewhere, services []string
	for _, s := range sections {
		if s.typ == t {
			continue
		}
		if _, ok := tomlFields(s.typ)[key]; ok {
			elsewhere = append(elsewhere, s.header)
			if svc, ok := strings.CutPrefix(s.header, "[monitoring."); ok {
				services = append(services, strings.TrimSuffix(svc, "]"))
			}
		}
	}
	if len(services) > 1 {
		// version, port and enabled are in every service's table: name them
		// once rather than four times (they are last in sections).
		elsewhere = append(elsewhere[:len(elsewhere)-len(services)],
			fmt.Sprintf("[monitoring.SERVICE] (SERVICE: %s)", strings.Join(services, ", ")))
	}
	if len(elsewhere) > 0 {
		return fmt.Sprintf("unknown key %q here; it belongs in %s", key, strings.Join(elsewhere, " or "))
	}
	if bestDist <= 2 && len(key) > 3 || bestDist <= len(key)/3 {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, best)
	}
	where := "here"
	if parent != "" {
		where = "in " + DisplayKey(parent)
	}
	return fmt.Sprintf("unknown key %q; the keys allowed %s are: %s", key, where, strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
