"""Prometheus metrics of fault detection (counted per batch or per change, never per reading)."""

from prometheus_client import Counter, Gauge, Histogram

EVALUATION_SECONDS = Histogram(
    "palier_fault_evaluation_seconds",
    "Time to evaluate one ingested batch against the rules, state writes included",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RAISED = Counter("palier_faults_raised_total", "Faults raised", ["rule", "severity"])
TRANSITIONS = Counter("palier_fault_events_total", "Fault changes recorded", ["kind"])
INCIDENTS = Counter("palier_fault_incidents_total", "Incidents opened by correlation")
ALARMS = Counter("palier_fault_alarms_total", "Alerts sent to maintenance teams", ["team"])
ALARMS_10_MIN = Gauge(
    "palier_fault_alarms_last_10_min", "Alerts per team over the last 10 minutes", ["team"]
)
STANDING = Gauge("palier_faults_standing", "Faults active for more than 24 h")
CHATTERING = Gauge(
    "palier_faults_chattering", "Faults with 3 or more changes within a minute in the last hour"
)
