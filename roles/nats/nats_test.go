package nats

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natsdeploy/natsdeploy/internal/desired"
	"github.com/natsdeploy/natsdeploy/internal/golden"
	"github.com/natsdeploy/natsdeploy/inventory"
)

// Fixed bcrypt hashes (cost 11) of "test-password-<user>", so goldens are
// stable and the real-server tests can log in with the passwords.
var testHashes = map[string]string{
	"route":                "$2a$11$UJXIdt58fIIynGYOgOdLTO8r850q.8nOS/h459TVbElKnyptbBRYC",
	"sys-user":             "$2a$11$KYqBn9IG2OgQ7Hx5lmxGk.Upn.uToUuOIXNEPkEP1hwPFElDVLNOa",
	"admin":                "$2a$11$K2IDScejMr5evfNkRIdHbudAx2FD3WtqJkKLO/qEncr0zLiiEbEH6",
	"dev-user":             "$2a$11$rn4a.YKqVPGV0l21yglAZOf/d5ORnsCUVetI2tgghpqkilZsh14Qa",
	"prod-user":            "$2a$11$vQRrQcFx3mtzjK3etwvWxeNLHYb4qhNpsInjIrdp747n4J0SZiRAW",
	"monitor-user":         "$2a$11$Hxb1m5.ltZuWN0gxMg2MVOwuBxDaTKdPFLhcux6zqxyE0Qzs1WSJ.",
	"user-service":         "$2a$11$PnaHKANsk./6DrGGvJ67geIENSbZYdG5q/Ndw4GiaoBhjjzRMz88G",
	"order-service":        "$2a$11$qnVQ3yqVeAYU3De6uyoMxOF74x4T9MmqjSWESFmD4jDg02BIDF4Z6",
	"payment-service":      "$2a$11$wJmJNGUD5Gn/jNMVVMszCOH1KWj7Yi/2vZXUnTU4KQqWzqYRWeBd.",
	"notification-service": "$2a$11$f4n55Pf3XwVua0M..cKH3.Lx4hotiYPqxNIBnnjCfvbn22Ok9FV32",
	"surveyor":             "$2a$11$M6t8nhk6Emht4hYlUog35.hkg.qGfXhcxg8u2VDCy3ZiRSID4dhCC",
	"natsdeploy":           "$2a$11$AtW5sp76xSSt.hZWyWty5.5jcBQ3I9PNbp41WjwwhUojYEn.slpWm",
}

func testPassword(user string) string { return "test-password-" + user }

// fakeSecrets hands out the fixed hashes above.
type fakeSecrets struct {
	routePassword, routeHash string
}

func (f fakeSecrets) BcryptHash(account, user string) (string, error) {
	if account == "" || user == "" {
		return "", errors.New("no account or user name")
	}
	if h, ok := testHashes[user]; ok {
		return h, nil
	}
	// Users of the shipped inventories that the fixture lacks.
	return testHashes["admin"], nil
}

func (f fakeSecrets) RouteBcryptHash() (string, error) { return f.routeHash, nil }
func (f fakeSecrets) RoutePassword() string            { return f.routePassword }

// SecretBcrypt: the surveyor's and natsdeploy's own slots exist in the
// fixture.
func (f fakeSecrets) SecretBcrypt(name string) (string, error) {
	if name != SurveyorSlot.Name && name != OperatorSlot.Name {
		return "", fmt.Errorf("no secret %q", name)
	}
	return testHashes[name], nil
}

var secrets = fakeSecrets{routePassword: testPassword("route"), routeHash: testHashes["route"]}

var testBinary = Artifact{Path: "/cache/nats-server", SHA256: strings.Repeat("ab", 32), Version: "2.14.9"}

