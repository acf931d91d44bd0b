"""Seeing the slices: kube-prometheus-stack (or an existing Prometheus Operator), a ServiceMonitor for the
GPU Operator's dcgm-exporter, the alert rules and the Grafana dashboard."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import observability as spec
from gpu_slicing.stack import Monitoring

from ._common import child


@dataclass(frozen=True)
class ObservabilityArgs:
    """`monitoring`: as the stack resolved it (settings, the dashboard for its pools); `exporter_namespace`: the
    GPU Operator's namespace output (the ServiceMonitor selects the exporter's Service there, so it is created
    after that namespace and deleted before it); `runs_on`: the nodes the monitoring stack runs on (the system
    node group)."""

    monitoring: Monitoring
    provider: k8s.Provider
    exporter_namespace: pulumi.Input[str]
    runs_on: pulumi.Resource


class Observability(pulumi.ComponentResource):
    """With `prometheusOperator: install`, the pinned kube-prometheus-stack release in its own namespace, and
    the ServiceMonitor, PrometheusRule and dashboard ConfigMap after it (its CRDs and its Grafana sidecar);
    with `existing`, only those three, in the namespace the existing stack watches.
    """

    release: k8s.helm.v3.Release | None
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:observability:Observability", name, None, opts)
        obs, provider = args.monitoring.settings, args.provider
        after: list[pulumi.Resource] = [args.runs_on]
        self.release = None
        namespace: pulumi.Input[str] = obs.namespace
        if obs.prometheus_operator == "install":
            ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": obs.namespace},
                                       opts=child(self, provider=provider, depends_on=after))
            namespace = ns.metadata["name"]
            self.release = k8s.helm.v3.Release(
                name,
                name=spec.RELEASE,
                chart=spec.CHART,
                version=obs.version,
                repository_opts={"repo": spec.REPOSITORY},
                namespace=namespace,
                values=spec.stack_values(),
                timeout=900,
                cleanup_on_fail=True,
                opts=child(self, provider=provider, depends_on=[*after, ns],
                           custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m", delete="15m")))
            after.append(self.release)
        crs = child(self, provider=provider, depends_on=after)
        monitor = spec.service_monitor(obs, args.exporter_namespace)
        k8s.apiextensions.CustomResource(f"{name}-dcgm-exporter", api_version=monitor["apiVersion"],
                                         kind=monitor["kind"], metadata=monitor["metadata"], spec=monitor["spec"],
                                         opts=crs)
        rule = args.monitoring.rule
        k8s.apiextensions.CustomResource(f"{name}-alerts", api_version=rule["apiVersion"], kind=rule["kind"],
                                         metadata=rule["metadata"], spec=rule["spec"], opts=crs)
        board = args.monitoring.dashboard
        k8s.core.v1.ConfigMap(f"{name}-dashboard", metadata=board["metadata"], data=board["data"], opts=crs)
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs({"namespace": self.namespace,
                               "release": self.release.name if self.release else None})
