package inventory

import "time"

// Size is a byte count written as "1GB", "512MB", "100M" or a plain number.
// Units are powers of 1024, as in nats-server's own config files.
type Size int64

// Duration is written as Go durations are: "30s", "2m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Permissions are a user's effective subject rules after Allow/Deny and the
// JetStream and RequestReply shorthands are expanded. Every list keeps the
// order the inventory wrote it in, without duplicates, so rendering is
// byte-stable.
type Permissions struct {
	PublishAllow   []string
	PublishDeny    []string
	SubscribeAllow []string
	SubscribeDeny  []string
	AllowResponses bool
}