// fixture is the lab inventory (the seed's tenants) with defaults filled in,
// built by hand so the goldens do not move when lab.toml is edited.
func fixture() *inventory.Inventory {
	quota := func() *inventory.AccountJetStream {
		return &inventory.AccountJetStream{MaxMem: 1 << 30, MaxFile: 4 << 30, MaxStreams: 1000, MaxConsumers: 10000}
	}
	logTime := true
	return &inventory.Inventory{
		NATS: inventory.NATS{
			Version:             "2.14.9",
			ClusterName:         "nats-cluster",
			ClientPort:          4222,
			ClusterPort:         6222,
			HTTPPort:            8222,
			RouteUser:           "route",
			MaxMemoryStore:      1 << 30,
			MaxFileStore:        4 << 30,
			ConfigDir:           "/etc/nats",
			DataDir:             "/var/lib/nats",
			LogDir:              "/var/log/nats",
			LogMaxSize:          100 << 20,
			LogMaxFiles:         5,
			LogTime:             &logTime,
			LameDuckDuration:    inventory.Duration(30 * time.Second),
			LameDuckGracePeriod: inventory.Duration(10 * time.Second),
		},
		Hosts: []inventory.Host{
			{Name: "nats-1", Address: "172.31.253.11"},
			{Name: "nats-2", Address: "172.31.253.12"},
			{Name: "nats-3", Address: "172.31.253.13"},
		},
		Accounts: []inventory.Account{
			{Name: "SYS", System: true, Users: []inventory.User{
				{Name: "sys-user", Allow: []string{"$SYS.>"}, RequestReply: true},
			}},
			{Name: "ADMIN", JetStream: quota(), Users: []inventory.User{
				{Name: "admin", Allow: []string{">"}},
			}},
			{Name: "DEV", JetStream: quota(), Users: []inventory.User{
				{Name: "dev-user", Allow: []string{"dev.*", "logs.dev.*", "metrics.dev.*"}, JetStream: true, RequestReply: true},
			}},
			{Name: "PROD", JetStream: quota(), Users: []inventory.User{
				{Name: "prod-user", Allow: []string{"prod.*", "logs.prod.*", "metrics.prod.*", "alerts.*"}, JetStream: true, RequestReply: true},
			}},
			{Name: "MONITORING", JetStream: quota(), Users: []inventory.User{
				{Name: "monitor-user", Allow: []string{">", "$SYS.>", "$SYS.REQ.>"}},
			}},
			{Name: "SERVICES", Users: []inventory.User{
				{Name: "user-service", Allow: []string{"services.user.>", "events.user.>", "notifications.user.>"}, RequestReply: true},
				{Name: "order-service", Allow: []string{"services.order.>", "events.order.>", "notifications.order.>"}, RequestReply: true},
				{Name: "payment-service", Allow: []string{"services.payment.>", "events.payment.>", "notifications.payment.>"}, RequestReply: true},
				{Name: "notification-service", Allow: []string{"notifications.send.>", "events.notification.>"}, RequestReply: true},
			}},
		},
	}
}

func mustRender(t *testing.T, inv *inventory.Inventory, host int) Rendered {
	t.Helper()
	r, err := Render(inv, inv.Hosts[host], secrets)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r Rendered) byName() map[string][]byte {
	return map[string][]byte{
		ConfigFile:   r.Server,
		RoutesFile:   r.Routes,
		AccountsFile: r.Accounts,
		LoggingFile:  r.Logging,
		TLSFile:      r.TLS,
		Service:      r.Unit,
		LogService:   r.LogUnit,
	}
}

func TestGolden(t *testing.T) {
	r := mustRender(t, fixture(), 0)
	for name, got := range r.byName() {
		golden.Check(t, filepath.Join("testdata", name+".golden"), got)
	}
}

func TestByteStable(t *testing.T) {
	a := mustRender(t, fixture(), 1)
	b := mustRender(t, fixture(), 1)
	for name, got := range a.byName() {
		if !bytes.Equal(got, b.byName()[name]) {
			t.Errorf("%s differs between two renders of the same inventory", name)
		}
	}
	da, err := Desired(fixture(), fixture().Hosts[1], secrets, testBinary)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := Desired(fixture(), fixture().Hosts[1], secrets, testBinary)
	for i := range da.Files {
		if da.Files[i].SHA256 != db.Files[i].SHA256 {
			t.Errorf("%s: hash differs between two runs", da.Files[i].Path)
		}
	}
}

// changedFiles renders nats-1 before and after change and names the files
// whose bytes differ.
func changedFiles(t *testing.T, change func(*inventory.Inventory)) []string {
	t.Helper()
	inv := fixture()
	before := mustRender(t, inv, 0).byName()
	change(inv)
	after := mustRender(t, inv, 0).byName()
	var changed []string
	for _, name := range []string{ConfigFile, RoutesFile, AccountsFile, LoggingFile, Service, LogService} {
		if !bytes.Equal(before[name], after[name]) {
			changed = append(changed, name)
		}
	}
	return changed
}

