#!/usr/bin/env python3
"""Generate the Grafana dashboards in dashboards/grafana/ (run from anywhere; no arguments).

The JSON files are committed; edit this script and re-run it rather than editing the JSON.
`cargo test -p herald-exporter --test integration dashboards::` checks that the committed JSON is what this
script writes. Every dashboard takes its Prometheus data source from the `datasource` variable.
"""
import json
import os

OUT = os.environ.get("DASHBOARDS_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "grafana")
DS = {"type": "prometheus", "uid": "${datasource}"}
SVC = "protocol, address, port, family, mark"
# Selector for "the chosen directors".
INST = 'job=~"$job", instance=~"$instance"'
# Selector for "the chosen directors and service(s)"; fwmark services have no address/port and
# address services no mark: the variables' "All" value is ".*", which also matches a missing label.
SEL = INST + ', protocol=~"$protocol", address=~"$address", port=~"$port", mark=~"$mark"'


def var_ds():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1}


def var_query(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"var-{name}"}, "definition": query,
            "refresh": 2, "includeAll": True, "allValue": ".*", "multi": multi,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "hide": 0}


def common_vars():
    return [
        var_ds(),
        var_query("job", "Cluster (job)", "label_values(ipvs_up, job)"),
        var_query("instance", "Director", 'label_values(ipvs_up{job=~"$job"}, instance)'),
    ]


def service_vars():
    base = 'ipvs_service_info{job=~"$job", instance=~"$instance"'
    return [
        var_query("protocol", "Protocol", f"label_values({base}}}, protocol)"),
        var_query("address", "VIP", f'label_values({base}, protocol=~"$protocol"}}, address)'),
        var_query("port", "Port", f'label_values({base}, address=~"$address"}}, port)'),
        var_query("mark", "Fwmark", f'label_values({base}, protocol="fwm"}}, mark)'),
    ]


class Board:
    def __init__(self, uid, title, description, variables):
        self.uid, self.title, self.description, self.variables = uid, title, description, variables
        self.panels = []
        self.x = self.y = 0
        self.row_h = 0

    def panel(self, kind, title, targets, unit="short", w=12, h=8, description="", extra=None):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        p = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": lf,
                 **({"format": "table", "instant": True} if kind == "table" else {})}
                for i, (e, lf) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
        }
        if kind == "timeseries":
            p["options"] = {"legend": {"displayMode": "table", "placement": "bottom",
                                       "calcs": ["lastNotNull", "max"]},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        if extra:
            p.update(extra)
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def write(self):
        d = {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["ipvs", "ipvs-herald", "lvs"], "timezone": "browser", "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": self.variables},
            "annotations": {"list": []},
            "links": [{"title": "ipvs-herald dashboards", "type": "dashboards",
                       "tags": ["ipvs-herald"], "asDropdown": True}],
            "panels": self.panels,
        }
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, f"{self.uid}.json"), "w", encoding="utf-8") as f:
            json.dump(d, f, indent=2, sort_keys=False)
            f.write("\n")


def svc_legend():
    return "{{instance}} {{protocol}} {{address}}{{mark}}:{{port}} {{name}}"


