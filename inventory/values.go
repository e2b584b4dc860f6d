package inventory

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written as "1GB", "512MB", "100M", "1GiB" or a plain
// number. Units are powers of 1024, as in nats-server's own config files, so
// "1GB" and "1GiB" are the same 1073741824 bytes.
type Size int64

// sizeForms is appended to every size error so the user sees what works.
const sizeForms = `write a byte count such as 1073741824, or a number with a unit: "512MB", "100M", "1GB", "1GiB" (K, M, G, T are powers of 1024)`

var sizeUnits = []struct {
	names []string
	shift uint
}{
	{[]string{"", "b"}, 0},
	{[]string{"k", "kb", "kib"}, 10},
	{[]string{"m", "mb", "mib"}, 20},
	{[]string{"g", "gb", "gib"}, 30},
	{[]string{"t", "tb", "tib"}, 40},
}

// ParseSize reads a size as the inventory writes it.
func ParseSize(text string) (Size, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return 0, fmt.Errorf("empty size; %s", sizeForms)
	}
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		if s[0] == '-' {
			return 0, fmt.Errorf("%q is not a size: it is negative; %s", text, sizeForms)
		}
		return 0, fmt.Errorf("%q is not a size; %s", text, sizeForms)
	}
	if end < len(s) && (s[end] == '.' || s[end] == ',') {
		return 0, fmt.Errorf("%q is not a size: fractions are not accepted, use a smaller unit (\"1536MB\", not \"1.5GB\"); %s", text, sizeForms)
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: number too large; %s", text, sizeForms)
	}
	unit := strings.ToLower(strings.TrimSpace(s[end:]))
	for _, u := range sizeUnits {
		for _, name := range u.names {
			if unit != name {
				continue
			}
			if n > math.MaxInt64>>u.shift {
				return 0, fmt.Errorf("%q is not a size: too large; %s", text, sizeForms)
			}
			return Size(n << u.shift), nil
		}
	}
	return 0, fmt.Errorf("%q is not a size: unknown unit %q; %s", text, strings.TrimSpace(s[end:]), sizeForms)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Bytes returns the size in bytes.
func (s Size) Bytes() int64 { return int64(s) }

// String returns the canonical form: the largest unit that divides the size
// exactly ("1GB", "512MB", "1536KB"), or the plain number. nats-server reads
// this form too, so it can be rendered into configs as is.
func (s Size) String() string {
	n := int64(s)
	if n == 0 {
		return "0"
	}
	for i := len(sizeUnits) - 1; i > 0; i-- {
		u := sizeUnits[i]
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + strings.ToUpper(u.names[1])
		}
	}
	return strconv.FormatInt(n, 10)
}

// Duration is written as Go durations are: "30s", "2m", "1h30m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

const durationForms = `write a number with a unit such as "500ms", "30s", "2m" or "1h30m"`

// ParseDuration reads a duration as the inventory writes it. Negative
// durations are refused: no setting of the inventory means anything by them.
func ParseDuration(text string) (Duration, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return 0, fmt.Errorf("empty duration; %s", durationForms)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("%q is not a duration: it has no unit; %s", text, durationForms)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; %s", text, durationForms)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is not a duration: it is negative; %s", text, durationForms)
	}
	return Duration(d), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String returns the duration without time.Duration's trailing zero units
// ("2m", not "2m0s"; "1h", not "1h0m0s"), a form nats-server also parses.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// promUnits are the units of Prometheus's duration syntax (prometheus/common
// model.ParseDuration), largest first: a duration names each at most once,
// in this order.
var promUnits = []struct {
	name string
	d    time.Duration
}{
	{"y", 365 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour},
	{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
}

const promDurationForms = `write whole numbers with units, largest first, such as "15d", "1w", "30d12h" or "90m" (units y, w, d, h, m, s, ms)`

// ParsePrometheusDuration reads a duration in Prometheus's syntax, which
// differs from Go's: it has d, w and y, and no fractions. Values handed to
// Prometheus as written (retention) are checked with it, so what passes here
// is what Prometheus accepts.
func ParsePrometheusDuration(text string) (time.Duration, error) {
	if text == "0" {
		return 0, nil
	}
	if text == "" {
		return 0, fmt.Errorf("empty duration; %s", promDurationForms)
	}
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%q is not a Prometheus duration%s; %s", text, why, promDurationForms)
	}
	var total time.Duration
	last := -1
	for s := text; s != ""; {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return bad("")
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return bad(": number too large")
		}
		s = s[i:]
		j := 0
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		unit := -1
		for k, u := range promUnits {
			if u.name == s[:j] {
				unit = k
			}
		}
		switch {
		case j == 0 && s == "":
			return bad(": a number without a unit")
		case j == 0:
			return bad("")
		case unit < 0:
			return bad(fmt.Sprintf(": unknown unit %q", s[:j]))
		case unit <= last:
			return bad(": units must go from largest to smallest, each once")
		}
		last = unit
		s = s[j:]
		d := promUnits[unit].d
		if n > (math.MaxInt64-int64(total))/int64(d) {
			return bad(": too large")
		}
		total += time.Duration(n) * d
	}
	return total, nil
}