// A change must touch only the file whose handler matches what nats-server
// can do with it: reloadable settings in reload files, the rest in the
// restart file. The real-server test proves the classification itself.
func TestChangeTouchesOnlyItsFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*inventory.Inventory)
		want   []string
	}{
		{"permission", func(inv *inventory.Inventory) {
			inv.Accounts[2].Users[0].Allow = append(inv.Accounts[2].Users[0].Allow, "dev.extra.>")
		}, []string{AccountsFile}},
		{"account quota", func(inv *inventory.Inventory) { inv.Accounts[3].JetStream.MaxStreams = 50 }, []string{AccountsFile}},
		{"new user", func(inv *inventory.Inventory) {
			inv.Accounts[5].Users = inv.Accounts[5].Users[:3]
		}, []string{AccountsFile}},
		{"debug", func(inv *inventory.Inventory) { inv.NATS.Debug = true }, []string{LoggingFile}},
		{"logtime", func(inv *inventory.Inventory) { f := false; inv.NATS.LogTime = &f }, []string{LoggingFile}},
		{"log size limit", func(inv *inventory.Inventory) { inv.NATS.LogMaxSize = 200 << 20 }, []string{ConfigFile}},
		{"log files kept", func(inv *inventory.Inventory) { inv.NATS.LogMaxFiles = 9 }, []string{ConfigFile}},
		{"client port", func(inv *inventory.Inventory) { inv.NATS.ClientPort = 4333 }, []string{ConfigFile}},
		// The listener needs a restart; the routes to the other nodes
		// change with it.
		{"cluster port", func(inv *inventory.Inventory) { inv.NATS.ClusterPort = 6333 }, []string{ConfigFile, RoutesFile}},
		{"new node", func(inv *inventory.Inventory) {
			inv.Hosts = append(inv.Hosts, inventory.Host{Name: "nats-4", Address: "172.31.253.14"})
		}, []string{RoutesFile}},
		{"file store", func(inv *inventory.Inventory) { inv.NATS.MaxFileStore = 8 << 30 }, []string{ConfigFile}},
		// TimeoutStopSec follows lame_duck_duration.
		{"lame duck", func(inv *inventory.Inventory) { inv.NATS.LameDuckDuration = inventory.Duration(2 * time.Minute) }, []string{ConfigFile, Service}},
		{"log dir", func(inv *inventory.Inventory) { inv.NATS.LogDir = "/srv/log/nats" }, []string{LoggingFile, Service, LogService}},
		// The surveyor's user is an accounts change: a reload, no restart.
		{"surveyor on", func(inv *inventory.Inventory) { inv.Monitoring = &inventory.Monitoring{Host: "nats-1"} }, []string{AccountsFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changedFiles(t, tc.change)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("changed %v, want %v", got, tc.want)
			}
		})
	}
}

// A new route password must reach running nodes by reload: a rolling
// restart would leave restarted and old nodes unable to authenticate each
// other's routes.
func TestRoutePasswordChangeTouchesOnlyRoutes(t *testing.T) {
	inv := fixture()
	before := mustRender(t, inv, 0).byName()
	other := secrets
	other.routePassword = "another-route-password-1"
	r, err := Render(inv, inv.Hosts[0], other)
	if err != nil {
		t.Fatal(err)
	}
	after := r.byName()
	for name := range before {
		if changed := !bytes.Equal(before[name], after[name]); changed != (name == RoutesFile) {
			t.Errorf("%s changed = %v", name, changed)
		}
	}
}

