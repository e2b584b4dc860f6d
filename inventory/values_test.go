package inventory

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1073741824", want: 1 << 30},
		{in: "1GB", want: 1 << 30},
		{in: "1gb", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "1GiB", want: 1 << 30},
		{in: "512MB", want: 512 << 20},
		{in: "100M", want: 100 << 20},
		{in: "4 GB", want: 4 << 30},
		{in: "2TB", want: 2 << 40},
		{in: "64K", want: 64 << 10},
		{in: "10B", want: 10},
		{in: "", wantErr: "empty size"},
		{in: "-1GB", wantErr: `"-1GB" is not a size: it is negative; write a byte count`},
		{in: "1.5GB", wantErr: "fractions are not accepted"},
		{in: "1XB", wantErr: `unknown unit "XB"; write a byte count such as 1073741824, or a number with a unit: "512MB", "100M", "1GB", "1GiB"`},
		{in: "GB", wantErr: `"GB" is not a size`},
		{in: "lots", wantErr: `"lots" is not a size`},
		{in: "99999999999999999999", wantErr: "number too large"},
		{in: "9999999999TB", wantErr: "too large"},
		// The largest size in GB, and one GB more.
		{in: "8589934591GB", want: math.MaxInt64 >> 30 << 30},
		{in: "8589934592GB", wantErr: `"8589934592GB" is not a size: too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			// As the TOML decoder reads it, into a Size that had a value.
			text := Size(7)
			textErr := text.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if textErr == nil || textErr.Error() != err.Error() || text != 7 {
					t.Fatalf("UnmarshalText(%q) = %v, left %d; want ParseSize's error and the value untouched", tt.in, textErr, text)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			if textErr != nil || text != tt.want {
				t.Fatalf("UnmarshalText(%q) = %v, set %d; want %d", tt.in, textErr, text, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"},
		{1 << 30, "1GB"},
		{4 << 30, "4GB"},
		{100 << 20, "100MB"},
		{1536 << 20, "1536MB"},
		{1 << 40, "1TB"},
		{1000, "1000"},
		{2048, "2KB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseSize(tt.in.String())
		if err != nil || back != tt.in {
			t.Errorf("ParseSize(%q) = %d, %v; want the round trip to give %d", tt.in.String(), back, err, tt.in)
		}
		if tt.in.Bytes() != int64(tt.in) {
			t.Errorf("Bytes() = %d", tt.in.Bytes())
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		str     string
		wantErr string
	}{
		{in: "30s", want: 30 * time.Second, str: "30s"},
		{in: "2m", want: 2 * time.Minute, str: "2m"},
		{in: "1h", want: time.Hour, str: "1h"},
		{in: "1h30m", want: 90 * time.Minute, str: "1h30m"},
		{in: "90s", want: 90 * time.Second, str: "1m30s"},
		{in: "500ms", want: 500 * time.Millisecond, str: "500ms"},
		{in: "0s", want: 0, str: "0s"},
		{in: "30", wantErr: `"30" is not a duration: it has no unit; write a number with a unit such as "500ms", "30s"`},
		{in: "-5s", wantErr: "it is negative"},
		{in: "soon", wantErr: `"soon" is not a duration`},
		{in: "", wantErr: "empty duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || d.D() != tt.want || d.String() != tt.str {
				t.Fatalf("got %v (%q), %v; want %v (%q)", d.D(), d.String(), err, tt.want, tt.str)
			}
		})
	}
}

func TestParsePrometheusDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "15d", want: 15 * day},
		{in: "1w", want: 7 * day},
		{in: "1y", want: 365 * day},
		{in: "30d12h", want: 30*day + 12*time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1m30s500ms", want: 90*time.Second + 500*time.Millisecond},
		{in: "0", want: 0},
		{in: "0d", want: 0},
		{in: "", wantErr: "empty duration"},
		{in: "15", wantErr: `"15" is not a Prometheus duration: a number without a unit; write whole numbers with units, largest first, such as "15d"`},
		{in: "15D", wantErr: `unknown unit "D"`},
		{in: "2mo", wantErr: `unknown unit "mo"`},
		{in: "12h30d", wantErr: "units must go from largest to smallest, each once"},
		{in: "1d1d", wantErr: "units must go from largest to smallest, each once"},
		{in: "1.5d", wantErr: `"1.5d" is not a Prometheus duration; write whole numbers`},
		{in: "-1d", wantErr: `"-1d" is not a Prometheus duration; write`},
		{in: "15 d", wantErr: `"15 d" is not a Prometheus duration; write`},
		{in: "99999999999999999999d", wantErr: "number too large"},
		{in: "999999y", wantErr: "too large"},
		// The most years a time.Duration holds, and one more.
		{in: "292y", want: 292 * 365 * day},
		{in: "293y", wantErr: `"293y" is not a Prometheus duration: too large`},
		// Any letters are read as the unit, the first and last of both cases too.
		{in: "1a", wantErr: `unknown unit "a"`},
		{in: "1z", wantErr: `unknown unit "z"`},
		{in: "1A", wantErr: `unknown unit "A"`},
		{in: "1Z", wantErr: `unknown unit "Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePrometheusDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestDurationPrometheus(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{15 * time.Second, "15s"},
		{1500 * time.Millisecond, "1s500ms"}, // String gives "1.5s", which Prometheus refuses
		{90 * time.Second, "1m30s"},
		{90 * 24 * time.Hour, "90d"},
		{25 * time.Hour, "1d1h"},
		{0, "0s"},
	}
	for _, tt := range tests {
		got := Duration(tt.in).Prometheus()
		if got != tt.want {
			t.Errorf("Duration(%v).Prometheus() = %q, want %q", tt.in, got, tt.want)
		}
		if d, err := ParsePrometheusDuration(got); err != nil || d != tt.in {
			t.Errorf("ParsePrometheusDuration(%q) = %v, %v; want %v", got, d, err, tt.in)
		}
	}
}

