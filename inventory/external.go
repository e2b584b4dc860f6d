package inventory

import "strconv"

// NewProblems turns problems found outside this package (the roles' checks
// across the whole inventory) into the same error Load returns: each with
// the file and the line of its key, sorted by line. Nil when there are
// none.
func NewProblems(inv *Inventory, list []Problem) error {
	if len(list) == 0 {
		return nil
	}
	p := &Problems{}
	for _, pr := range list {
		pr.File = inv.Path
		if pr.Line == 0 {
			pr.Line = inv.Line(pr.Key)
		}
		p.List = append(p.List, pr)
	}
	p.sort()
	return p
}

// HostKey is the key path of the [[hosts]] entry named name ("hosts.1"),
// or "hosts" when there is none.
func (inv *Inventory) HostKey(name string) string {
	for i, h := range inv.Hosts {
		if h.Name == name {
			return "hosts." + strconv.Itoa(i)
		}
	}
	return "hosts"
}

// ReleaseBase is where the release files of a monitoring project are
// fetched from: its official release URL when download_url is unset, ""
// (offline: artifact_dir only) when it is "", and otherwise the mirror's
// folder for the project, laid out like the cache:
// <download_url>/<project>/v<version>/<file>.
func (m *Monitoring) ReleaseBase(project, official string) string {
	switch {
	case m.DownloadURL == nil:
		return official
	case *m.DownloadURL == "":
		return ""
	}
	return *m.DownloadURL + "/" + project
}

// OnMonitoringHost is the monitoring host, as the one host of a service
// that runs there when on; none otherwise.
func (inv *Inventory) OnMonitoringHost(on bool) []Host {
	if !on {
		return nil
	}
	if h, ok := inv.MonitoringHost(); ok {
		return []Host{h}
	}
	return nil
}