def overview():
    b = Board("ipvs-herald-cluster-overview", "IPVS / Cluster overview",
              "Directors of an all-active IPVS cluster side by side, traffic per VIP.", common_vars())
    b.panel("stat", "Exporters up", [(f'sum(up{{{INST}}})', "")], w=4, h=4)
    b.panel("stat", "IPVS readable", [(f'sum(ipvs_up{{{INST}}})', "")], w=4, h=4,
            description="Directors where ipvs-herald can read IPVS (ipvs_up).")
    b.panel("stat", "Services without usable destination",
            [(f'count(ipvs_service_usable_destinations{{{INST}}} == 0) or vector(0)', "")], w=4, h=4)
    b.panel("stat", "Drained destinations", [(f'count(ipvs_destination_weight{{{INST}}} == 0) or vector(0)', "")], w=4, h=4)
    b.panel("stat", "Busiest director vs even share (worst VIP)", [(
        f'max(max by (job, {SVC}) (sum by (job, instance, {SVC}) (rate(ipvs_service_connections_total{{{INST}}}[$__rate_interval]))'
        f' / on (job, {SVC}) group_left () sum by (job, {SVC}) (rate(ipvs_service_connections_total{{{INST}}}[$__rate_interval])))'
        f' * on (job, {SVC}) count by (job, {SVC}) (ipvs_service_connections_total{{{INST}}}))', "")],
        w=4, h=4, description="1 = the directors share every VIP evenly.")
    b.panel("stat", "Connections in table", [(f'sum(ipvs_service_active_connections{{{INST}}}) + sum(ipvs_service_inactive_connections{{{INST}}})', "")], w=4, h=4)
    b.panel("timeseries", "New connections per director",
            [(f'sum by (instance) (rate(ipvs_connections_total{{{INST}}}[$__rate_interval]))', "{{instance}}")], unit="cps")
    b.panel("timeseries", "Incoming traffic per director",
            [(f'sum by (instance) (rate(ipvs_incoming_bytes_total{{{INST}}}[$__rate_interval]))', "{{instance}} in"),
             (f'sum by (instance) (rate(ipvs_outgoing_bytes_total{{{INST}}}[$__rate_interval]))', "{{instance}} out (NAT only)")],
            unit="Bps")
    b.panel("timeseries", "New connections per VIP and director",
            [(f'sum by (instance, {SVC}, name) (rate(ipvs_service_connections_total{{{INST}}}[$__rate_interval]))', svc_legend())],
            unit="cps", w=24)
    b.panel("timeseries", "Incoming bytes per VIP and director",
            [(f'sum by (instance, {SVC}, name) (rate(ipvs_service_incoming_bytes_total{{{INST}}}[$__rate_interval]))', svc_legend())],
            unit="Bps")
    b.panel("timeseries", "Director share of each VIP's new connections",
            [(f'sum by (job, instance, {SVC}) (rate(ipvs_service_connections_total{{{INST}}}[$__rate_interval]))'
              f' / on (job, {SVC}) group_left () sum by (job, {SVC}) (rate(ipvs_service_connections_total{{{INST}}}[$__rate_interval]))',
              svc_legend())], unit="percentunit")
    b.panel("timeseries", "Active connections per director",
            [(f'sum by (instance) (ipvs_service_active_connections{{{INST}}})', "{{instance}} active"),
             (f'sum by (instance) (ipvs_service_inactive_connections{{{INST}}})', "{{instance}} inactive")])
    b.panel("timeseries", "Kernel estimate: packets per second per director",
            [(f'ipvs_estimated_incoming_packets_per_second{{{INST}}}', "{{instance}} in"),
             (f'ipvs_estimated_outgoing_packets_per_second{{{INST}}}', "{{instance}} out")], unit="pps")
    b.panel("table", "Sync daemons", [(f'ipvs_sync_daemon_info{{{INST}}}', "")], w=12, h=6)
    b.panel("timeseries", "Scrape duration per collector",
            [(f'ipvs_scrape_collector_duration_seconds{{{INST}}}', "{{instance}} {{collector}}")], unit="s", h=6)
    b.write()