// Prometheus returns the duration in Prometheus's syntax, for its config
// files: String's "1.5s" is Go's form, which Prometheus refuses. Whole
// milliseconds only; anything below is dropped.
func (d Duration) Prometheus() string {
	ms := int64(time.Duration(d) / time.Millisecond)
	if ms <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range promUnits[2:] { // y and w would only obscure "90d"
		um := int64(u.d / time.Millisecond)
		if ms >= um {
			b.WriteString(strconv.FormatInt(ms/um, 10) + u.name)
			ms %= um
		}
	}
	return b.String()
}

// Permissions are a user's effective subject rules after Allow/Deny and the
// JetStream and RequestReply shorthands are expanded. Every list keeps the
// order the inventory wrote it in, without duplicates, so rendering is
// byte-stable.
//
// NATS treats a direction without an allow list as "everything allowed".
// The inventory means the opposite (what is not allowed is refused), so a
// direction with no allow rule at all gets the deny list [">"] and nothing
// else: render the lists as they are and that holds. (Replies under
// AllowResponses still pass: nats-server checks them after the deny list.)
type Permissions struct {
	PublishAllow   []string
	PublishDeny    []string
	SubscribeAllow []string
	SubscribeDeny  []string
	AllowResponses bool
}

// The subjects the shorthands expand to. Why these:
//
//   - A JetStream client talks to the JetStream API by request/reply on
//     $JS.API.> (create streams and consumers, fetch from pull consumers,
//     get account info), acknowledges messages by publishing to the
//     message's reply subject $JS.ACK.<stream>.<consumer>...., and answers
//     push-consumer flow control on $JS.FC.>. Every API answer, pull batch
//     and publish acknowledgement comes back on the client's _INBOX.> reply
//     subject, so it must also subscribe there.
//   - A request/reply client needs _INBOX.> to receive replies, and a
//     responder needs allow_responses to publish a reply to whatever inbox a
//     request named, without a standing publish right on every _INBOX.
//
// _INBOX.> is shared by every user of an account that has it, so a user can
// in principle see another user's replies inside the same account; accounts,
// not users, are the isolation boundary (as in the seed).
var (
	JetStreamPublish   = []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>"}
	JetStreamSubscribe = []string{"_INBOX.>"}
	ReplySubscribe     = []string{"_INBOX.>"}
)

// Permissions expands the user's rules into both directions.
func (u User) Permissions() Permissions {
	var p Permissions
	p.PublishAllow = appendUnique(nil, u.Allow, u.Publish)
	p.SubscribeAllow = appendUnique(nil, u.Allow, u.Subscribe)
	p.PublishDeny = appendUnique(nil, u.Deny, u.DenyPublish)
	p.SubscribeDeny = appendUnique(nil, u.Deny, u.DenySubscribe)
	if u.JetStream {
		p.PublishAllow = appendUnique(p.PublishAllow, JetStreamPublish)
		p.SubscribeAllow = appendUnique(p.SubscribeAllow, JetStreamSubscribe)
	}
	if u.RequestReply {
		p.SubscribeAllow = appendUnique(p.SubscribeAllow, ReplySubscribe)
		p.AllowResponses = true
	}
	if len(p.PublishAllow) == 0 {
		p.PublishDeny = []string{">"}
	}
	if len(p.SubscribeAllow) == 0 {
		p.SubscribeDeny = []string{">"}
	}
	return p
}

func appendUnique(dst []string, lists ...[]string) []string {
	for _, l := range lists {
	next:
		for _, s := range l {
			for _, have := range dst {
				if have == s {
					continue next
				}
			}
			dst = append(dst, s)
		}
	}
	return dst
}

// SubjectError says why a subject is not one NATS can use.
func SubjectError(subject string) error {
	if subject == "" {
		return errors.New("a subject cannot be empty")
	}
	for _, r := range subject {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
			return errors.New("it contains whitespace; subjects are tokens separated by dots, without spaces")
		}
	}
	if strings.HasPrefix(subject, ".") {
		return errors.New("it starts with a dot; remove the leading dot")
	}
	if strings.HasSuffix(subject, ".") {
		return errors.New(`it ends with a dot; remove it, or end with ".>" to match everything below`)
	}
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return errors.New(`it has an empty token (two dots in a row); write "a.b", not "a..b"`)
		case t == ">" && i != len(tokens)-1:
			return errors.New(`">" must be the last token (it matches all remaining tokens); use "*" for a single token in the middle`)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return fmt.Errorf(`token %q mixes a wildcard with other characters; a wildcard is a whole token: "*" matches one token, ">" all remaining ones`, t)
		}
	}
	return nil
}