// Every inventory shipped in inventory/ loads and gives every host a
// desired state.
func TestShippedInventories(t *testing.T) {
	for _, p := range shippedInventories(t) {
		inv, err := loadShipped(t, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, h := range inv.Hosts {
			if _, err := Desired(inv, h, secrets, testBinary); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

var passwordEnvRE = regexp.MustCompile(`password_env\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"`)

// loadShipped loads a shipped inventory as on a user's machine: the
// environment variables it names for passwords set, and without the local
// SSH files it names, which only matter for connecting.
func loadShipped(t *testing.T, p string) (*inventory.Inventory, error) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	for _, m := range passwordEnvRE.FindAllStringSubmatch(string(data), -1) {
		t.Setenv(m[1], "Only-For-Tests-"+m[1]+"-7f3c9a")
	}
	return inventory.LoadWithOptions(p, inventory.LoadOptions{SkipFileChecks: true})
}

func shippedInventories(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "inventory", "*.toml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no inventories in ../../inventory: %v", err)
	}
	var invs []string
	for _, p := range paths {
		// Secrets files sit beside inventories but are not inventories.
		if !strings.HasSuffix(p, ".secrets.toml") {
			invs = append(invs, p)
		}
	}
	return invs
}

func TestDesired(t *testing.T) {
	inv := fixture()
	h, err := Desired(inv, inv.Hosts[0], secrets, testBinary)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "nats-1" {
		t.Errorf("name %q", h.Name)
	}
	if len(h.Users) != 1 || h.Users[0] != (desired.User{Name: "nats", Home: "/var/lib/nats", Shell: "/usr/sbin/nologin"}) {
		t.Errorf("users %+v", h.Users)
	}
	wantDirs := []desired.Dir{
		{Path: "/etc/nats", Owner: "root", Group: "nats", Mode: fs.ModeDir | 0o750},
		// Kept by destroy unless it purges data.
		{Path: "/var/lib/nats", Owner: "nats", Group: "nats", Mode: fs.ModeDir | 0o750, Holds: desired.Data},
		{Path: "/var/log/nats", Owner: "nats", Group: "nats", Mode: fs.ModeDir | 0o750, Holds: desired.Data},
	}
	if len(h.Dirs) != len(wantDirs) {
		t.Fatalf("dirs %+v", h.Dirs)
	}
	for i := range wantDirs {
		if h.Dirs[i] != wantDirs[i] {
			t.Errorf("dir %d = %+v, want %+v", i, h.Dirs[i], wantDirs[i])
		}
	}

	type fileWant struct {
		mode         fs.FileMode
		owner, group string
		onChange     desired.Handler
		service      string
		validate     bool
		sensitive    bool
	}
	want := map[string]fileWant{
		"/usr/local/bin/nats-server":                  {0o755, "root", "root", desired.Restart, Service, false, false},
		"/etc/nats/nats-server.conf":                  {0o640, "root", "nats", desired.Restart, Service, true, false},
		"/etc/nats/routes.conf":                       {0o640, "root", "nats", desired.Reload, Service, true, true},
		"/etc/nats/accounts.conf":                     {0o640, "root", "nats", desired.Reload, Service, true, false},
		"/etc/nats/logging.conf":                      {0o640, "root", "nats", desired.Reload, Service, true, false},
		"/etc/nats/tls.conf":                          {0o640, "root", "nats", desired.Reload, Service, true, false},
		"/etc/systemd/system/nats-server.service":     {0o644, "root", "root", desired.Restart, Service, false, false},
		"/etc/systemd/system/nats-server-log.service": {0o644, "root", "root", desired.Restart, LogService, false, false},
	}
	if len(h.Files) != len(want) {
		t.Fatalf("%d files, want %d", len(h.Files), len(want))
	}
	for _, f := range h.Files {
		w, ok := want[f.Path]
		if !ok {
			t.Errorf("unexpected file %s", f.Path)
			continue
		}
		if f.Mode != w.mode || f.Owner != w.owner || f.Group != w.group || f.OnChange != w.onChange || f.Service != w.service || f.Sensitive != w.sensitive {
			t.Errorf("%s: %v %s:%s %s %s sensitive=%v", f.Path, f.Mode, f.Owner, f.Group, f.OnChange, f.Service, f.Sensitive)
		}
		if w.validate != (f.ValidateGroup == ValidateGroup && f.ValidateCmd == "cd {dir} && runuser -u nats -- /usr/local/bin/nats-server -t -c nats-server.conf") {
			t.Errorf("%s: validate %q %q", f.Path, f.ValidateGroup, f.ValidateCmd)
		}
		if (f.Source == "") == (f.Content == nil) {
			t.Errorf("%s: exactly one of Source and Content must be set", f.Path)
		}
		if f.Source != "" && (f.Source != testBinary.Path || f.SHA256 != testBinary.SHA256) {
			t.Errorf("%s: source %s %s", f.Path, f.Source, f.SHA256)
		}
		if f.Content != nil && f.SHA256 != sum(f.Content) {
			t.Errorf("%s: SHA256 does not match the content", f.Path)
		}
	}

	if len(h.Units) != 2 || h.Units[0].Name != LogService || h.Units[1].Name != Service {
		t.Fatalf("units %+v", h.Units)
	}
	u := h.Units[1]
	if u.UnitFile != UnitPath || u.Ready == nil || u.Ready.Desc != "/healthz" || u.Reload == nil || u.Reload.Desc != "config_digest" ||
		u.Settled == nil || u.DiagnoseCmd == "" {
		t.Errorf("unit %+v", u)
	}
	if h.Units[0].Ready != nil || h.Units[0].Reload != nil || h.Units[0].Settled != nil {
		t.Errorf("the log copier has gates: %+v", h.Units[0])
	}
}

func TestNoPlaintextUserPasswords(t *testing.T) {
	r := mustRender(t, fixture(), 0)
	all := string(r.Server) + string(r.Routes) + string(r.Accounts) + string(r.Logging) + string(r.Unit) + string(r.LogUnit)
	for user := range testHashes {
		if user != "route" && strings.Contains(all, testPassword(user)) {
			t.Errorf("plaintext password of %s rendered", user)
		}
	}
	// The route password is the one clear secret, and only in route URLs.
	if strings.Count(all, testPassword("route")) != 2 || strings.Count(string(r.Routes), testPassword("route")) != 2 {
		t.Errorf("route password appears %d times, want once per route", strings.Count(all, testPassword("route")))
	}

	bad := secrets
	bad.routeHash = "not-a-hash"
	if _, err := Render(fixture(), fixture().Hosts[0], bad); err == nil || !strings.Contains(err.Error(), "not a bcrypt hash") {
		t.Errorf("plaintext route hash: error %v", err)
	}
}

func TestRoutesGoToOtherHosts(t *testing.T) {
	r := mustRender(t, fixture(), 1)
	s := string(r.Server) + string(r.Routes)
	for _, want := range []string{
		`"nats-route://route:test-password-route@172.31.253.11:6222"`,
		`"nats-route://route:test-password-route@172.31.253.13:6222"`,
		`advertise: "172.31.253.12:6222"`,
		`server_name: "nats-2"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("nats-2 config lacks %s", want)
		}
	}
	if strings.Contains(s, "@172.31.253.12:") {
		t.Error("nats-2 routes to itself")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`$SYS.>`:    `"$SYS.>"`,
		`a"b\c`:     `"a\"b\\c"`,
		"tab\there": `"tab\x09here"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// The inventory invariants are inventory validation's (with file:line, see
// inventory/validate_test.go); Desired only refuses to go without a binary.
func TestDesiredNeedsBinary(t *testing.T) {
	if _, err := Desired(fixture(), fixture().Hosts[0], secrets, Artifact{}); err == nil {
		t.Error("no error without a binary")
	}
}

// withSurveyor is the fixture with the surveyor deployed.
func withSurveyor() *inventory.Inventory {
	inv := fixture()
	on := true
	inv.Monitoring = &inventory.Monitoring{Host: "nats-1", Surveyor: inventory.SurveyorSpec{Enabled: &on}}
	return inv
}

// The surveyor's user lands in the system account, with its slot's hash
// and only the requests nats-surveyor makes; the golden shows the whole
// accounts.conf, and the user is absent when the surveyor is off.
func TestSurveyorUser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inv    *inventory.Inventory
		golden string // "" : the user must be absent
	}{
		{"surveyor on", withSurveyor(), "accounts-surveyor.conf.golden"},
		{"no monitoring", fixture(), ""},
		{"surveyor off", func() *inventory.Inventory {
			inv := withSurveyor()
			off := false
			inv.Monitoring.Surveyor.Enabled = &off
			return inv
		}(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRender(t, tc.inv, 0).Accounts
			has := bytes.Contains(got, []byte(`user: "`+inventory.SurveyorUser+`"`))
			if tc.golden == "" {
				if has {
					t.Fatalf("the surveyor's user is rendered though the surveyor does not run:\n%s", got)
				}
				return
			}
			if !has || !bytes.Contains(got, []byte(testHashes["surveyor"])) {
				t.Fatalf("no surveyor user with its slot's hash:\n%s", got)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), got)
		})
	}
}

// The role asks for the surveyor's slot exactly when the surveyor runs, so
// the hash it renders is always resolved.
func TestSurveyorSlotRequested(t *testing.T) {
	if got := (Role{}).Secrets(fixture()); len(got) != 1 || got[0] != OperatorSlot {
		t.Errorf("Secrets without monitoring = %v, want natsdeploy's own only", got)
	}
	if got := (Role{}).Secrets(withSurveyor()); len(got) != 2 || got[1] != SurveyorSlot {
		t.Errorf("Secrets with the surveyor = %v, want [%v %v]", got, OperatorSlot, SurveyorSlot)
	}
	noSys := fixture()
	for i := range noSys.Accounts {
		noSys.Accounts[i].System = false
	}
	if got := (Role{}).Secrets(noSys); len(got) != 0 {
		t.Errorf("Secrets without a system account = %v, want none", got)
	}
}