def service_detail():
    b = Board("ipvs-herald-service-detail", "IPVS / Service detail",
              "One virtual service: destination share against weight, imbalance, connection states, rates.",
              common_vars() + service_vars())
    b.panel("table", "Service", [(f'ipvs_service_info{{{SEL}}}', "")], w=24, h=5)
    b.panel("timeseries", "Destination share of new connections",
            [(f'sum by (instance, {SVC}, dest_address, dest_port) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval]))'
              f' / on (instance, {SVC}) group_left () sum by (instance, {SVC}) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval]))',
              "{{instance}} {{dest_address}}:{{dest_port}}")], unit="percentunit",
            description="Compare with the weight share on the right.")
    b.panel("timeseries", "Destination share of weight",
            [(f'clamp_min(ipvs_destination_weight{{{SEL}}}, 0) / on (instance, {SVC}) group_left () sum by (instance, {SVC}) (clamp_min(ipvs_destination_weight{{{SEL}}}, 0))',
              "{{instance}} {{dest_address}}:{{dest_port}}")], unit="percentunit")
    b.panel("timeseries", "Imbalance (1 = as weighted)",
            [(f'ipvs_service_imbalance_ratio{{{SEL}}}', "{{instance}} current connections"),
             (f'max by (instance, {SVC}) ((sum by (instance, {SVC}, dest_address, dest_port) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval]))'
              f' / on (instance, {SVC}) group_left () sum by (instance, {SVC}) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval])))'
              f' / on (instance, {SVC}, dest_address, dest_port) (ipvs_destination_weight{{{SEL}}} / on (instance, {SVC}) group_left () sum by (instance, {SVC}) (clamp_min(ipvs_destination_weight{{{SEL}}}, 0)) > 0))',
              "{{instance}} new connections")],
            description="See exporter/README.md: fo and ovf are skewed by design, sh/dh/mh with few clients too.")
    b.panel("timeseries", "Connection states (connection table)",
            [(f'sum by (instance, state) (ipvs_connection_table_connections{{{INST}, protocol=~"$protocol", address=~"$address", port=~"$port"}})', "{{instance}} {{state}}")],
            description="fwmark services appear under the packets' own address and port.")
    b.panel("timeseries", "Active and inactive connections per destination",
            [(f'ipvs_destination_active_connections{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}} active"),
             (f'ipvs_destination_inactive_connections{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}} inactive")])
    b.panel("timeseries", "Kernel rate estimate: connections per second",
            [(f'ipvs_destination_estimated_connections_per_second{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}}")], unit="cps")
    b.panel("timeseries", "Kernel rate estimate: bytes per second",
            [(f'ipvs_destination_estimated_incoming_bytes_per_second{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}} in"),
             (f'ipvs_destination_estimated_outgoing_bytes_per_second{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}} out")], unit="Bps")
    b.panel("timeseries", "Persistence templates per destination",
            [(f'ipvs_destination_persistent_connections{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}}")])
    b.panel("timeseries", "Weights",
            [(f'ipvs_destination_weight{{{SEL}}}', "{{instance}} {{dest_address}}:{{dest_port}}")])
    b.write()


def destination_health():
    b = Board("ipvs-herald-destination-health", "IPVS / Destination health",
              "Real servers: drained, saturated, without traffic; services without usable destination.",
              common_vars() + service_vars())
    b.panel("table", "Services without usable destination",
            [(f'ipvs_service_usable_destinations{{{SEL}}} == 0', "")], h=6)
    b.panel("table", "Drained destinations (weight 0)",
            [(f'ipvs_destination_weight{{{SEL}}} == 0', "")], h=6)
    b.panel("timeseries", "Connections against upper threshold",
            [(f'(ipvs_destination_active_connections{{{SEL}}} + ipvs_destination_inactive_connections{{{SEL}}})'
              f' / (ipvs_destination_upper_threshold_connections{{{SEL}}} > 0)', "{{instance}} {{dest_address}}:{{dest_port}}")],
            unit="percentunit", description="Only destinations with an upper threshold (ipvsadm -x).")
    b.panel("timeseries", "Active connections per real server (all directors)",
            [(f'sum by (dest_address, dest_port) (ipvs_destination_active_connections{{{SEL}}})', "{{dest_address}}:{{dest_port}}")])
    b.panel("timeseries", "New connections per real server (all directors)",
            [(f'sum by (dest_address, dest_port) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval]))', "{{dest_address}}:{{dest_port}}")],
            unit="cps")
    b.panel("timeseries", "Incoming bytes per real server (all directors)",
            [(f'sum by (dest_address, dest_port) (rate(ipvs_destination_incoming_bytes_total{{{SEL}}}[$__rate_interval]))', "{{dest_address}}:{{dest_port}}")],
            unit="Bps")
    b.panel("table", "Weighted destinations without new connections",
            [(f'(sum by (instance, {SVC}, dest_address, dest_port) (rate(ipvs_destination_connections_total{{{SEL}}}[$__rate_interval])) == 0)'
              f' and on (instance, {SVC}, dest_address, dest_port) (ipvs_destination_weight{{{SEL}}} > 0)', "")], h=6,
            description="Usable by weight but receiving nothing: check the real server and the director's route to it.")
    b.panel("table", "Destination details", [(f'ipvs_destination_info{{{SEL}}}', "")], h=6)
    b.write()


if __name__ == "__main__":
    overview()
    service_detail()
    destination_health()