func TestSubjectError(t *testing.T) {
	tests := []struct {
		subject string
		want    string // "" = valid
	}{
		{"dev.*", ""},
		{"dev.>", ""},
		{">", ""},
		{"*", ""},
		{"$SYS.REQ.>", ""},
		{"_INBOX.>", ""},
		{"a.*.c", ""},
		{"a-b_c.d", ""},
		{"", "cannot be empty"},
		{"a..b", "empty token"},
		{".a", "starts with a dot"},
		{"a.", "ends with a dot"},
		{"a b", "whitespace"},
		{"a.>.b", `">" must be the last token`},
		{"dev.**", `token "**" mixes a wildcard`},
		{"a*", `token "a*" mixes a wildcard`},
		{"foo.>bar", `token ">bar" mixes a wildcard`},
	}
	for _, tt := range tests {
		err := SubjectError(tt.subject)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("SubjectError(%q) = %v, want valid", tt.subject, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("SubjectError(%q) = %v, want %q", tt.subject, err, tt.want)
		}
	}
}

func TestPermissions(t *testing.T) {
	tests := []struct {
		name string
		user User
		want Permissions
	}{
		{
			name: "allow covers both directions",
			user: User{Allow: []string{"dev.*", "logs.dev.*"}},
			want: Permissions{PublishAllow: []string{"dev.*", "logs.dev.*"}, SubscribeAllow: []string{"dev.*", "logs.dev.*"}},
		},
		{
			name: "one-direction lists and denies, in the order written",
			user: User{
				Allow: []string{"a.>"}, Publish: []string{"p.>"}, Subscribe: []string{"s.>"},
				Deny: []string{"a.secret"}, DenyPublish: []string{"a.ro.>"}, DenySubscribe: []string{"a.wo.>"},
			},
			want: Permissions{
				PublishAllow: []string{"a.>", "p.>"}, SubscribeAllow: []string{"a.>", "s.>"},
				PublishDeny: []string{"a.secret", "a.ro.>"}, SubscribeDeny: []string{"a.secret", "a.wo.>"},
			},
		},
		{
			name: "jetstream shorthand",
			user: User{Allow: []string{"dev.*"}, JetStream: true},
			want: Permissions{
				PublishAllow:   []string{"dev.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"},
				SubscribeAllow: []string{"dev.*", "_INBOX.>"},
			},
		},
		{
			name: "request reply, _INBOX.> not repeated",
			user: User{Allow: []string{"svc.>"}, Subscribe: []string{"_INBOX.>"}, JetStream: true, RequestReply: true},
			want: Permissions{
				PublishAllow:   []string{"svc.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>"},
				SubscribeAllow: []string{"svc.>", "_INBOX.>"},
				AllowResponses: true,
			},
		},
		{
			name: "duplicates across lists kept once",
			user: User{Allow: []string{"a.>"}, Publish: []string{"a.>"}},
			want: Permissions{PublishAllow: []string{"a.>"}, SubscribeAllow: []string{"a.>"}},
		},
		{
			name: "a direction without allow rules is denied everything",
			user: User{Subscribe: []string{"events.>"}, Deny: []string{"events.secret"}, RequestReply: true},
			want: Permissions{
				PublishDeny:    []string{">"},
				SubscribeAllow: []string{"events.>", "_INBOX.>"},
				SubscribeDeny:  []string{"events.secret"},
				AllowResponses: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.user.Permissions(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Permissions() =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}
