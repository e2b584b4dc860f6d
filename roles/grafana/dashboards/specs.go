package dashboards

// The dashboards. Every metric name here is one that
// prometheus-nats-exporter (-varz -connz -routez -subz -healthz -jsz=all,
// no -prefix), nats-surveyor (--accounts --jsz all) or Prometheus itself
// really exports: testdata/metrics.txt lists each with its upstream source
// file, and the tests check every query against that list with Prometheus's
// own parser. The exporter's /varz numbers are gauges even when they only
// grow, which rate() handles (a drop reads as a restart).

// Selectors shared by many queries: the exporter's series are scoped by job
// so that a second job scraping the same names cannot leak in.
const (
	exp    = `job="nats-exporter"`
	expSel = `job="nats-exporter", instance=~"$instance"`
	rate   = `[$__rate_interval]`
)

var hostVar = variable{name: "instance", label: "Host", metric: `gnatsd_varz_mem{job="nats-exporter"}`, labelName: "instance"}

var specs = []spec{
	{
		uid:         "natsdeploy-nats-overview",
		title:       "NATS Overview",
		description: "The whole NATS cluster at a glance: nodes up and healthy, connections, subscriptions, memory, JetStream messages and traffic.",
		rows: []row{
			{title: "Cluster", panels: []panel{
				{kind: singleStat, title: "Nodes scraped", description: "NATS nodes whose exporter Prometheus scrapes.",
					targets: []target{{`count(up{` + exp + `} == 1)`, "nodes", SourceExporter}}},
				{kind: singleStat, title: "Nodes healthy", description: "Nodes whose /healthz answers ok.",
					targets: []target{{`count(gnatsd_healthz_status{` + exp + `} == 0)`, "healthy", SourceExporter}}},
				{kind: singleStat, title: "Client connections", unit: "short",
					targets: []target{{`sum(gnatsd_varz_connections{` + exp + `})`, "connections", SourceExporter}}},
				{kind: singleStat, title: "Subscriptions", unit: "short",
					targets: []target{{`sum(gnatsd_varz_subscriptions{` + exp + `})`, "subscriptions", SourceExporter}}},
				{kind: singleStat, title: "Memory (RSS)", unit: "bytes",
					targets: []target{{`sum(gnatsd_varz_mem{` + exp + `})`, "memory", SourceExporter}}},
				{kind: singleStat, title: "JetStream messages", unit: "short", description: "Messages stored in JetStream, counted once per replica.",
					targets: []target{{`sum(jetstream_server_total_messages{` + exp + `})`, "messages", SourceExporter}}},
			}},
			{title: "Traffic", panels: []panel{
				{title: "Messages per second", unit: "short", targets: []target{
					{`sum(rate(gnatsd_varz_in_msgs{` + exp + `}` + rate + `))`, "in", SourceExporter},
					{`sum(rate(gnatsd_varz_out_msgs{` + exp + `}` + rate + `))`, "out", SourceExporter},
				}},
				{title: "Bytes per second", unit: "Bps", targets: []target{
					{`sum(rate(gnatsd_varz_in_bytes{` + exp + `}` + rate + `))`, "in", SourceExporter},
					{`sum(rate(gnatsd_varz_out_bytes{` + exp + `}` + rate + `))`, "out", SourceExporter},
				}},
				{title: "Connections per host", unit: "short", targets: []target{
					{`gnatsd_varz_connections{` + exp + `}`, "{{instance}}", SourceExporter},
				}},
				{title: "Memory per host", unit: "bytes", targets: []target{
					{`gnatsd_varz_mem{` + exp + `}`, "{{instance}}", SourceExporter},
				}},
			}},
		},
	},
	{
		uid:         "natsdeploy-nats-servers",
		title:       "NATS Servers",
		description: "Each NATS node from its own monitoring endpoints (/varz, /routez, /healthz), read by the exporter on that host.",
		vars:        []variable{hostVar},
		rows: []row{
			{title: "Resources", panels: []panel{
				{title: "CPU", unit: "percent", targets: []target{{`gnatsd_varz_cpu{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Memory (RSS)", unit: "bytes", targets: []target{{`gnatsd_varz_mem{` + expSel + `}`, "{{instance}}", SourceExporter}}},
			}},
			{title: "Clients", panels: []panel{
				{title: "Connections", unit: "short", targets: []target{{`gnatsd_varz_connections{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "New connections per second", unit: "short", targets: []target{{`rate(gnatsd_varz_total_connections{` + expSel + `}` + rate + `)`, "{{instance}}", SourceExporter}}},
				{title: "Subscriptions", unit: "short", targets: []target{{`gnatsd_varz_subscriptions{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Slow consumers (since start)", unit: "short", targets: []target{{`gnatsd_varz_slow_consumers{` + expSel + `}`, "{{instance}}", SourceExporter}}},
			}},
			{title: "Traffic", panels: []panel{
				{title: "Messages per second", unit: "short", targets: []target{
					{`rate(gnatsd_varz_in_msgs{` + expSel + `}` + rate + `)`, "{{instance}} in", SourceExporter},
					{`rate(gnatsd_varz_out_msgs{` + expSel + `}` + rate + `)`, "{{instance}} out", SourceExporter},
				}},
				{title: "Bytes per second", unit: "Bps", targets: []target{
					{`rate(gnatsd_varz_in_bytes{` + expSel + `}` + rate + `)`, "{{instance}} in", SourceExporter},
					{`rate(gnatsd_varz_out_bytes{` + expSel + `}` + rate + `)`, "{{instance}} out", SourceExporter},
				}},
			}},
			{title: "Cluster", panels: []panel{
				{title: "Route connections", unit: "short", description: "Route pooling opens several connections per peer: this counts connections, not peers.",
					targets: []target{{`gnatsd_routez_num_routes{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Health (0 = ok)", unit: "short", description: "/healthz: 0 when the node is ok, including JetStream caught up.",
					targets: []target{{`gnatsd_healthz_status{` + expSel + `}`, "{{instance}}", SourceExporter}}},
			}},
		},
	},
	{
		uid:         "natsdeploy-jetstream",
		title:       "JetStream",
		description: "JetStream storage against its limits, stored messages, streams and consumers, API load and the meta leader each node sees.",
		vars: []variable{hostVar,
			{name: "account", label: "Account", metric: `jetstream_stream_total_messages{job="nats-exporter"}`, labelName: "account"}},
		rows: []row{
			{title: "Storage", panels: []panel{
				{title: "Memory store", unit: "bytes", targets: []target{
					{`gnatsd_varz_jetstream_stats_memory{` + expSel + `}`, "{{instance}} used", SourceExporter},
					{`gnatsd_varz_jetstream_config_max_memory{` + expSel + `}`, "{{instance}} limit", SourceExporter},
				}},
				{title: "File store", unit: "bytes", targets: []target{
					{`gnatsd_varz_jetstream_stats_storage{` + expSel + `}`, "{{instance}} used", SourceExporter},
					{`gnatsd_varz_jetstream_config_max_storage{` + expSel + `}`, "{{instance}} limit", SourceExporter},
				}},
			}},
			{title: "Messages", panels: []panel{
				{title: "Messages stored", unit: "short", description: "Per node, so a replicated stream counts on every node holding a replica.",
					targets: []target{{`jetstream_server_total_messages{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Bytes stored", unit: "bytes",
					targets: []target{{`jetstream_server_total_message_bytes{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Streams and consumers", unit: "short", targets: []target{
					{`jetstream_server_total_streams{` + expSel + `}`, "{{instance}} streams", SourceExporter},
					{`jetstream_server_total_consumers{` + expSel + `}`, "{{instance}} consumers", SourceExporter},
				}},
				{title: "API requests per second", unit: "reqps", targets: []target{
					{`rate(gnatsd_varz_jetstream_stats_api_total{` + expSel + `}` + rate + `)`, "{{instance}} requests", SourceExporter},
					{`rate(gnatsd_varz_jetstream_stats_api_errors{` + expSel + `}` + rate + `)`, "{{instance}} errors", SourceExporter},
				}},
			}},
			{title: "Cluster", panels: []panel{
				{kind: singleStat, title: "Meta leader", description: "How many nodes see each meta leader; an empty name means no leader.",
					targets: []target{{`count by (meta_leader) (jetstream_server_jetstream_disabled{` + exp + `})`, "{{meta_leader}}", SourceExporter}}},
			}},
			{title: "Streams and consumers of $account", panels: []panel{
				{title: "Messages per stream", unit: "short", targets: []target{
					{`max by (account, stream_name) (jetstream_stream_total_messages{` + exp + `, account=~"$account"})`, "{{account}} {{stream_name}}", SourceExporter},
				}},
				{title: "Bytes per stream", unit: "bytes", targets: []target{
					{`max by (account, stream_name) (jetstream_stream_total_bytes{` + exp + `, account=~"$account"})`, "{{account}} {{stream_name}}", SourceExporter},
				}},
				{title: "Consumer messages pending", unit: "short", targets: []target{
					{`max by (account, stream_name, consumer_name) (jetstream_consumer_num_pending{` + exp + `, account=~"$account"})`, "{{stream_name}} {{consumer_name}}", SourceExporter},
				}},
				{title: "Consumer acks pending", unit: "short", targets: []target{
					{`max by (account, stream_name, consumer_name) (jetstream_consumer_num_ack_pending{` + exp + `, account=~"$account"})`, "{{stream_name}} {{consumer_name}}", SourceExporter},
				}},
			}},
		},
	},
	{
		uid:         "natsdeploy-nats-surveyor",
		title:       "NATS Surveyor",
		description: "The cluster as the surveyor sees it through the system account: every server's statistics, routes by peer, and per-account use.",
		vars: []variable{
			{name: "server", label: "Server", metric: "nats_core_mem_bytes", labelName: "server_name"},
			{name: "account", label: "Account", metric: "nats_core_account_conn_count", labelName: "account_name"},
		},
		rows: []row{
			{title: "Survey", panels: []panel{
				{kind: singleStat, title: "Connected to NATS", description: "1 when the surveyor is connected.",
					targets: []target{{`nats_up`, "connected", SourceSurveyor}}},
				{kind: singleStat, title: "Servers answering",
					targets: []target{{`nats_survey_surveyed_count`, "answering", SourceSurveyor}}},
				{kind: singleStat, title: "Servers expected",
					targets: []target{{`nats_survey_expected_count`, "expected", SourceSurveyor}}},
				{title: "Survey duration", unit: "s", targets: []target{
					{`rate(nats_survey_duration_seconds_sum` + rate + `) / rate(nats_survey_duration_seconds_count` + rate + `)`, "duration", SourceSurveyor},
				}},
			}},
			{title: "Servers", panels: []panel{
				{title: "Memory", unit: "bytes", targets: []target{{`nats_core_mem_bytes{server_name=~"$server"}`, "{{server_name}}", SourceSurveyor}}},
				{title: "CPU", unit: "percent", targets: []target{{`nats_core_cpu_percentage{server_name=~"$server"}`, "{{server_name}}", SourceSurveyor}}},
				{title: "Connections", unit: "short", targets: []target{{`nats_core_connection_count{server_name=~"$server"}`, "{{server_name}}", SourceSurveyor}}},
				{title: "Subscriptions", unit: "short", targets: []target{{`nats_core_subs_count{server_name=~"$server"}`, "{{server_name}}", SourceSurveyor}}},
				{title: "Messages per second", unit: "short", targets: []target{
					{`rate(nats_core_recv_msgs_count{server_name=~"$server"}` + rate + `)`, "{{server_name}} received", SourceSurveyor},
					{`rate(nats_core_sent_msgs_count{server_name=~"$server"}` + rate + `)`, "{{server_name}} sent", SourceSurveyor},
				}},
				{title: "Slow consumers (since start)", unit: "short", targets: []target{{`nats_core_slow_consumer_count{server_name=~"$server"}`, "{{server_name}}", SourceSurveyor}}},
				{title: "Route peers", unit: "short", description: "Distinct peers each server has routes to (pooled connections to one peer count once).",
					targets: []target{{`count by (server_name) (count by (server_name, server_route_name) (nats_core_route_pending_bytes{server_name=~"$server"}))`, "{{server_name}}", SourceSurveyor}}},
			}},
			{title: "Accounts", panels: []panel{
				{title: "Connections per account", unit: "short", targets: []target{
					{`sum by (account_name) (nats_core_account_conn_count{account_name=~"$account"})`, "{{account_name}}", SourceSurveyor}}},
				{title: "Subscriptions per account", unit: "short", targets: []target{
					{`sum by (account_name) (nats_core_account_sub_count{account_name=~"$account"})`, "{{account_name}}", SourceSurveyor}}},
				{title: "Messages per second per account", unit: "short", targets: []target{
					{`sum by (account_name) (rate(nats_core_account_msgs_recv{account_name=~"$account"}` + rate + `))`, "{{account_name}} received", SourceSurveyor},
					{`sum by (account_name) (rate(nats_core_account_msgs_sent{account_name=~"$account"}` + rate + `))`, "{{account_name}} sent", SourceSurveyor},
				}},
				{title: "JetStream use per account", unit: "bytes", targets: []target{
					{`nats_core_account_jetstream_storage_used{account_name=~"$account"}`, "{{account_name}} file", SourceSurveyor},
					{`nats_core_account_jetstream_memory_used{account_name=~"$account"}`, "{{account_name}} memory", SourceSurveyor},
				}},
				{title: "Messages per stream", unit: "short", targets: []target{
					{`max by (account_name, stream) (nats_stream_total_messages{account_name=~"$account"})`, "{{account_name}} {{stream}}", SourceSurveyor}}},
			}},
		},
	},
	{
		uid:         "natsdeploy-prometheus-exporter",
		title:       "Prometheus Exporter",
		description: "The Prometheus NATS exporters and what each collects, and the health of Prometheus's own scraping and rules.",
		vars:        []variable{{name: "instance", label: "Host", metric: `up{job="nats-exporter"}`, labelName: "instance"}},
		rows: []row{
			{title: "Exporter targets", panels: []panel{
				{title: "Exporter up", unit: "short", targets: []target{{`up{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Scrape duration", unit: "s", targets: []target{{`scrape_duration_seconds{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "Samples per scrape", unit: "short", targets: []target{{`scrape_samples_scraped{` + expSel + `}`, "{{instance}}", SourceExporter}}},
			}},
			{title: "Collectors", panels: []panel{
				{title: "connz: connections", unit: "short", targets: []target{{`gnatsd_connz_num_connections{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "subsz: subscriptions", unit: "short", targets: []target{{`gnatsd_subsz_num_subscriptions{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "routez: route connections", unit: "short", targets: []target{{`gnatsd_routez_num_routes{` + expSel + `}`, "{{instance}}", SourceExporter}}},
				{title: "jsz: streams", unit: "short", targets: []target{{`jetstream_server_total_streams{` + expSel + `}`, "{{instance}}", SourceExporter}}},
			}},
			{title: "Prometheus", panels: []panel{
				{title: "Targets up by job", unit: "short", targets: []target{{`sum by (job) (up)`, "{{job}}", SourcePrometheus}}},
				{kind: singleStat, title: "Last config reload ok", description: "1 when Prometheus's last configuration reload succeeded.",
					targets: []target{{`prometheus_config_last_reload_successful{job="prometheus"}`, "reload ok", SourcePrometheus}}},
				{title: "Rule evaluation failures per second", unit: "short", targets: []target{
					{`sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total{job="prometheus"}` + rate + `))`, "{{rule_group}}", SourcePrometheus}}},
				{title: "Surveyor scrape duration", unit: "s", targets: []target{{`scrape_duration_seconds{job="nats-surveyor"}`, "{{instance}}", SourceSurveyor}}},
			}},
		},
	},
}
